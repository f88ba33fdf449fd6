"""``layersafe sft``: supervised safety fine-tuning baseline (the paper's Appendix L comparison).

LoRA on the language model only (vision tower and projector frozen, as in L-PPO), trained with
teacher forcing on (prompt + image features of layer l) -> target, where l is drawn per sample
(seeded) from the chosen layers:

* harmful prompts (``harmful`` not false) -> a refusal (:data:`REFUSAL_TARGET` or --refusal);
  a dataset's own ``target`` column is NEVER used for them (AdvBench targets are compliance);
* benign prompts (``harmful: false``) -> their ``response`` column when the data has one, else
  :data:`BENIGN_TEMPLATE`.

Loss = mean cross-entropy over the target tokens (EOS included). Any family: the forward inputs
come from the family adapter (``VLMAdapter.train_inputs``: layer-l features where the stock
model puts its image features), as in L-PPO.
Writes OUT/adapter (peft; ``scan --adapter OUT/adapter`` and ``utility --adapter`` accept it),
OUT/log.jsonl (step, loss, layer mix), OUT/run.json and OUT/checkpoints/step-N (LoRA weights,
optimizer, RNG; every ``save_every`` steps). Batches are a pure function of (seed, step), so
``--resume`` from the last checkpoint ends with the same adapter and loss log as an uninterrupted
run. OUT has one writer at a time (layersafe.lock). Under ``torchrun`` / ``accelerate launch`` the
language model's decoder layers are sharded over the processes (:mod:`.fsdp`, docs/scale.md) and
the run is the one-process run with the same options; its checkpoints hold the gathered state, so
``--resume`` works on any number of processes, one included.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import UserError

ADAPTER_DIR = "adapter"
LOG_JSONL = "log.jsonl"
RUN_JSON = "run.json"
# The config (torch-free: it builds `layersafe sft`'s options) and the settings a resumed run must keep
# (fields marked resume=True) live in layersafe/rl/configs.py.
from ..config import resume_keys  # noqa: E402
from .configs import BENIGN_TEMPLATE, REFUSAL_TARGET, SFTConfig  # noqa: E402,F401

_RESUME_KEYS = resume_keys(SFTConfig)


def training_pairs(samples, cfg: SFTConfig) -> list[tuple]:
    """(sample, target text) for every sample; harmful -> refusal, benign -> its response or the template."""
    from ..data.builtin import CUSTOM_PROMPT_GOAL_INDICES, advbench_goals

    goals = advbench_goals()
    held = {goals[i][0].strip() for i in CUSTOM_PROMPT_GOAL_INDICES}
    pairs = []
    for s in samples:
        if s.prompt.strip() in held:  # the CP test goals never enter training
            continue
        if s.harmful is False:
            resp = str(s.meta.get("response") or "").strip()
            pairs.append((s, resp or cfg.benign_template))
        else:
            pairs.append((s, cfg.refusal))
    return pairs


class SFTTrainer:
    """LoRA SFT. ``info`` (a launch of N processes, :func:`layersafe.distributed.setup` already
    joined): the language model is sharded over the processes (:mod:`.fsdp`), every process draws
    the same global batch and learns on its :func:`~layersafe.rl.onpolicy.shard` rows."""

    def __init__(self, cfg: SFTConfig, *, adapter=None, log=print, info=None):
        from .. import distributed as dist
        from ..data import load_dataset
        from ..layers import parse_layers
        from ..models import load_vlm

        cfg.validate()
        self.cfg, self.log = cfg, log
        ds = load_dataset(cfg.data, seed=cfg.seed, limit=cfg.limit)
        if cfg.data == "custom-prompts":
            raise UserError("custom-prompts is the held-out test set (CP); train on advbench-images or your own file")
        self.pairs = training_pairs(ds.samples, cfg)
        if not self.pairs:
            raise UserError(f"--data {cfg.data}: no usable training prompts")
        from ..data.training import check_images

        check_images([s for s, _ in self.pairs], f"--data {cfg.data}", log=log)  # before the model loads
        self.info = info or dist.RankInfo()
        if self.info.world > cfg.batch_size:
            raise UserError(f"--batch-size {cfg.batch_size} is smaller than the {self.info.world} processes: "
                            "every process needs a row of each batch")
        self.device = torch.device(dist.rank_device(cfg.device, self.info)) if self.info.distributed else None
        if adapter is None:
            if self.device is None:
                adapter = load_vlm(cfg.model, dtype=cfg.dtype, device=cfg.device, allow_pickle=cfg.allow_pickle)
            else:  # loaded on the CPU: sharding moves only this process's part to its GPU (rl/fsdp.py)
                from ..models import pick_dtype

                adapter = load_vlm(cfg.model, dtype=str(pick_dtype(cfg.dtype, self.device)).removeprefix("torch."),
                                   device="cpu", allow_pickle=cfg.allow_pickle)
        from ..models.templates import set_template

        set_template(adapter, cfg.template, cfg.system_prompt)  # every prompt renders with it (models/templates.py)
        self.adapter, self.raw, self.tok = adapter, adapter.model, adapter.tokenizer
        self.layers = parse_layers(cfg.layers, adapter.num_layers, adapter.default_layer)
        eos = self.raw.generation_config.eos_token_id
        self.eos_id = (eos[0] if isinstance(eos, list) else eos) if eos is not None else self.tok.eos_token_id
        torch.manual_seed(cfg.seed)
        for p in self.raw.parameters():
            p.requires_grad_(False)
        from .onpolicy import lora_wrap

        self.peft = lora_wrap(adapter, self.raw, cfg)  # the language model only, as L-PPO
        # family-specific (models/*.py), before sharding wraps the layers; names go to run.json
        self.recomputed = adapter.require_recompute(self.raw) if cfg.family_recompute else []
        self.sharding = None  # run.json's fsdp summary
        if self.info.distributed:
            from .fsdp import shard_language_model, sharding_summary

            shard_language_model(self.peft, adapter.language_model(), self.device)
            adapter.device = self.device
            self.sharding = sharding_summary(self.peft)
        params = [p for p in self.peft.parameters() if p.requires_grad]  # after sharding: the DTensors
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
        self._target_ids: dict[str, list[int]] = {}

    def _targets(self, text: str) -> list[int]:
        from .onpolicy import target_ids

        if text not in self._target_ids:
            self._target_ids[text] = target_ids(self.tok, text, self.eos_id)
        return self._target_ids[text]

    def draw(self, step: int):
        """Batch of ``step`` and one layer per sample: a pure function of (seed, step)."""
        rng = random.Random(f"{self.cfg.seed}-sft-{step}")
        batch = [self.pairs[rng.randrange(len(self.pairs))] for _ in range(self.cfg.batch_size)]
        return batch, [rng.choice(self.layers) for _ in batch]

    def loss(self, batch, layers) -> torch.Tensor:
        from ..models.base import left_pad, right_pad
        from .onpolicy import forward_inputs, tokenize_and_project

        ad = self.adapter
        items, feats = tokenize_and_project(ad, [s for s, _ in batch], layers)
        dev = self.raw.get_input_embeddings().weight.device
        pad = self.tok.pad_token_id
        tgt = [self._targets(t) for _, t in batch]
        resp, rmask = right_pad(tgt, pad)
        R = resp.shape[1]
        pids, pmask = left_pad([it["input_ids"] for it in items], pad)
        with forward_inputs(ad, self.raw, items, pids.to(dev), pmask.to(dev), resp.to(dev), rmask.to(dev),
                            feats) as inputs:
            out = self.peft(**inputs, logits_to_keep=R + 1, use_cache=False)
        logits = out.logits[:, :R].float()  # position P-1+t predicts response token t
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), resp.to(dev).reshape(-1),
                                                reduction="none").view(resp.shape)
        m = rmask.to(dev).float()
        return (nll * m).sum() / m.sum()

    def train_step(self, step: int) -> dict:
        """One optimizer step on the global batch of ``step``. With N processes each learns on its
        shard rows, its loss (token mean over its rows) × its share of the batch's target tokens × N:
        the averaged gradient is that of the token mean over the whole batch, as one process."""
        from .onpolicy import NonFiniteError, shard

        self.peft.train()
        batch, layers = self.draw(step)
        world = self.info.world
        if world > 1:
            n_tok = [len(self._targets(t)) for _, t in batch]
            mine = shard(len(batch), self.info.rank, world)
            share = sum(n_tok[j] for j in mine) / sum(n_tok)
            loss = self.loss([batch[j] for j in mine], [layers[j] for j in mine])
            from .fsdp import sum_across

            logged = sum_across(loss.detach().float() * share)  # the token mean over the global batch
            loss = loss * (share * world)
        else:
            loss = self.loss(batch, layers)
            logged = loss.detach()
        if not torch.isfinite(logged):  # stop before the weights change: the last checkpoint stays good
            raise NonFiniteError(f"the loss became {float(logged)} at step {step}; the last checkpoint is kept")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_([p for p in self.peft.parameters() if p.requires_grad], 1.0)
        if world > 1:
            from .fsdp import full

            gn = full(gn)  # FSDP: a DTensor norm
        if not torch.isfinite(gn):
            raise NonFiniteError(f"the gradient norm became {float(gn)} at step {step}; the last checkpoint is kept")
        self.optimizer.step()
        self.peft.eval()
        return {"step": step, "loss": float(logged), "grad_norm": float(gn),
                "harmful_fraction": sum(s.harmful is not False for s, _ in batch) / len(batch),
                "layers": sorted(set(layers))}

    def save(self, out: Path) -> Path:
        """OUT/adapter. Sharded: the LoRA weights are gathered (every process) and rank 0 writes."""
        path = out / ADAPTER_DIR
        if not self.info.distributed:
            self.peft.save_pretrained(path)
            return path
        from .fsdp import full_trainable

        weights = full_trainable(self.peft)
        if self.info.is_main:
            self.peft.save_pretrained(path, state_dict=weights)
        return path

    def save_checkpoint(self, out: Path, step: int) -> None:
        """OUT/checkpoints/step-N (LoRA weights, optimizer, RNG of every process as safetensors, step =
        data position: batches are a pure function of (seed, step)), published atomically by
        :func:`layersafe.rl.checkpoint.write_checkpoint`. Sharded, the LoRA weights and the AdamW
        state are gathered by every process (collectives) and rank 0 writes them, keyed by name. One
        is enough: steps are cheap to redo."""
        from .. import distributed as dist
        from ..io import atomic_write_json
        from . import checkpoint as ckpt

        info = self.info
        trainable, optim = ckpt.training_state(self.peft, self.optimizer, info.distributed)

        def write(tmp: Path) -> None:
            ckpt.save_tensors(trainable, tmp / "trainable.pt")
            ckpt.save_tensors(optim, tmp / "optimizer.pt")
            atomic_write_json(tmp / "trainer_state.json", {"step": step, "world_size": info.world})

        ckpt.write_checkpoint(out, step, 1, write, rank=info.rank, world=info.world,
                              barrier=dist.barrier if info.distributed else (lambda: None))

    def load_checkpoint(self, path: Path) -> int:
        """Every process reads the checkpoint (written by any number of processes: the state is
        whole) and, sharded, keeps its shards. Its own RNG state, else rank 0's (the RNG drives only
        LoRA dropout, 0 by default: the batches are a function of (seed, step))."""
        from . import checkpoint as ckpt

        try:
            state = json.loads((path / "trainer_state.json").read_text())
            step = int(state["step"])
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"checkpoint {path}: trainer_state.json is unreadable; start a new --out") from None
        ckpt.load_training_state(path, self.peft, self.optimizer, self.info.distributed)
        rng = ckpt.rng_state_file(path, self.info.rank)
        ckpt.load_rng_state(rng if rng.is_file() else ckpt.rng_state_file(path, 0))  # safetensors: never unpickled
        self.resumed_world = state.get("world_size", 1)
        return step


def _prepare_out(cfg: SFTConfig) -> Path | None:
    """The checkpoint to resume from (None for a fresh run); refuses a non-empty OUT without
    --resume and a resume whose settings differ from the original run's."""
    from ..lock import resume_point
    from .checkpoint import CKPT_DIR, LATEST

    return resume_point(Path(cfg.out), cfg, _RESUME_KEYS, run_json=RUN_JSON, ckpt_dir=CKPT_DIR, latest=LATEST)


def train_sft(cfg: SFTConfig, *, adapter=None, progress: bool = True, log=print, _stop_after: int | None = None) -> dict:
    """Train; returns the summary stored in OUT/run.json. ``_stop_after`` (tests) stops after that
    step as if interrupted (no adapter, run.json stays ``running``).

    Under ``torchrun`` / ``accelerate launch`` (WORLD_SIZE > 1) the processes train one run with the
    language model sharded over them (FSDP, docs/scale.md): rank 0 holds the folder lock and writes
    everything; the run is the one-process run with the same ``--batch-size``."""
    from contextlib import ExitStack

    from .. import distributed as dist
    from ..lock import holder_error, locked_out, read_holder

    cfg.validate()
    info = dist.rank_info()
    if not info.distributed:
        with locked_out(cfg.out, log=log):
            return _train(cfg, _prepare_out(cfg), adapter=adapter, progress=progress, log=log, _stop_after=_stop_after)
    device = dist.rank_device(cfg.device, info)  # the same checks on every rank: no rank is left waiting
    info = dist.setup(use_cuda=device.startswith("cuda"))
    with ExitStack() as stack:
        def take_folder():  # rank 0: check OUT, create it and take its lock for the whole launch
            latest = _prepare_out(cfg)
            stack.enter_context(locked_out(cfg.out, log=log))
            return latest, read_holder(Path(cfg.out))

        latest, holder = dist.on_main(take_folder)
        dist.all_ok(None if info.is_main else holder_error(Path(cfg.out), holder))
        return _train(cfg, latest, adapter=adapter, progress=progress, log=log, _stop_after=_stop_after, info=info)


def _train(cfg: SFTConfig, latest, *, adapter, progress: bool, log, _stop_after: int | None, info=None) -> dict:
    from tqdm.auto import tqdm

    from .. import distributed as dist
    from ..io import JsonlAppender, atomic_write_json, trim_jsonl

    info = info or dist.RankInfo()
    main = info.is_main
    out = Path(cfg.out)
    tr = SFTTrainer(cfg, adapter=adapter, log=log if main else (lambda m: None), info=info)
    start = tr.load_checkpoint(latest) if latest is not None else 0
    if latest is not None and main:
        was = tr.resumed_world
        log(f"resumed from {latest} (step {start})" + (f"; written by {was} process(es), continued on {info.world}"
                                                         if was != info.world else ""))
    run = {"config": asdict(cfg), "status": "running", "layers": tr.layers, "n_pairs": len(tr.pairs),
           "n_harmful": sum(s.harmful is not False for s, _ in tr.pairs), "num_layers": tr.adapter.num_layers,
           "default_layer": tr.adapter.default_layer, "started_step": start, "world_size": info.world,
           **({"fsdp": tr.sharding} if tr.sharding else {}),
           **({"recomputed_modules": tr.recomputed} if tr.recomputed else {})}
    if main:
        atomic_write_json(out / RUN_JSON, run)
    rows = []
    if latest is not None and (out / LOG_JSONL).exists():
        # steps logged after the checkpoint (before the interruption) are redone: drop them; rank 0
        # alone rewrites (another rank's replace could land after rank 0 opened the log to append)
        rows = trim_jsonl(out / LOG_JSONL, start, rewrite=main)
    t0 = time.time()
    with (JsonlAppender(out / LOG_JSONL) if main else contextlib.nullcontext()) as w:
        for step in tqdm(range(start + 1, cfg.steps + 1), desc="sft", initial=start, total=cfg.steps,
                         disable=not (progress and main), dynamic_ncols=True):
            row = tr.train_step(step)
            rows.append(row)
            if w is not None:
                w.write(row)
            if step % cfg.save_every == 0 or step == cfg.steps:
                tr.save_checkpoint(out, step)
            if _stop_after is not None and step >= _stop_after:
                return {"stopped_at": step}
    path = tr.save(out)
    run.update(status="complete", steps=cfg.steps, first_loss=rows[0]["loss"], last_loss=rows[-1]["loss"],
               adapter=str(path), seconds=round(time.time() - t0, 3))
    if main:
        atomic_write_json(out / RUN_JSON, run)
    return run
