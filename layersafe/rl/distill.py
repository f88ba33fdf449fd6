"""Layer-consistency distillation (``layersafe align --method distill``; beyond the paper).

The model at its default encoder layer is the teacher; the same model with a LoRA adapter,
fed the features of an early-exit layer l, is the student. The student is trained on-policy to
say what the teacher would say, token by token (docs/lppo.md, Distillation; docs/design.md):

1. Rollout (shared with L-PPO, :meth:`OnPolicyTrainer.rollout`): prompts (harmful and benign
   alike), a layer l per prompt from ``--layers``, responses y sampled from the student
   π_θ(· | x, P(e_l)).
2. Teacher: the same prompt and response with the teacher layer's features P(e_T) and the
   adapter disabled (one copy of the weights), no gradient: π_T(· | x, P(e_T), y_<t) at every
   response position.
3. Learn: the per-token reverse KL over the vocabulary, on the student's own samples
   (on-policy distillation / GKD with λ = 1, Agarwal et al. 2024)::

       L(θ) = mean_t  Σ_v π_θ(v | x, P(e_l), y_<t) · [log π_θ(v | ...) − log π_T(v | x, P(e_T), y_<t)]

   averaged over the response tokens of each minibatch (EOS included), gradient through π_θ
   only (no policy gradient through the sampling: the sample is the data).

No judge and no reward model is in the loop, so there is nothing to game: an empty answer
costs exactly the KL to whatever the teacher would have said. Benign behaviour is the
teacher's by construction. ``--anchor-fraction`` of each batch is drawn at the teacher layer
itself (student and teacher then see the same features): those rows hold the default layer
where it is, since the LoRA adapter also acts there.

The L-PPO options that shape a reward (``--reward``, KL/value/clip coefficients) do not apply;
``--ppo-epochs`` passes over the minibatches of each rollout are still made. ``--ptx-coef γ`` adds,
as in L-PPO, γ · the NLL of the benign rows' reference answers at ``--ptx-layer`` (supervised
data, not a judge) to every minibatch.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from ..errors import UserError
from . import ppo
from .onpolicy import OnPolicyTrainer, Rollout, fmt, response_forward


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-position KL(π_s ‖ π_t) = Σ_v p_s(v) (log p_s(v) − log p_t(v)) over the last dim, in fp32.
    ``[..., V]`` -> ``[...]``; 0 where the two distributions are equal, > 0 elsewhere."""
    ls = torch.log_softmax(student_logits.float(), -1)
    lt = torch.log_softmax(teacher_logits.float(), -1)
    return (ls.exp() * (ls - lt)).sum(-1)


def check_layers(repair_layers: list[int], teacher: int, num_layers: int) -> None:
    """The teacher layer must exist and must not be one of the layers being repaired."""
    if not 0 <= teacher <= num_layers:
        raise UserError(f"--teacher-layer {teacher} is outside this model's 0..{num_layers}")
    if teacher in repair_layers:
        raise UserError(f"--teacher-layer {teacher} is also in --layers {repair_layers}: the teacher layer cannot be "
                        "repaired towards itself; drop it from --layers (use --anchor-fraction to hold it)")


class DistillTrainer(OnPolicyTrainer):
    value_head = False

    def _setup(self) -> None:
        from ..layers import parse_layers

        cfg, ad = self.cfg, self.adapter
        teacher = parse_layers(cfg.teacher_layer, ad.num_layers, ad.default_layer)
        if len(teacher) != 1:
            raise UserError(f"--teacher-layer {cfg.teacher_layer!r}: give one layer")
        self.teacher_layer = teacher[0]
        check_layers(self.layers, self.teacher_layer, ad.num_layers)
        self.repair_layers = list(self.layers)
        self.ptx_pool, self.ptx_layer = self._ptx_setup()
        a = float(cfg.anchor_fraction)
        if a > 0:  # anchor rows: the student at the teacher layer, sampled like any other layer
            self.layers = [*self.layers, self.teacher_layer]
            self.layer_weights = [w * (1 - a) for w in self.layer_weights] + [a]

    def row_layers(self, batch, step: int) -> list[int]:
        layers = super().row_layers(batch, step)
        if self.cfg.anchor_answers:  # visual questions stay at the teacher layer (--anchor-answers)
            layers = [self.teacher_layer if s.harmful is False and s.meta.get("answers") else l
                      for s, l in zip(batch, layers)]
        return layers

    def run_info(self) -> dict:
        return {"method": "distill", "teacher_layer": self.teacher_layer, "repair_layers": self.repair_layers}

    def extra_state(self) -> dict:
        return {"teacher_layer": self.teacher_layer}

    def load_extra_state(self, state: dict) -> None:
        if state.get("teacher_layer") != self.teacher_layer:
            raise UserError(f"checkpoint teacher layer {state.get('teacher_layer')} differs from {self.teacher_layer}")

    def progress_postfix(self, row: dict) -> dict:
        return {"kl": f"{row['distill_kl']:.3f}", "refuse_h": fmt(row.get("refusal_rate_harmful"))}

    def extra_views(self, n: int) -> list[list[int]]:
        return [[self.teacher_layer] * n]  # teacher features from the rollout's own encoder pass

    def teacher_view(self, ro: Rollout) -> Rollout:
        """The rollout as the teacher sees it: same prompt and response ids, teacher-layer features."""
        return replace(ro, features=ro.extra_features[0], layers=[self.teacher_layer] * len(ro.prompts))

    def train_step(self, step: int) -> dict:
        cfg = self.cfg
        t0 = time.time()
        ro = self.rollout(step)
        t_gen = self._clock()
        teacher = self.teacher_view(ro)
        rank, world = self.rank_world
        B = len(ro.prompts)
        mask = ro.response_mask.float()
        self.raw.train()
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # minibatch order: a function of (seed, step)
        global_mb = cfg.mini_batch_size * world
        losses, grad_norms, ptx_losses = [], [], []
        ptx = self.ptx_batch(step)
        row_kl = torch.zeros(B, device=mask.device)  # first epoch: each row's summed KL, for the log
        for epoch in range(cfg.ppo_epochs):
            perm = torch.randperm(B, generator=g).tolist()
            for mb in range(0, B, global_mb):
                rows = perm[mb:mb + global_mb]
                idx = rows[rank * cfg.mini_batch_size:(rank + 1) * cfg.mini_batch_size]
                m = mask[idx]
                share = m.sum() / mask[rows].sum().clamp(min=1)  # this chunk's share of the minibatch's tokens
                _, t_logits = self.reference_logprobs(teacher, idx, temperature=1.0, return_logits=True)
                _, s_logits, _ = response_forward(self.policy, self.raw, self.adapter, ro, idx, 1.0,
                                                  with_values=False)
                kl_tok = reverse_kl(s_logits, t_logits)
                del t_logits, s_logits
                loss = ppo.masked_mean(kl_tok, m)
                if epoch == 0:
                    row_kl[idx] = (kl_tok.detach() * m).sum(1)
                if world > 1:
                    loss = loss * (share * world)  # DDP averages gradients over processes
                logged = loss.detach().float() / world  # share-weighted: summed over processes, the global mean
                if ptx is not None:  # γ · NLL of reference answers at --ptx-layer (as L-PPO's PPO-ptx)
                    term, nll = self.ptx_term(ptx)
                    loss = loss + term
                    ptx_losses.append(nll)
                    logged = logged + cfg.ptx_coef * nll
                losses.append(logged)
                grad_norms.append(self.backward_and_step(loss))
        self.scheduler.step()
        self.raw.eval()
        row_kl = self._sum_across(row_kl)  # each row's KL was computed by exactly one process
        t_learn = self._clock()
        self.last_phase_seconds = {"generate": t_gen - t0, "learn": t_learn - t_gen}
        lengths = mask.sum(1).cpu()
        row = {
            "step": step,
            "distill_loss": self._sum_across(torch.stack(losses)).mean().item(),
            "distill_kl": (row_kl.sum() / lengths.sum().clamp(min=1)).item(),  # per token, first epoch
            "kl_per_sequence": row_kl.mean().item(),
            "response_length": lengths.mean().item(),
            "stop_rate": ro.stopped.float().mean().item(),
            "grad_norm": sum(grad_norms) / len(grad_norms),
            "lr": self.scheduler.get_last_lr()[0],
        }
        if ptx_losses:
            row["ptx_loss"] = self._sum_across(torch.stack(ptx_losses)).mean().item()
        for layer in sorted(set(ro.layers)):
            sel = [i for i, l in enumerate(ro.layers) if l == layer]
            row[f"kl_layer_{layer}"] = (row_kl[sel].sum() / lengths[sel].sum().clamp(min=1)).item()
        for layer in self.layers:  # a stable log.csv: every layer has a column every step
            row.setdefault(f"kl_layer_{layer}", None)
        row.update(self.batch_rates(ro))  # monitoring only: no judge is in the loss
        row["seconds"] = round(time.time() - t0, 3)
        return row

