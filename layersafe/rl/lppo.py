"""L-PPO trainer (paper eq. 10): clipped PPO where the policy sees P(e_l), the projected features
of image-encoder layer l, for one layer or a weighted set sampled per rollout.

One step = rollout -> score -> learn -> log row. The PPO maths is in :mod:`layersafe.rl.ppo`;
what L-PPO shares with the other on-policy method (distillation) is in :mod:`.onpolicy`:

1. Rollout (:meth:`OnPolicyTrainer.rollout`). Prompts (harmful + benign mix) and a layer per
   prompt; the frozen encoder runs ONCE and each prompt's projected ``P(e_l)`` is cached, so every
   PPO epoch reuses it (docs/design.md); responses sampled from the policy (temperature T, no
   top-k, a seed per row). With N processes: one global batch, sharded (docs/lppo.md, Multi-GPU).
2. Score. Training forward (same ``inputs_embeds``: prompt ids + cached features + response
   ids) with no grad -> old log-probs and values; the same forward with the LoRA adapter
   disabled -> reference log-probs (the reference sees the SAME layer-l features, so the KL
   measures the policy moving, not the input changing). Reward r(x, y) from the reward spec
   (each row's reference answers, if any, go to the ``answer`` term; each term logged), minus
   ``missing_eos_penalty`` for responses that hit the length limit; per-token reward −η·KL_t
   with the score on the final token (the EOS) (eq. 5); GAE (eq. 6); whitening.
3. Learn. ``ppo_epochs`` passes over shuffled minibatches: clipped policy loss (eqs. 7–8) +
   c1·clipped value loss (eq. 9) − c_ent·entropy; gradient-norm clipping; optional early stop
   when the epoch's approx-KL exceeds ``target_approx_kl``.

Policy = the language model (LoRA by default; the vision tower and projector are frozen and
never see a gradient). Value = a scalar linear head on the policy's final hidden state (the
input of ``lm_head``), sharing the LoRA trunk: one copy of the weights; c1 keeps the value
gradient from dominating. With full fine-tuning the reference is a frozen deep copy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..lock import locked_out
from . import ppo

# The config is torch-free (so `layersafe align --help` does not import torch) and builds the CLI:
# its fields, help, ranges and resume keys live in layersafe/rl/configs.py.
from ..config import resume_keys  # noqa: E402
from .configs import LORA_TARGETS, LPPOConfig  # noqa: E402,F401


# ============================================================================================
# Shared machinery, re-exported: tests and users import these names from here
# ============================================================================================

from ..data.training import load_benign, load_training_prompts, row_answers  # noqa: E402,F401
from .onpolicy import (  # noqa: E402,F401
    ADAPTER_DIR, CKPT_DIR, LATEST, LOG_CSV, LOG_JSONL, MERGED_DIR, RUN_JSON, OnPolicyTrainer, PolicyWithValue,
    Rollout, build_embeds, draw_batch, draw_layers, fmt, layers_from_scan, resolve_layers, response_forward,
    sample_seeds, shard, target_ids, tokenize_and_project,
)


# ============================================================================================
# L-PPO: score, then learn (the rollout is OnPolicyTrainer.rollout)
# ============================================================================================

@dataclass
class Scored:
    """A rollout's PPO quantities over the global batch (step 2 of the module doc)."""

    old_logp: torch.Tensor
    old_values: torch.Tensor
    raw_scores: torch.Tensor  # r(x, y) before the missing-EOS penalty
    term_scores: torch.Tensor  # [rows, terms]: each reward term, unweighted
    scores: torch.Tensor  # with the missing-EOS penalty
    rewards: torch.Tensor  # per token (eq. 5)
    kl: torch.Tensor  # per token
    advantages: torch.Tensor
    returns: torch.Tensor
    entropy: float


class LPPOTrainer(OnPolicyTrainer):
    value_head = True

    def _setup(self) -> None:
        cfg = self.cfg
        self.reward_fn = _build_reward(cfg)
        if self.is_main and not self.has_answers and any(name == "answer" for _, name, _ in self.reward_fn.terms):
            self.log("warning: --reward has an answer term but no benign prompt has reference answers "
                     "(answer/answers columns of --benign-data): it scores 0 on every row")
        self.ptx_pool, self.ptx_layer = self._ptx_setup()
        self.kl_ctl = (ppo.AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon) if cfg.adaptive_kl
                       else ppo.FixedKLController(cfg.kl_coef))

    def extra_state(self) -> dict:
        return {"kl_ctl": self.kl_ctl.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.kl_ctl.load_state_dict(state["kl_ctl"])

    def progress_postfix(self, row: dict) -> dict:
        return {"score": f"{row['score']:.3f}", "kl": f"{row['kl']:.3f}", "refuse_h": fmt(row.get("refusal_rate_harmful"))}

    # ---- one PPO step: rollout -> score -> learn -> log row -------------------------------------
    def train_step(self, step: int) -> dict:
        """One PPO iteration over the global batch. Every process holds the whole rollout; it
        scores its :func:`shard` rows (scores gathered), and in each global minibatch
        (``mini_batch_size × world`` rows of one seeded permutation) learns on its chunk with the
        loss weighted by its share of the minibatch's tokens, so DDP's gradient average equals the
        gradient of the token mean over the global minibatch: the same update as one process."""
        t0 = time.time()
        ro = self.rollout(step)
        t_gen = self._clock()
        sc = self.score(ro)
        t_score = self._clock()
        stats, epochs_done = self.learn(ro, sc, step)
        t_learn = self._clock()
        # Phase wall times of this step (benchmarks/bench_lppo.py); kept out of the log rows,
        # which must be identical between resumed and uninterrupted runs.
        self.last_phase_seconds = {"generate": t_gen - t0, "score": t_score - t_gen, "learn": t_learn - t_score}
        row = self.log_row(step, ro, sc, stats, epochs_done)
        row["seconds"] = round(time.time() - t0, 3)
        return row

    @torch.no_grad()
    def score(self, ro: Rollout) -> Scored:
        """Old log-probs and values (policy), reference log-probs (adapter off), reward r(x, y) per
        term, missing-EOS penalty, per-token KL reward (eq. 5), GAE (eq. 6), whitening."""
        cfg = self.cfg
        rank, world = self.rank_world
        mine = shard(len(ro.prompts), rank, world)
        mask = ro.response_mask.float()
        pol = self._unwrapped()
        old_logp, logits, old_values = response_forward(pol, self.raw, self.adapter, ro, mine, cfg.temperature)
        ent_rows = ppo.masked_sum(ppo.entropy_from_logits(logits), mask[mine], dim=1)
        del logits
        ref_logp = self.reference_logprobs(ro, mine)
        # Every column of the reward call is indexed by the same shard rows.
        total, per_term = self.reward_fn.score([ro.prompts[j] for j in mine], [ro.texts[j] for j in mine],
                                               [ro.harmful[j] for j in mine], [ro.answers[j] for j in mine])
        raw_scores = torch.tensor(total, dtype=torch.float32, device=mask.device)
        term_scores = torch.tensor(per_term, dtype=torch.float32, device=mask.device).T.contiguous()
        old_logp, old_values, ref_logp, raw_scores, ent_rows, term_scores = (
            self._gather_rows(t) for t in (old_logp, old_values, ref_logp, raw_scores, ent_rows, term_scores))
        entropy = (ent_rows.sum() / mask.sum().clamp(min=1)).item()
        scores = ppo.apply_missing_eos_penalty(raw_scores, ro.stopped, cfg.missing_eos_penalty)
        rewards, kl = ppo.token_rewards(scores, old_logp, ref_logp, mask, self.kl_ctl.value, cfg.kl_estimator)
        if cfg.whiten_rewards:
            rewards = ppo.masked_whiten(rewards, mask, shift_mean=False)
        advantages, returns = ppo.gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            advantages = ppo.masked_whiten(advantages, mask)
        return Scored(old_logp, old_values, raw_scores, term_scores, scores, rewards, kl, advantages, returns, entropy)

    def learn(self, ro: Rollout, sc: Scored, step: int) -> tuple[dict, int]:
        """``ppo_epochs`` passes over shuffled minibatches (features cached in ``ro``): clipped
        policy loss (eqs. 7–8) + c1·clipped value loss (eq. 9) − c_ent·entropy [+ γ·PPO-ptx]."""
        cfg = self.cfg
        rank, world = self.rank_world
        B = len(ro.prompts)
        mask = ro.response_mask.float()
        self.raw.train()
        keys = ("policy_loss", "value_loss", "clipfrac", "value_clipfrac", "approx_kl")
        stats: dict = {k: [] for k in (*keys, "grad_norm", "ptx_loss")}
        ptx = self.ptx_batch(step)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)  # minibatch order: a function of (seed, step)
        global_mb = cfg.mini_batch_size * world
        epochs_done = 0
        for _ in range(cfg.ppo_epochs):
            perm = torch.randperm(B, generator=g).tolist()
            epoch_kl = []
            for mb in range(0, B, global_mb):
                rows = perm[mb:mb + global_mb]
                idx = rows[rank * cfg.mini_batch_size:(rank + 1) * cfg.mini_batch_size]
                m = mask[idx]
                # This chunk's share of the minibatch's tokens: Σ_ranks share·mean = the global token mean.
                share = m.sum() / mask[rows].sum().clamp(min=1)
                logp, logits, values = response_forward(self.policy, self.raw, self.adapter, ro, idx,
                                                        cfg.temperature)
                pl = ppo.policy_loss(logp, sc.old_logp[idx], sc.advantages[idx], m, cfg.clip_range)
                vl, vcf = ppo.value_loss(values, sc.old_values[idx], sc.returns[idx], m, cfg.clip_range_value)
                loss = pl.loss + cfg.vf_coef * vl
                if cfg.ent_coef:
                    loss = loss - cfg.ent_coef * ppo.masked_mean(ppo.entropy_from_logits(logits), m)
                if world > 1:
                    loss = loss * (share * world)  # DDP averages gradients over processes
                if ptx is not None:  # PPO-ptx: γ · NLL of the reference answers, weighted by its own share
                    term, nll = self.ptx_term(ptx)
                    loss = loss + term
                    stats["ptx_loss"].append(nll)
                gn = self.backward_and_step(loss)
                # Stats stay tensors (no host sync per minibatch); summed across processes below.
                for k, v in zip(keys, (pl.loss, vl, pl.clipfrac, vcf, pl.approx_kl)):
                    stats[k].append(v.detach().float() * (share if world > 1 else 1.0))
                stats["grad_norm"].append(gn)
                epoch_kl.append(stats["approx_kl"][-1])
            epochs_done += 1
            if cfg.target_approx_kl is not None:
                mean_kl = self._sum_across(torch.stack(epoch_kl)).mean().item()  # same decision on every process
                if mean_kl > cfg.target_approx_kl:
                    break
        for k in (*keys, "ptx_loss") if ptx is not None else keys:
            stats[k] = self._sum_across(torch.stack(stats[k])).tolist()
        self.scheduler.step()
        self.raw.eval()
        return stats, epochs_done

    def log_row(self, step: int, ro: Rollout, sc: Scored, stats: dict, epochs_done: int) -> dict:
        """The step's log row, computed from the global rollout: the same on every process."""
        mask = ro.response_mask.float()
        seq_kl = (sc.kl * mask).sum(1)
        self.kl_ctl.update(seq_kl.mean().item(), len(ro.prompts))
        row = {
            "step": step,
            "score": sc.raw_scores.mean().item(),
            # each reward term's unweighted mean: score = Σ weight · score_TERM
            **{f"score_{lab}": sc.term_scores[:, k].mean().item() for k, lab in enumerate(self.reward_fn.labels)},
            "score_with_eos_penalty": sc.scores.mean().item(),
            "reward_total": (sc.rewards * mask).sum(1).mean().item(),
            "kl": seq_kl.mean().item(),
            "kl_coef": self.kl_ctl.value,
            "entropy": sc.entropy,
            "response_length": mask.sum(1).mean().item(),
            "stop_rate": ro.stopped.float().mean().item(),
            "explained_variance": ppo.explained_variance(sc.old_values, sc.returns, mask),
            "ppo_epochs_done": epochs_done,
            "lr": self.scheduler.get_last_lr()[0],
        }
        row.update({k: sum(v) / len(v) for k, v in stats.items() if v})
        row.update(self.batch_rates(ro, sc.raw_scores))
        return row


def _build_reward(cfg: LPPOConfig):
    from .rewards import build_reward

    return build_reward(cfg.reward, device=cfg.device, batch_size=cfg.reward_batch_size, allow_pickle=cfg.allow_pickle,
                        silent_reward=cfg.silent_reward)


# ============================================================================================
# Run
# ============================================================================================

# Fields that must match to resume: anything that changes what a step computes.
_RESUME_KEYS = resume_keys(LPPOConfig)  # fields marked resume=True in rl/configs.py


def train(cfg: LPPOConfig, *, adapter=None, progress: bool = True, log=print, _stop_after: int | None = None) -> dict:
    """Run ``align`` (L-PPO, or distillation with ``method="distill"``); returns the summary
    stored in OUT/run.json. ``adapter`` may be pre-loaded; ``_stop_after`` (tests) stops after that
    step as if interrupted (no final outputs). OUT is locked for the run: a second run writing
    there is refused, a dead run's lock taken over."""
    from .onpolicy import run

    cfg.validate()
    trainer_cls = LPPOTrainer
    if cfg.method == "distill":
        from .distill import DistillTrainer as trainer_cls
    with locked_out(cfg.out, log=log):
        return run(cfg, trainer_cls, _RESUME_KEYS, adapter=adapter, progress=progress, log=log, _stop_after=_stop_after)
