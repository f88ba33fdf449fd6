"""What every on-policy repair method shares (L-PPO in :mod:`.lppo`, layer-consistency
distillation in :mod:`.distill`): the prompt/layer schedule, the LoRA policy, rollouts over cached
layer-l features, multi-process sharding, checkpoints, the run folder and its log.

A method subclasses :class:`OnPolicyTrainer` and implements ``train_step(step) -> log row``
(plus optional ``_setup``, ``extra_state``/``load_extra_state`` for its own checkpointed state);
:func:`run` drives it: resume, the step loop with progress, checkpoints, final adapter.

Rollout, as both methods use it: draw ``batch_size`` prompts per process (harmful + benign mix)
and a layer per prompt; run the frozen encoder ONCE for the batch, project each prompt's layer
``P(e_l)`` and CACHE it (the encoder and projector are frozen, so every epoch reuses these
features); sample responses from the policy with those features (left padding, temperature T, no
top-k, a seed per row). With N processes the batch is one global batch of N × ``batch_size``
rows, drawn as one process would draw it; each process generates its shard and the responses are
gathered (docs/lppo.md, Multi-GPU). With ``--shard-model`` the language model is sharded over the
processes too (:mod:`.fsdp`; docs/scale.md): the same run, decoded with synchronized stock generate.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import UserError
from ..io import JsonlAppender, atomic_write_json, trim_jsonl, write_rows
from . import checkpoint as ckpt
from . import ppo

LOG_JSONL = "log.jsonl"
LOG_CSV = "log.csv"
TIMING_JSONL = "timing.jsonl"  # per-step phase wall times, rank 0's clock (kept out of the log rows)
RUN_JSON = "run.json"
CKPT_DIR = ckpt.CKPT_DIR
LATEST = ckpt.LATEST
ADAPTER_DIR = "adapter"
MERGED_DIR = "merged"
# --decode-cache auto keeps the decoder only if this share of the GPU stays free beyond the memory
# the step needed so far plus the cache: learning's footprint varies with the step's lengths.
DECODE_CACHE_MARGIN = 0.10
# Load and preprocess the next step's images while this step scores and learns (_prefetch_next);
# off = every step tokenises in its rollout, as before (tests compare the two).
PREFETCH = True


# ============================================================================================
# Schedule: layers, prompt batches, generation seeds, process shards
# ============================================================================================

def layers_from_scan(run_dir: str, top_k: int, rank_by: str = "asr") -> tuple[list[int], list[float]]:
    """The ``top_k`` layers with the highest ``rank_by`` column (default ``asr``, the headline; e.g.
    ``asr_llamaguard`` for one judge's) in RUN_DIR/metrics.csv, weights ∝ that value."""
    import csv

    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise UserError(f"--layers-from-scan: {path} not found; run `layersafe scan ... --judge refusal` first")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        all_rows = list(reader)
    if rank_by not in columns:
        numeric = [c for c in columns if c.startswith("asr")]
        raise UserError(f"--rank-by {rank_by}: {path} has no such column; ASR columns there: {', '.join(numeric) or 'none'}")

    def value(r) -> float | None:
        try:
            v = float(r.get(rank_by) or "nan")
        except ValueError:
            return None
        return None if math.isnan(v) else v

    rows = [r for r in all_rows if value(r) is not None]
    if not rows:
        raise UserError(f"{path} has no layer with a value in column {rank_by}")
    rows.sort(key=lambda r: (-value(r), int(r["layer"])))
    top = rows[:top_k]
    layers = [int(r["layer"]) for r in top]
    w = [max(value(r), 0.0) for r in top]
    if sum(w) == 0:
        w = [1.0] * len(layers)
    return layers, w


def resolve_layers(cfg, adapter) -> tuple[list[int], list[float]]:
    from ..layers import parse_layers

    if cfg.layers_from_scan:
        layers, w = layers_from_scan(cfg.layers_from_scan, cfg.top_k, cfg.rank_by)
        bad = [l for l in layers if not 0 <= l <= adapter.num_layers]
        if bad:
            raise UserError(f"scan layers {bad} are outside this model's 0..{adapter.num_layers}: was the scan of another model?")
    else:
        layers = parse_layers(cfg.layers, adapter.num_layers, adapter.default_layer)
        w = [1.0] * len(layers)
        if cfg.layer_weights:
            try:
                w = [float(x) for x in cfg.layer_weights.split(",")]
            except ValueError:
                raise UserError(f"--layer-weights {cfg.layer_weights!r}: give numbers separated by commas") from None
            if len(w) != len(layers) or min(w) < 0 or sum(w) == 0:
                raise UserError(f"--layer-weights needs {len(layers)} non-negative numbers (one per layer {layers})")
    total = sum(w)
    return layers, [x / total for x in w]


def draw_batch(samples, benign, cfg, step: int, world: int = 1):
    """The GLOBAL prompt batch of ``step`` (``batch_size × world`` rows): a pure function of
    (seed, step, global size), so a resumed run draws exactly what the uninterrupted run would
    have, and N processes draw what one process with an N× batch draws. Each pool is walked in a
    seeded permutation per epoch."""
    size = cfg.batch_size * world
    n_benign = round(size * cfg.benign_fraction) if benign else 0
    n_main = size - n_benign

    def take(pool, per_step, salt):
        out = []
        start = (step - 1) * per_step
        for k in range(start, start + per_step):
            epoch, pos = divmod(k, len(pool))
            out.append(pool[_epoch_order(f"{cfg.seed}-{salt}-{epoch}", len(pool))[pos]])
        return out

    return take(samples, n_main, "main") + (take(benign, n_benign, "benign") if n_benign else [])


@functools.lru_cache(maxsize=8)
def _epoch_order(key: str, n: int) -> tuple[int, ...]:
    """The seeded permutation of a pool for one epoch, shuffled once (not once per drawn row)."""
    perm = list(range(n))
    random.Random(key).shuffle(perm)
    return tuple(perm)


def draw_layers(layers, weights, n: int, seed: int, step: int) -> list[int]:
    """One layer per row of the global batch (one stream for all rows: the same on any world size)."""
    rng = random.Random(f"{seed}-layers-{step}")
    return rng.choices(layers, weights=weights, k=n)


def sample_seeds(seed: int, step: int, rows) -> list[int]:
    """Generation seed of each global row: its sampled response does not depend on the process
    or on which rows share its generate call."""
    return [random.Random(f"{seed}-sample-{step}-{j}").getrandbits(32) for j in rows]


def shard(n: int, rank: int, world: int) -> list[int]:
    """Global rows that process ``rank`` generates, scores and learns on: strided, so every
    process gets a mix of the harmful and benign parts of the batch."""
    return list(range(rank, n, world))


def rollout_parts(n: int, world: int, keys: list | None = None) -> list[list[int]]:
    """Global rows each process generates in a rollout (ascending). Without ``keys``: the strided
    :func:`shard`. With prefix-reuse keys (one per row, (image, layer)): the rows grouped by key in
    order of first appearance, each group dealt whole to the next process round robin (a group
    larger than that process's room spills into the next), every process getting the same number
    of rows as :func:`shard` gives it. So the rows that share a prompt start mostly land on one
    process, which computes it once, and every process still gets a mix of the batch's harmful
    and benign parts (``draw_batch`` puts one part first: contiguous cuts would give one process
    the short refusals and another the long answers, and decoding waits for the slowest). Any
    assignment gives the same rollout: each row samples with its own seed, and the responses are
    put back in global order."""
    if keys is None or world == 1:
        return [shard(n, r, world) for r in range(world)]
    groups: dict = {}
    for j, k in enumerate(keys):
        groups.setdefault(k, []).append(j)
    room = [len(shard(n, r, world)) for r in range(world)]
    parts: list[list[int]] = [[] for _ in range(world)]
    r = 0
    for rows in groups.values():
        while rows:
            while len(parts[r]) == room[r]:
                r = (r + 1) % world
            take = room[r] - len(parts[r])
            parts[r] += rows[:take]
            rows = rows[take:]
            r = (r + 1) % world
    return [sorted(p) for p in parts]


def _place(per_rank: list[list], parts: list[list[int]]) -> list:
    """Each process's values for its rows ``parts[r]`` -> one list in global row order."""
    out: list = [None] * sum(len(p) for p in parts)
    for vals, rows in zip(per_rank, parts):
        for j, v in zip(rows, vals):
            out[j] = v
    return out

# ============================================================================================
# Policy + value, and the one training forward shared by rollout scoring and learning
# ============================================================================================

class PolicyWithValue(nn.Module):
    """The (peft-wrapped) VLM plus (for PPO) a scalar value head on the input of ``lm_head``."""

    def __init__(self, lm: nn.Module, raw_model: nn.Module, hidden_size: int, autocast_dtype=None,
                 value_head: bool = True):
        super().__init__()
        self.lm = lm
        # bf16/fp16 base + LoRA kept in fp32 (peft's default, so small updates are not rounded
        # away): run the LM under autocast with peft's input casting off. Otherwise every LoRA
        # layer makes its own fp32 copy of its input, kept for backward: about half the
        # activation memory of a 7B step, and slow fp32 matmuls.
        self.autocast_dtype = autocast_dtype
        self.value_head = nn.Linear(hidden_size, 1) if value_head else None  # distillation needs none
        if self.value_head is not None:
            # Zero init: V = 0 at the start, so early value errors do not push the shared trunk.
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)
        self._hidden = None
        raw_model.get_output_embeddings().register_forward_pre_hook(self._grab)

    def _grab(self, module, args):
        self._hidden = args[0]

    def forward(self, inputs: dict, n_keep: int = 0, with_values: bool = True):
        """``inputs``: the keyword arguments of the VLM's forward (``VLMAdapter.train_inputs``). A
        callable instead is called: sharded, the rollout's generate runs inside this root's forward
        (:func:`layersafe.rl.fsdp.synced_generate` says why)."""
        if callable(inputs):
            return inputs()
        device = next(v for v in inputs.values() if torch.is_tensor(v)).device
        with self._autocast(device):
            out = self.lm(**inputs, logits_to_keep=n_keep, use_cache=False)
        hidden, self._hidden = self._hidden, None
        # fp32, outside autocast. Sharded, FSDP warns when a unit returns a view: 2-D in (a linear
        # layer's 3-D output is a view), a copy out.
        values = (self.value_head(hidden.float().flatten(0, -2)).view(hidden.shape[:-1]).clone()
                  if with_values and self.value_head is not None else None)
        return out.logits, values

    @contextlib.contextmanager
    def _autocast(self, device):
        if self.autocast_dtype is None:
            yield
            return
        from peft.helpers import disable_input_dtype_casting

        with torch.autocast(device.type, dtype=self.autocast_dtype), disable_input_dtype_casting(self.lm):
            yield


@dataclass
class Rollout:
    """One rollout batch; everything the PPO epochs need, on the training device."""

    prompt_ids: torch.Tensor  # [B, P] left-padded
    prompt_mask: torch.Tensor  # [B, P]
    response_ids: torch.Tensor  # [B, R] right-padded (pad id), EOS included when generated
    response_mask: torch.Tensor  # [B, R]
    features: list  # per sample: cached P(e_l) [n_image_tokens, H] (detached)
    layers: list[int]
    prompts: list[str]
    harmful: list[bool]
    texts: list[str]
    stopped: torch.Tensor  # [B] bool
    answers: list  # per sample: reference answers (list[str]) of a benign row, else None
    items: list | None = None  # tokenised prompts
    samples: list | None = None  # the drawn samples
    extra_features: list | None = None  # per extra view of the trainer (OnPolicyTrainer.extra_views): features


def build_embeds(model, image_token_id: int, prompt_ids, prompt_mask, response_ids, response_mask, features):
    """LLaVA's training inputs as a tuple ``(inputs_embeds, attention_mask, position_ids)``
    (models/base.py: ``embeds_at_image_tokens``); other families go through their adapter's
    ``train_inputs``."""
    from ..models.base import embeds_at_image_tokens

    kw = embeds_at_image_tokens(model, image_token_id, prompt_ids, prompt_mask, response_ids, response_mask, features)
    return kw["inputs_embeds"], kw["attention_mask"], kw["position_ids"]


def forward_inputs(family, model, items, prompt_ids, prompt_mask, response_ids, response_mask, features):
    """Context manager yielding the forward inputs of ``model`` for these rows: ``family`` is the
    VLM's adapter (any family: its ``train_inputs``) or, as before families, LLaVA's image-token id."""
    if isinstance(family, int):
        from ..models.base import embeds_at_image_tokens

        return contextlib.nullcontext(embeds_at_image_tokens(model, family, prompt_ids, prompt_mask, response_ids,
                                                             response_mask, features))
    return family.train_inputs(model, items, prompt_ids, prompt_mask, response_ids, response_mask, features)


def response_forward(policy: PolicyWithValue, raw_model, family, ro: Rollout, idx, temperature: float,
                     with_values: bool = True):
    """Log-probs (of logits/T) of the response tokens, entropy-ready logits and values, for the
    rows ``idx`` of a rollout. Position P−1+t predicts response token t. ``family``: the
    adapter (or LLaVA's image-token id), see :func:`forward_inputs`."""
    sel = lambda t: t[idx]  # noqa: E731
    items = [ro.items[i] for i in idx] if ro.items is not None else None
    R = ro.response_ids.shape[1]
    with forward_inputs(family, raw_model, items, sel(ro.prompt_ids), sel(ro.prompt_mask), sel(ro.response_ids),
                        sel(ro.response_mask), [ro.features[i] for i in idx]) as inputs:
        logits, values = policy(inputs, n_keep=R + 1, with_values=with_values)
    logits = logits[:, :R].float() / temperature
    logp = ppo.logprobs_from_logits(logits, sel(ro.response_ids))
    if values is not None:
        values = values[:, :R]
    return logp, logits, values


# ============================================================================================
# Trainer
# ============================================================================================

def target_ids(tok, text: str, eos_id: int) -> list[int]:
    """Token ids of a supervised response (SFT targets, PPO-ptx answers) + EOS, tokenised as the
    text that follows "ASSISTANT:" (a leading space), so both supervised paths see the same ids."""
    return list(tok(" " + text, add_special_tokens=False)["input_ids"]) + [eos_id]


def tokenize_samples(ad, samples) -> list:
    """Each training sample tokenised with its image (a bad image is the user's to fix, not to skip)."""
    from ..data.base import load_image

    items = []
    for s in samples:
        try:
            items.append(ad.tokenize(ad.build_prompt(s.prompt), load_image(s.image)))
        except Exception as e:
            raise UserError(f"cannot load training sample {s.id} ({s.image}): {e}") from None
    return items


def tokenize_and_project(ad, samples, layers):
    """Tokenise each training sample with its image and project its layer's features P(e_l),
    encoding the images once for all layers in the batch. Returns (items, features)."""
    items = tokenize_samples(ad, samples)
    return items, project_features(ad, items, layers)


def project_views(ad, items, views: list[list[int]]) -> list[list]:
    """For each view (one layer per item), P(e_l) of every item: the encoder runs ONCE for all the
    layers of all the views (distillation's teacher features come from the same pass as the student's)."""
    enc = ad.encode(items, sorted({l for view in views for l in view}))
    out = []
    for layers in views:
        feats: list = [None] * len(items)
        for layer in sorted(set(layers)):
            idx = [i for i, l in enumerate(layers) if l == layer]
            for i, f in zip(idx, ad.features(enc, layer, idx)):
                feats[i] = f.detach()
        out.append(feats)
    return out


def project_features(ad, items, layers) -> list:
    """P(e_l) of each tokenised item at its layer ``layers[i]``, the encoder run once for all."""
    return project_views(ad, items, [layers])[0]



# ============================================================================================
# The trainer every on-policy method shares
# ============================================================================================

def lora_target(adapter, names: list[str]) -> str:
    """peft ``target_modules`` regex: the ``names`` linear layers inside the family's language
    model only, never the vision tower or projector (their names also contain q_proj / linear_*)."""
    return r".*" + re.escape(adapter.language_model_name) + r"\..*\.(" + "|".join(map(re.escape, names)) + r")"


def lora_wrap(adapter, model, cfg):
    """``model`` with LoRA adapters on ``cfg.lora_target_modules`` of the language model (align
    and sft); names that match no layer are one line naming the ones there are."""
    from peft import LoraConfig, get_peft_model

    from ..models.peft_quiet import peft_wrap

    names = [t.strip() for t in cfg.lora_target_modules.split(",") if t.strip()]
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lora_target(adapter, names), bias="none")

    def no_match() -> UserError:
        lm = f"{adapter.language_model_name}."
        have = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                       if lm in f"{n}." and isinstance(m, torch.nn.Linear)} - {"lm_head"})
        return UserError(f"--lora-target-modules {cfg.lora_target_modules!r} matched no language-model layer; "
                         f"its linear layers: {', '.join(have) or 'none'}")

    try:
        with peft_wrap():  # peft's own read of a deprecated transformers attribute (models/peft_quiet.py)
            wrapped = get_peft_model(model, lcfg)
    except ValueError as e:  # peft's NoMatchingPeftModuleError
        if "not found in the base model" not in str(e) and type(e).__name__ != "NoMatchingPeftModuleError":
            raise
        raise no_match() from None
    if not any(p.requires_grad for p in wrapped.parameters()):
        raise no_match()
    return wrapped


def check_trainable(adapter, cfg) -> None:
    """Refuse, before anything is written, what this family cannot train with: the static-cache
    decoder where the family decodes with stock generate (docs/families.md says why)."""
    if getattr(cfg, "cache", "auto") == "static" and not adapter.static_cache:
        raise UserError(f"--cache static: the static-cache decoder is implemented for the LLaVA families, not "
                        f"{adapter.family} (docs/families.md); use --cache auto or dynamic")


class OnPolicyTrainer:
    """Model, LoRA policy, optimizer, rollouts and checkpoints; subclasses add the learning rule."""

    value_head = False  # L-PPO's critic: a scalar head on the policy's final hidden state

    def __init__(self, cfg, *, adapter=None, log=print, accelerator=None):
        cfg.validate()
        self.cfg, self.log = cfg, log
        self.acc = accelerator or _make_accelerator()
        # --shard-model: the language model's decoder layers sharded over the processes (rl/fsdp.py)
        self.sharded = bool(getattr(cfg, "shard_model", False))
        self.sharding = None  # run.json's fsdp summary
        if self.sharded:
            cfg.check_launch()
        from ..data.training import load_training_prompts
        from ..models import load_vlm

        if adapter is None:
            device, dtype = cfg.device, cfg.dtype
            if self.acc is not None and self.acc.num_processes > 1:
                device = str(self.acc.device)
            if self.sharded:  # loaded on the CPU: sharding moves only this process's part to its GPU (rl/fsdp.py)
                from ..models import pick_dtype

                device, dtype = "cpu", str(pick_dtype(cfg.dtype, self.acc.device)).removeprefix("torch.")
            adapter = load_vlm(cfg.model, dtype=dtype, device=device, allow_pickle=cfg.allow_pickle)
        from ..models.templates import set_template

        set_template(adapter, cfg.template, cfg.system_prompt)  # every prompt renders with it (models/templates.py)
        check_trainable(adapter, cfg)
        self.adapter = adapter
        self.raw = adapter.model
        self.image_token_id = adapter.image_token_id  # LLaVA callers of response_forward; the trainer passes the adapter
        self.tok = adapter.tokenizer
        self.layers, self.layer_weights = resolve_layers(cfg, adapter)
        self.samples, self.benign = load_training_prompts(cfg, log=log if self.is_main else (lambda m: None))
        # answer_accuracy is logged (every step, for a stable log.csv) when any benign row has answers.
        self.has_answers = any(s.harmful is False and s.meta.get("answers") for s in (*self.samples, *self.benign))
        eos = self.raw.generation_config.eos_token_id
        self.eos_id = (eos[0] if isinstance(eos, list) else eos) if eos is not None else self.tok.eos_token_id
        self._setup()
        torch.manual_seed(cfg.seed)
        self._wrap_model()
        params = [p for p in self.policy.parameters() if p.requires_grad]
        # fused: one kernel per step instead of foreach's per-group launches and host work, which a
        # GPU waits for at every minibatch (docs/lppo.md "Multi-GPU"); FSDP's DTensors stay on foreach.
        fused = not self.sharded and bool(params) and all(p.is_cuda for p in params)
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                           fused=fused or None)
        self.optimizer_impl = {k: self.optimizer.param_groups[0][k] for k in ("fused", "foreach")}
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda)
        if self.acc is not None and not self.sharded:  # DDP; sharded, FSDP reduces the gradients
            self.policy, self.optimizer = self.acc.prepare(self.policy, self.optimizer)
        self.trainable_params = params  # clipped each minibatch (DDP's wrapper keeps the same parameters)
        self.step = 0
        self.rollouts_done = 0  # in this launch: --decode-cache auto decides only after a learning phase
        self.decode_cache_kept: bool | None = None  # last rollout's decision (None: no static decoder)
        # --rollout-weights: LoRA merged into a weight copy for decoding (rl/rollout_weights.py); the
        # choice is made at the first rollout and kept, so a kept CUDA graph always replays the path it captured.
        self.merged_weights = None
        if self.peft is not None and not self.sharded:
            from .rollout_weights import MergedRolloutWeights

            self.merged_weights = MergedRolloutWeights(self.peft)
        self._merge_rollouts: bool | None = None  # decided at the first rollout
        self.rollout_merged: bool | None = None  # whether the last rollout decoded merged weights
        # --fuse-kernels: read when the adapter builds its static-cache decoder (models/fuse.py)
        if getattr(adapter, "fuse_kernels", False) != cfg.fuse_kernels:
            adapter.release_cache()  # a decoder it holds was built with the other setting
        adapter.fuse_kernels = cfg.fuse_kernels
        # The next step's images, loaded and preprocessed in a background thread (_prefetch_next)
        self._prefetch: tuple[int, Any] | None = None
        self._prefetch_pool = None
        self._prefetch_adapter = None

    # ---- hooks -----------------------------------------------------------------------------
    def _setup(self) -> None:
        """Method-specific setup before the model is wrapped (reward, KL controller, ...)."""

    def train_step(self, step: int) -> dict:
        raise NotImplementedError

    def extra_state(self) -> dict:
        """Method state saved in trainer_state.json (JSON)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def progress_postfix(self, row: dict) -> dict:
        return {}

    def extra_views(self, n: int) -> list[list[int]]:
        """More layers per row whose features the rollout projects in the same encoder pass
        (distillation: the teacher layer); stored in ``Rollout.extra_features``."""
        return []

    def row_layers(self, batch, step: int) -> list[int]:
        """The encoder layer of each row of the global batch (one seeded draw for all processes)."""
        return draw_layers(self.layers, self.layer_weights, len(batch), self.cfg.seed, step)

    def run_info(self) -> dict:
        """Method facts recorded in run.json."""
        return {}

    # ---- setup -----------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.acc is None or self.acc.is_main_process

    @property
    def rank_world(self) -> tuple[int, int]:
        return (0, 1) if self.acc is None else (self.acc.process_index, self.acc.num_processes)

    def _lr_lambda(self, i: int) -> float:
        c = self.cfg
        warm = min(1.0, (i + 1) / c.warmup_steps) if c.warmup_steps else 1.0
        decay = max(0.0, 1.0 - i / c.steps) if c.lr_schedule == "linear" else 1.0
        return warm * decay

    def _wrap_model(self):
        cfg, raw = self.cfg, self.raw
        for p in raw.parameters():
            p.requires_grad_(False)
        hidden = raw.get_output_embeddings().in_features
        if cfg.full_finetune:
            import copy

            self.ref_model = copy.deepcopy(raw).eval()  # frozen reference: a second copy of the weights
            lm = self.adapter.language_model()
            for p in lm.parameters():
                p.requires_grad_(True)
            if raw.get_output_embeddings().weight is not lm.get_input_embeddings().weight:
                raw.get_output_embeddings().weight.requires_grad_(True)
            self.peft = None
            self.policy = PolicyWithValue(raw, raw, hidden, value_head=self.value_head)
            self.ref_policy = PolicyWithValue(self.ref_model, self.ref_model, hidden, value_head=False)
        else:
            # Regex on full module names: LoRA goes into the language model only, never the
            # vision tower or projector (their names also contain q_proj / linear_*).
            self.peft = lora_wrap(self.adapter, raw, cfg)
            low = raw.get_output_embeddings().weight.dtype
            self.policy = PolicyWithValue(self.peft, raw, hidden, value_head=self.value_head,
                                          autocast_dtype=low if low in (torch.bfloat16, torch.float16) else None)
            self.ref_policy = None
        # family-specific (models/*.py); acts in training mode only; names go to run.json
        self.recomputed = self.adapter.require_recompute(raw) if cfg.family_recompute else []
        if self.policy.value_head is not None:
            self.policy.value_head.to(raw.get_output_embeddings().weight.device)
        if self.sharded:
            from .fsdp import shard_language_model, sharding_summary

            head = self.policy.value_head
            shard_language_model(self.policy, self.adapter.language_model(), self.acc.device,
                                 fp32_units=(head,) if head is not None else ())
            self.adapter.device = self.acc.device
            self.sharding = {**sharding_summary(self.policy), "rollout_cache": "dynamic"}

    def _unwrapped(self) -> PolicyWithValue:
        return self.acc.unwrap_model(self.policy) if self.acc is not None else self.policy

    def reference_logprobs(self, ro: Rollout, idx, temperature: float | None = None, *, return_logits: bool = False):
        """log π_ref of the response tokens of rows ``idx``: LoRA disabled (same weights; with full
        fine-tuning the frozen copy), on the features stored in ``ro`` (L-PPO: the same layer-l
        features as the policy; distillation: the teacher layer's)."""
        pol = self._unwrapped()
        t = self.cfg.temperature if temperature is None else temperature
        with torch.no_grad():
            if self.peft is not None:
                with self.peft.disable_adapter():
                    logp, logits, _ = response_forward(pol, self.raw, self.adapter, ro, idx, t, with_values=False)
            else:
                logp, logits, _ = response_forward(self.ref_policy, self.ref_model, self.adapter, ro, idx, t,
                                                   with_values=False)
        return (logp, logits) if return_logits else logp

    # ---- rollout ---------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, step: int) -> Rollout:
        """The GLOBAL rollout of ``step``, the same on every process: each process draws the whole
        global batch, loads and preprocesses the images of its own rows (:func:`shard`; the
        tokenised rows are gathered) unless the previous step prefetched the whole batch in the
        background (:meth:`_prefetch_next`), encodes and generates its rows of :func:`rollout_parts`
        (per-row seeds), and the features (the learning phase needs every row's) and the responses
        are gathered.
        Sets ``self.rollout_seconds``: wall time of each part."""
        from ..models.base import left_pad, right_pad

        cfg, ad = self.cfg, self.adapter
        rank, world = self.rank_world
        t0 = time.time()
        batch = draw_batch(self.samples, self.benign, cfg, step, world)
        layers = self.row_layers(batch, step)
        mine = shard(len(batch), rank, world)
        items = self._prefetched(step) or self._tokenize_global(batch, mine)
        t_tok = self._clock()
        # Rows with one image at one layer hold equal features (one encoder call): where the adapter
        # decodes with the static cache their prompt start is computed once (docs/design.md §4.4,
        # prefix reuse), and the rows are dealt to processes by key (rollout_parts) so that each
        # group stays together.
        keys = [(str(s.image), l) for s, l in zip(batch, layers)] \
            if cfg.prefix_reuse and getattr(ad, "prefix_reuse", False) and not self.sharded else None
        parts = rollout_parts(len(batch), world, keys)
        gen = parts[rank]
        feats, *extra = self._encode_global(items, [layers, *self.extra_views(len(batch))], parts)
        t_enc = self._clock()
        self.raw.eval()
        # The policy-gradient ratio and the sampled reverse KL assume samples from softmax(logits/T):
        # no top-k truncation (transformers fills an unset top_k with 50). Set only around
        # generate: save_pretrained rejects top_k=0.
        gc = self.raw.generation_config
        old_top_k, gc.top_k = gc.top_k, 0
        dev = self.raw.get_input_embeddings().weight.device
        cuda = dev.type == "cuda"
        # What this process holds before decoding: --decode-cache auto's estimate (_decoder_fits).
        reserved0 = torch.cuda.memory_reserved(dev) if cuda else 0
        allocated0 = torch.cuda.memory_allocated(dev) if cuda else 0
        # Sharded: stock generate (the CUDA-graph decoder cannot replay FSDP's gathers), synchronized.
        reuse = {"prefix_keys": [keys[j] for j in gen]} if keys is not None else {}
        generate = functools.partial(ad.generate, [items[j] for j in gen], [feats[j] for j in gen], **reuse,
                                     max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
                                     top_p=1.0, cache="dynamic" if self.sharded else cfg.cache,
                                     sample_seeds=sample_seeds(cfg.seed, step, gen),
                                     # the cache sized for the global batch's longest prompt, as one process sizes it
                                     cache_prompt_len=max(len(it["input_ids"]) for it in items))
        try:
            if self.sharded:
                from .fsdp import synced_generate

                gens = synced_generate(self.policy, self.raw, generate)
            else:
                with self._rollout_weights(dev) as merged:
                    gens = generate()
                self.rollout_merged = merged
        finally:
            gc.top_k = old_top_k
        self._settle_decoder(dev, reserved0, allocated0)
        self.rollouts_done += 1
        t_dec = self._clock()
        self._prefetch_next(step)  # overlaps this step's scoring and learning
        gens = self._gather_parts(gens, parts)
        pad = self.tok.pad_token_id
        # The stop token the row generated (Llama 3 stops on any of several), so the scored
        # response is exactly the sampled one.
        resp = [torch.tensor(g.tokens + ([self.eos_id if g.stop_token is None else g.stop_token]
                                         if g.finish_reason == "stop" else []), dtype=torch.long) for g in gens]
        response_ids, response_mask = right_pad(resp, pad)  # response token t sits at column t
        prompt_ids, prompt_mask = left_pad([it["input_ids"] for it in items], pad)
        ro = Rollout(prompt_ids.to(dev), prompt_mask.to(dev), response_ids.to(dev), response_mask.to(dev),
                     feats, layers, [s.prompt for s in batch], [s.harmful is not False for s in batch],
                     [g.text for g in gens],
                     torch.tensor([g.finish_reason == "stop" for g in gens], device=dev),
                     [(s.meta.get("answers") or None) if s.harmful is False else None for s in batch],
                     items=items, samples=batch, extra_features=extra)
        t_end = self._clock()
        self.rollout_seconds = {"tokenize": t_tok - t0, "encode": t_enc - t_tok, "decode": t_dec - t_enc,
                                "gather": t_end - t_dec}
        return ro

    def _settle_decoder(self, dev, reserved0: int, allocated0: int) -> None:
        """After a rollout: keep the static-cache decoder (its KV cache and CUDA graph) for the next
        step's rollout, or free it (``--decode-cache``; docs/lppo.md "Decode cache"). Keeping it is
        correct: the graph reads the LoRA weights by address (the optimizer updates them in place) and
        was captured on the adapter-enabled path, or, with merged rollout weights, on the merged
        buffers that every rollout rewrites in place (the choice is fixed for the launch); the trainer
        frees it before anything changes the modules (:meth:`release_decoder`). Merged weights live
        exactly as long as the decoder that reads them."""
        if not self.adapter.holds_decoder():
            self._free_merged()  # stock generate: no graph reads the merged weights; free them for learning
            return  # the rollout decoded with stock generate: nothing kept between calls
        mode = self.cfg.decode_cache
        keep = mode == "keep" or (mode == "auto" and self._decoder_fits(dev, reserved0, allocated0))
        if not keep:
            self.adapter.release_cache()  # the KV cache would sit idle through scoring and learning
            self._free_merged()  # and so would the merged weights (the freed graph was their only reader)
        self.decode_cache_kept = keep

    def _rollout_weights(self, dev):
        """The context a rollout decodes in: merged LoRA weights or peft's adapter path
        (``--rollout-weights``). ``auto`` merges on a GPU when the copy fits beside what this process
        holds with ``DECODE_CACHE_MARGIN`` of the GPU to spare; decided at the launch's first rollout."""
        mw, mode = self.merged_weights, self.cfg.rollout_weights
        if self._merge_rollouts is None:
            self._merge_rollouts = mw is not None and (mode == "merged" or (mode == "auto" and self._copy_fits(dev)))
        return mw.active() if mw is not None and self._merge_rollouts else contextlib.nullcontext(False)

    def _copy_fits(self, dev) -> bool:
        if dev.type != "cuda" or self.merged_weights is None:
            return False
        free, total = torch.cuda.mem_get_info(dev)
        spare = free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return spare >= self.merged_weights.nbytes() + DECODE_CACHE_MARGIN * total

    def _free_merged(self) -> None:
        if self.merged_weights is not None:
            self.merged_weights.release()

    def _decoder_fits(self, dev, reserved0: int, allocated0: int) -> bool:
        """``auto``: on a GPU, once a learning phase has run in this launch, keep the decoder if the
        memory reserved before this rollout (the high-water mark of the steps so far: the caching
        allocator keeps what it reserved, and it includes a decoder already kept) plus what this
        decode newly allocated (a new cache) leaves ``DECODE_CACHE_MARGIN`` of the GPU free."""
        if dev.type != "cuda" or self.rollouts_done == 0:
            return False
        grown = max(0, torch.cuda.memory_allocated(dev) - allocated0)
        free, total = torch.cuda.mem_get_info(dev)
        usable = free + torch.cuda.memory_reserved(dev)  # what this process can hold
        return reserved0 + grown <= usable - DECODE_CACHE_MARGIN * total

    def release_decoder(self) -> None:
        """Free a kept static decoder: at the end of training (before merging changes the modules)."""
        self.adapter.release_cache()
        self._free_merged()
        self.decode_cache_kept = None if self.decode_cache_kept is None else False

    def _prefetch_next(self, step: int) -> None:
        """Start loading and preprocessing step + 1's images in a background thread, so this CPU
        work overlaps the GPU's scoring and learning (docs/lppo.md "Image prefetch"). Every process
        prepares the whole global batch: no rows to gather, only an agreement on failure
        (:meth:`_prefetched`). The thread has its own copy of the processor (a fast
        tokenizer must not be used from two threads at once; PPO-ptx tokenises during learning)."""
        # Not with --shard-model: its rollouts decode with synchronized stock generate, slow enough
        # that preprocessing hardly counts, and a 2-process gloo run aborted (SIGABRT) twice in CI
        # with the thread working beside FSDP's CPU collectives.
        if not PREFETCH or self.sharded or step >= self.cfg.steps:
            return
        from concurrent.futures import ThreadPoolExecutor

        if self._prefetch_pool is None:
            self._prefetch_pool = ThreadPoolExecutor(1, thread_name_prefix="layersafe-prefetch")
            self._prefetch_adapter = self.adapter.preprocessing_copy()
        batch = draw_batch(self.samples, self.benign, self.cfg, step + 1, self.rank_world[1])
        self._prefetch = (step + 1, self._prefetch_pool.submit(tokenize_samples, self._prefetch_adapter, batch))

    def _prefetched(self, step: int) -> list | None:
        """The tokenised global batch of ``step`` if it was prefetched (waits for the thread), else
        None. A failure is agreed across processes as in :meth:`_tokenize_global`: one that only
        some processes meet (a file missing on one node) must not leave the others waiting."""
        pre, self._prefetch = self._prefetch, None
        if pre is None or pre[0] != step:
            return None
        try:
            items, err = pre[1].result(), None
        except UserError as e:
            items, err = None, str(e)
        if self.rank_world[1] > 1:
            from accelerate.utils import gather_object

            errors = [e for e in gather_object([err]) if e]
            err = errors[0] if errors else None
        if err:
            raise UserError(err)
        return items

    def close_prefetch(self) -> None:
        """Drop a pending prefetch and the thread (end of training, or a stop after a given step)."""
        self._prefetch = None
        if self._prefetch_pool is not None:
            self._prefetch_pool.shutdown(wait=True, cancel_futures=True)
            self._prefetch_pool = None
        self._prefetch_adapter = None

    def _tokenize_global(self, batch, mine: list[int]) -> list:
        """Every row of the global batch tokenised with its image, each process preprocessing only
        its ``mine`` rows (image loading and preprocessing run on the CPU: on every process for
        every row they would not shrink with more processes). A bad image stops every process
        with the same line (no process is left waiting in the gather)."""
        world = self.rank_world[1]
        if world == 1:
            return tokenize_samples(self.adapter, batch)
        from accelerate.utils import gather_object

        try:
            local, err = tokenize_samples(self.adapter, [batch[j] for j in mine]), None
        except UserError as e:
            local, err = [None] * len(mine), str(e)
        errors = [e for e in gather_object([err]) if e]
        if errors:
            raise UserError(errors[0])
        return self._gather_rows(local)

    def _encode_global(self, items, views: list[list[int]], parts: list[list[int]]) -> list[list]:
        """:func:`project_views` of the global batch, each process encoding only its rows
        ``parts[rank]`` and the features all-gathered (one process encoding every row spent the same
        time on 1 or N GPUs: measured 0.09 s on one H200, 0.16 s on each of two, for 64 LLaVA-1.5 rows)."""
        rank, world = self.rank_world
        if world == 1:
            return project_views(self.adapter, items, views)
        mine = parts[rank]
        local = project_views(self.adapter, [items[j] for j in mine], [[view[j] for j in mine] for view in views])
        return [self._gather_tensor_rows(rows, parts) for rows in local]

    def _gather_tensor_rows(self, rows: list[torch.Tensor], parts: list[list[int]]) -> list[torch.Tensor]:
        """This process's rows ``parts[rank]``, tensors of any shapes (one dtype) -> every global row,
        in global order, on this device: the shapes gathered as objects, the values as one padded flat tensor."""
        import torch.distributed as dist
        from accelerate.utils import gather_object

        shapes = gather_object([[tuple(r.shape) for r in rows]])  # one list per process, rank order
        sizes = [sum(math.prod(sh) for sh in per) for per in shapes]
        emb = self.raw.get_input_embeddings().weight
        flat = torch.cat([r.reshape(-1) for r in rows]) if rows else torch.empty(0, dtype=emb.dtype, device=emb.device)
        flat = torch.nn.functional.pad(flat, (0, max(sizes) - flat.numel()))
        gathered = [torch.empty_like(flat) for _ in shapes]
        dist.all_gather(gathered, flat.contiguous())
        per_rank = []
        for part, per in zip(gathered, shapes):
            out, at = [], 0
            for sh in per:
                n = math.prod(sh)
                out.append(part[at:at + n].view(sh))
                at += n
            per_rank.append(out)
        return _place(per_rank, parts)

    def _gather_parts(self, local: list, parts: list[list[int]]) -> list:
        """This process's objects for rows ``parts[rank]`` -> every global row's, in global order."""
        if self.rank_world[1] == 1:
            return list(local)
        from accelerate.utils import gather_object

        flat = gather_object(list(local))  # rank order
        per_rank, at = [], 0
        for p in parts:
            per_rank.append(flat[at:at + len(p)])
            at += len(p)
        return _place(per_rank, parts)

    def _gather_rows(self, x):
        """This process's shard rows (a list, or a tensor with rows on dim 0) -> all global rows, in
        global order (a list, or a tensor on this process's device)."""
        rank, world = self.rank_world
        if world == 1:
            return x
        n = len(x) * world
        if not torch.is_tensor(x):
            return self._gather_parts(x, [shard(n, r, world) for r in range(world)])
        # shard r holds rows r, r + world, ...: global row j is item j // world of shard j % world
        order = [(j % world) * len(x) + j // world for j in range(n)]
        flat = self.acc.gather(x.contiguous())
        return flat[torch.tensor(order, device=flat.device)]

    # ---- PPO-ptx (supervised answers mixed into the loss; L-PPO and distillation) -------------
    def _ptx_setup(self):
        """The benign rows with reference answers and the layer PPO-ptx learns them on."""
        cfg = self.cfg
        if not cfg.ptx_coef:
            return [], None
        pool = [s for s in (*self.samples, *self.benign) if s.harmful is False and s.meta.get("answers")]
        if not pool:
            raise UserError("--ptx-coef needs benign prompts with reference answers (answer/answers columns of --benign-data)")
        from ..layers import parse_layers

        layer = parse_layers(cfg.ptx_layer, self.adapter.num_layers, self.adapter.default_layer)
        if len(layer) != 1:
            raise UserError(f"--ptx-layer {cfg.ptx_layer!r}: give one layer")
        return pool, layer[0]

    def ptx_batch(self, step: int) -> Rollout | None:
        """This process's part of the step's PPO-ptx batch: ``mini_batch_size × world`` benign
        (prompt, first reference answer) pairs at ``ptx_layer``, drawn with a seed of (seed, step)
        (the batch one process with an N× minibatch draws), of which this process takes its
        :func:`shard` rows, laid out as a Rollout whose responses are the answers + EOS. Sets
        ``self.ptx_share``: this process's share of the global batch's answer tokens."""
        if not self.ptx_pool:
            return None
        from ..models.base import left_pad, right_pad

        rank, world = self.rank_world
        rng = random.Random(f"{self.cfg.seed}-ptx-{step}")
        drawn = [rng.choice(self.ptx_pool) for _ in range(self.cfg.mini_batch_size * world)]
        targets = [target_ids(self.tok, s.meta["answers"][0], self.eos_id) for s in drawn]
        mine = shard(len(drawn), rank, world)
        self.ptx_share = sum(len(targets[j]) for j in mine) / sum(len(t) for t in targets)
        batch = [drawn[j] for j in mine]
        items, feats = tokenize_and_project(self.adapter, batch, [self.ptx_layer] * len(batch))
        dev = self.raw.get_input_embeddings().weight.device
        pad = self.tok.pad_token_id
        response_ids, response_mask = right_pad([targets[j] for j in mine], pad)
        prompt_ids, prompt_mask = left_pad([it["input_ids"] for it in items], pad)
        n = len(batch)
        return Rollout(prompt_ids.to(dev), prompt_mask.to(dev), response_ids.to(dev), response_mask.to(dev), feats,
                       [self.ptx_layer] * n, [s.prompt for s in batch], [False] * n,
                       [s.meta["answers"][0] for s in batch], torch.ones(n, dtype=torch.bool, device=dev),
                       [s.meta["answers"] for s in batch], items=items, samples=batch)

    def ptx_term(self, ptx: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
        """PPO-ptx for one minibatch: one more forward through the (DDP-wrapped) policy on this
        process's answers (temperature 1). Returns (the term to add to the loss that is backpropagated,
        γ · NLL, times ``ptx_share × world`` under DDP so that DDP's gradient average is the gradient
        of γ · the token-mean NLL over the global ptx batch; the NLL to log, times ``ptx_share``:
        summed over processes it is the global token mean)."""
        plogp, _, _ = response_forward(self.policy, self.raw, self.adapter, ptx, list(range(len(ptx.layers))), 1.0,
                                       with_values=False)
        nll = ppo.ptx_loss(plogp, ptx.response_mask.float())
        world = self.rank_world[1]
        if world == 1:
            return self.cfg.ptx_coef * nll, nll.detach().float()
        return self.cfg.ptx_coef * nll * (self.ptx_share * world), nll.detach().float() * self.ptx_share

    # ---- learning helpers ------------------------------------------------------------------
    def backward_and_step(self, loss: torch.Tensor) -> float:
        """zero_grad, backward (through accelerate under DDP), grad-norm clip, then one host sync
        (the loss and the norm read together) before the optimizer step: a non-finite loss or
        gradient stops the run before the weights change (the last checkpoint stays the last good
        one). The loss is checked after backward, not before, so that a GPU is drained once per
        minibatch, not twice, and so that under DDP every process stops at the same step: a flag for
        "some process's loss is not finite" is all-reduced within the same sync (a check before
        backward stopped that one process and left the others waiting in the all-reduce)."""
        self.optimizer.zero_grad(set_to_none=True)
        params = self.trainable_params
        if self.sharded:  # FSDP averages the gradients in backward; the norm of sharded ones is a DTensor
            from .fsdp import full

            loss.backward()
            gn = full(torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm))
        elif self.acc is not None:
            self.acc.backward(loss)
            gn = self.acc.clip_grad_norm_(params, self.cfg.max_grad_norm)
        else:
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm)
        vals = torch.stack([loss.detach().float().reshape(()),
                            torch.as_tensor(gn).detach().float().reshape(()).to(loss.device)])
        # Whether any process's loss is non-finite, in the same host sync: a NaN in a loss term with a
        # finite gradient would otherwise stop one process and leave the others in the next collective.
        bad = (~torch.isfinite(vals[:1])).float()
        if self.rank_world[1] > 1:
            import torch.distributed as dist

            dist.all_reduce(bad)
        loss_v, gn_v, bad_v = torch.cat([vals, bad]).tolist()
        for what, v in (("loss", loss_v), ("gradient norm", gn_v)):
            if not math.isfinite(v):
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteError(f"the {what} became {v} at step {self.step + 1}")
        if bad_v:
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(f"the loss became non-finite on another process at step {self.step + 1}")
        self.optimizer.step()
        return gn_v

    def batch_rates(self, ro: Rollout, scores=None) -> dict:
        """Monitoring over the global batch (never a training signal of distillation): outcome
        rates of harmful and benign rows (written refusal, empty, degenerate), reward per layer
        (when ``scores`` is given) and, when the data has reference answers, VQA accuracy."""
        from ..judges.outcome import classify_outcome
        from .rewards import answer_accuracy

        sums: dict[str, list[float]] = {}

        def add(key, v):
            acc = sums.setdefault(key, [0.0, 0.0])
            acc[0] += v
            acc[1] += 1

        for t, p, h in zip(ro.texts, ro.prompts, ro.harmful):
            outcome = classify_outcome(t, p)[0]
            part = "harmful" if h else "benign"
            add(f"refusal_rate_{part}", float(outcome == "refused"))
            add(f"empty_rate_{part}", float(outcome == "empty"))
            add(f"degenerate_rate_{part}", float(outcome == "degenerate"))
        if scores is not None:
            for l, s in zip(ro.layers, scores.tolist()):
                add(f"score_layer_{l}", s)
        for t, a in zip(ro.texts, ro.answers):
            acc = answer_accuracy(t, a) if a else None
            if acc is not None:
                add("answer_accuracy", acc)
        keys = {f"{m}_rate_{p}" for m in ("refusal", "empty", "degenerate") for p in ("harmful", "benign")}
        if scores is not None:
            keys |= {f"score_layer_{l}" for l in self.layers}
        if self.has_answers:
            keys.add("answer_accuracy")
        return {k: (sums[k][0] / sums[k][1] if k in sums else None) for k in sorted(set(sums) | keys)}

    def _clock(self) -> float:
        if self.raw.device.type == "cuda":  # GPU work is asynchronous: wait for it before reading the clock
            torch.cuda.synchronize(self.raw.device)
        return time.time()

    def _sum_across(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over processes (one all-reduce), on the CPU."""
        if self.acc is None or self.acc.num_processes == 1:
            return t.detach().cpu()
        return self.acc.reduce(t.detach().to(self.acc.device), "sum").cpu()

    # ---- checkpoints -----------------------------------------------------------------------
    def _save_adapter(self, path: Path, trainable: dict | None) -> None:
        """peft's adapter folder; sharded, from the gathered weights (``trainable``)."""
        if trainable is None:
            self.peft.save_pretrained(path)
        else:  # the policy names the peft model "lm"
            self.peft.save_pretrained(path, state_dict={n.removeprefix("lm."): t for n, t in trainable.items()
                                                        if n.startswith("lm.")})

    def save_checkpoint(self, out: Path, step: int) -> Path:
        """OUT/checkpoints/step-N: trainable weights (LoRA + value head), optimizer, scheduler, the
        method's state, RNG of every process (safetensors), data position (= step); written and
        published by :func:`layersafe.rl.checkpoint.write_checkpoint`."""
        rank, world = self.rank_world
        # Sharded: gathered by every process (collectives), written by rank 0, keyed by name.
        gathered = ckpt.training_state(self._unwrapped(), self.optimizer, True) if self.sharded else None

        def write(tmp: Path) -> None:
            trainable, optim = gathered or ckpt.training_state(self._unwrapped(), self.optimizer, False)
            ckpt.save_tensors(trainable, tmp / "trainable.pt")
            ckpt.save_tensors(optim, tmp / "optimizer.pt")
            ckpt.save_tensors(self.scheduler.state_dict(), tmp / "scheduler.pt")
            atomic_write_json(tmp / "trainer_state.json", {
                "step": step, "method": getattr(self.cfg, "method", "lppo"), "world_size": world,
                "data_position": step * world * self.cfg.batch_size, "layers": self.layers,
                "layer_weights": self.layer_weights, **self.extra_state()})
            if self.peft is not None:
                self._save_adapter(tmp / ADAPTER_DIR, gathered[0] if gathered else None)  # loadable on its own, too

        return ckpt.write_checkpoint(out, step, self.cfg.keep_checkpoints, write, rank=rank, world=world,
                                     barrier=self._barrier)

    def load_checkpoint(self, path: Path) -> int:
        try:
            state = json.loads((path / "trainer_state.json").read_text())
            if not isinstance(state, dict) or not isinstance(state.get("step"), int):
                raise ValueError("no integer step")
        except (OSError, ValueError) as e:
            raise UserError(f"checkpoint {path}: trainer_state.json is unreadable ({e}); start a new --out") from None
        rank, world = self.rank_world
        if state.get("world_size") != world:
            raise UserError(f"checkpoint {path} was written by {state.get('world_size')} processes; resume with the same number")
        # sharded: every process reads the full tensors and keeps its shards
        ckpt.load_training_state(path, self._unwrapped(), self.optimizer, self.sharded, exact=False)
        # load_state_dict restores each group's options, fused/foreach included, as the writing run
        # chose them (maybe on another device or before fused AdamW): keep this run's choice.
        for g in self.optimizer.param_groups:
            g.update(self.optimizer_impl)
        self.scheduler.load_state_dict(ckpt.load_tensors(path / "scheduler.pt"))
        self.load_extra_state(state)
        ckpt.load_rng_state(ckpt.rng_state_file(path, rank))
        self.step = int(state["step"])
        return self.step

    def _barrier(self):
        if self.acc is not None and self.acc.num_processes > 1:
            self.acc.wait_for_everyone()

    # ---- final outputs ---------------------------------------------------------------------
    def save_final(self, out: Path, merge: bool) -> None:
        trainable = None
        if self.sharded:  # a collective: before rank 0 alone goes on
            from .fsdp import full_trainable

            trainable = full_trainable(self._unwrapped())
        if not self.is_main:
            return
        pol = self._unwrapped()
        if pol.value_head is not None:
            from safetensors.torch import save_file

            head = ({k: v.detach().cpu() for k, v in pol.value_head.state_dict().items()} if trainable is None else
                    {n.removeprefix("value_head."): t for n, t in trainable.items() if n.startswith("value_head.")})
            save_file({k: v.contiguous() for k, v in head.items()}, str(out / "value_head.safetensors"))
        if self.peft is not None:
            self._save_adapter(out / ADAPTER_DIR, trainable)  # PeftModel.from_pretrained(base, OUT/adapter)
            if merge:
                merged = self.peft.merge_and_unload()  # last thing we do: merging changes the module in place
                _save_model(merged, self.adapter.processor, out / MERGED_DIR)
        else:
            _save_model(self.raw, self.adapter.processor, out / MERGED_DIR)


class NonFiniteError(UserError):
    """Training produced a NaN/inf loss or gradient: stopped, last checkpoint kept."""


def _save_model(model, processor, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _make_accelerator():
    """One process: no accelerate needed (None). Under ``accelerate launch``: an Accelerator."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes"):
        raise UserError("align under accelerate's FSDP is not supported (the encoder and embeddings run outside the "
                        "model's forward, docs/scale.md); launch with a plain multi-GPU config (data parallel), "
                        "adding --shard-model to shard the language model")
    from accelerate import Accelerator

    # Without cpu=True accelerate ignores a multi-process launch on a CPU-only machine and every
    # process trains alone (same folder, no gradient all-reduce).
    acc = Accelerator(cpu=not torch.cuda.is_available())
    from ..distributed import shutdown_at_exit

    shutdown_at_exit()
    return acc


# ============================================================================================
# Run: output folder, resume, logging, progress
# ============================================================================================

class Logger:
    """log.jsonl (appended, fsynced per step) + log.csv (rewritten atomically) + optional TB/W&B."""

    def __init__(self, out: Path, cfg, resume_step: int | None):
        self.out = out
        path = out / LOG_JSONL
        self.rows = []
        if resume_step is not None and path.exists():
            # Rows written after the checkpoint (before a crash) are redone: drop them.
            self.rows = trim_jsonl(path, resume_step)
        self.jsonl = JsonlAppender(path)
        self.tb = self.wandb = None
        if cfg.log_with == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("--log-with tensorboard needs the tensorboard package (pip install tensorboard)") from None
            self.tb = SummaryWriter(str(out / "tensorboard"))
        elif cfg.log_with == "wandb":
            try:
                import wandb
            except ImportError:
                raise UserError("--log-with wandb needs the wandb package (pip install wandb)") from None
            self.wandb = wandb.init(project="layersafe-align", config=asdict(cfg), dir=str(out))

    def write(self, row: dict) -> None:
        self.rows.append(row)
        self.jsonl.write(row)
        write_rows(self.out / LOG_CSV, self.rows)  # rewritten atomically: the columns can grow (new layers)
        nums = {k: v for k, v in row.items() if isinstance(v, (int, float)) and v is not None and k != "step"}
        if self.tb is not None:
            for k, v in nums.items():
                self.tb.add_scalar(k, v, row["step"])
        if self.wandb is not None:
            self.wandb.log(nums, step=row["step"])

    def close(self):
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def prepare_out(cfg, resume_keys) -> tuple[Path, Path | None]:
    from ..lock import resume_point

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    latest = resume_point(out, cfg, resume_keys, run_json=RUN_JSON, ckpt_dir=CKPT_DIR, latest=LATEST)
    out.mkdir(parents=True, exist_ok=True)
    return out, latest


def run(cfg, trainer_cls, resume_keys, *, adapter=None, progress: bool = True, log=print,
        _stop_after: int | None = None) -> dict:
    """Drive ``trainer_cls`` over ``cfg.steps`` steps in OUT (already locked by the caller):
    resume from the last checkpoint, log every step, checkpoint every ``save_every`` steps, save
    the adapter. A failure (a judge that does not load, a non-finite loss, ...) marks run.json
    ``failed`` with the reason, so ``--resume`` continues from the last checkpoint (or, with
    none, starts over in the same folder)."""
    from tqdm.auto import tqdm

    from ..models import model_identity
    from ..versions import package_versions as _versions

    out, latest = prepare_out(cfg, resume_keys)
    run_info: dict = {"config": asdict(cfg), "versions": _versions()}
    # Bad options, a missing model or data fail here, before anything is written.
    trainer = trainer_cls(cfg, adapter=adapter, log=log)
    try:
        start = trainer.load_checkpoint(latest) if latest is not None else 0
        if start and trainer.is_main:
            log(f"resumed from {latest} (step {start})")
        run_info.update(model=model_identity(trainer.adapter, cfg.model), num_layers=trainer.adapter.num_layers,
                        default_layer=trainer.adapter.default_layer, layers=trainer.layers,
                        layer_weights=trainer.layer_weights, n_train_prompts=len(trainer.samples),
                        n_benign_prompts=len(trainer.benign), world_size=trainer.rank_world[1], status="running",
                        started_step=start, **({"fsdp": trainer.sharding} if trainer.sharding else {}),
                        **({"recomputed_modules": trainer.recomputed} if trainer.recomputed else {}),
                        **trainer.run_info())
        if trainer.is_main:
            atomic_write_json(out / RUN_JSON, run_info)
        # On --resume, log rows past the checkpoint (or all of them, resuming a run that failed
        # before its first checkpoint) are redone: the logger drops them.
        logger = Logger(out, cfg, start if cfg.resume else None) if trainer.is_main else None
        bar = tqdm(total=cfg.steps, initial=start, desc=f"align ({getattr(cfg, 'method', 'lppo')})", unit="step",
                   disable=not (progress and trainer.is_main), dynamic_ncols=True)
        last: dict = {}
        timing = _timing_file(out, start) if trainer.is_main else None
        times: list[dict] = []
        try:
            for step in range(start + 1, cfg.steps + 1):
                last = trainer.train_step(step)
                trainer.step = step
                times.append(step_timing(trainer, step, last))
                if logger:
                    logger.write(last)
                    timing.write(times[-1])
                bar.update(1)
                bar.set_postfix(**trainer.progress_postfix(last))
                if step % cfg.save_every == 0 or step == cfg.steps:
                    trainer.save_checkpoint(out, step)
                if _stop_after is not None and step >= _stop_after:
                    return {"stopped_at": step, "last": last}
        finally:
            trainer.release_decoder()  # before save_final's merge changes the modules the graph replays
            trainer.close_prefetch()
            bar.close()
            if logger:
                logger.close()
                timing.close()
            run_info["timing"] = timing_summary(times, cfg.batch_size * trainer.rank_world[1])
        trainer.save_final(out, cfg.merge)
    except BaseException as e:
        if trainer.is_main:
            run_info.update(status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed",
                            error=f"{type(e).__name__}: {e}"[:500])
            with contextlib.suppress(OSError):
                atomic_write_json(out / RUN_JSON, run_info)
        raise
    run_info.update(status="complete", final=last, steps=cfg.steps)
    if trainer.is_main:
        atomic_write_json(out / RUN_JSON, run_info)
    return run_info


def _timing_file(out: Path, start: int) -> JsonlAppender:
    """OUT/timing.jsonl, its rows past ``start`` (steps a resumed run redoes) dropped, as the log's."""
    path = out / TIMING_JSONL
    if path.exists():
        trim_jsonl(path, start)
    return JsonlAppender(path)


def step_timing(trainer, step: int, row: dict) -> dict:
    """One timing.jsonl row: the step's wall time, its phases (``generate``, ``score``, ``learn``;
    GPU-synced) and the parts of the rollout (``tokenize``: images loaded and preprocessed,
    ``encode``, ``decode``, ``gather``: responses shared between processes)."""
    flags = {k: int(v) for k in ("decode_cache_kept", "rollout_merged")
             if (v := getattr(trainer, k, None)) is not None}
    return {"step": step, "seconds": row.get("seconds"),
            **{k: round(v, 4) for k, v in getattr(trainer, "last_phase_seconds", {}).items()},
            **{f"rollout_{k}": round(v, 4) for k, v in getattr(trainer, "rollout_seconds", {}).items()},
            **flags}


def timing_summary(times: list[dict], global_batch: int) -> dict:
    """run.json ``timing``: mean seconds per step and per phase over this launch's steps, the first
    left out when there are more (CUDA graph capture, allocator and kernel warm-up), and the rollouts
    per second that makes."""
    timed = times[1:] if len(times) > 1 else times
    if not timed:
        return {}
    keys = [k for k in timed[0] if k not in ("step", "decode_cache_kept", "rollout_merged")  # seconds only
            and all(isinstance(t.get(k), (int, float)) for t in timed)]
    mean = {k: round(sum(t[k] for t in timed) / len(timed), 4) for k in keys}
    out = {"steps_timed": [t["step"] for t in timed], "global_batch": global_batch, "mean_s": mean}
    if mean.get("seconds"):
        out["samples_per_s"] = round(global_batch / mean["seconds"], 3)
    return out


def fmt(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"
