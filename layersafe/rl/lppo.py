"""L-PPO trainer (paper eq. 10): clipped PPO where the policy sees P(e_l), the projected features
of image-encoder layer l, for one layer or a weighted set sampled per rollout.

One step, CleanRL-style, every detail in this file (math in :mod:`layersafe.rl.ppo`):

1. Rollout. Draw ``batch_size`` prompts per process (harmful + benign mix) and a layer per prompt; run the
   frozen encoder ONCE for the batch, project each prompt's layer ``P(e_l)`` and CACHE it: the
   encoder and projector are frozen, so every PPO epoch reuses these features (DESIGN.md §5).
   Sample responses from the policy with those features (left padding, temperature T, no top-k,
   a seed per row). With N processes the batch is one global batch of N × ``batch_size`` rows,
   drawn as one process would draw it; each process generates, scores and learns on its shard
   and the update equals one process's (docs/lppo.md, Multi-GPU).
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

import contextlib
import json
import math
import os
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import UserError
from ..io import JsonlAppender, atomic_write_json, atomic_write_text, read_jsonl, write_rows
from ..lock import locked_out, resume_point
from . import ppo

LOG_JSONL = "log.jsonl"
LOG_CSV = "log.csv"
RUN_JSON = "run.json"
CKPT_DIR = "checkpoints"
LATEST = "latest"
ADAPTER_DIR = "adapter"
MERGED_DIR = "merged"
LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


@dataclass
class LPPOConfig:
    """Every knob of ``layersafe align`` (TRL-style: one dataclass, defaults, help in metadata)."""

    # --- model, data, layers, reward ------------------------------------------------------
    model: str = field(default="tiny-random-llava", metadata={"help": "HF id / local folder of a LLaVA model (tiny-random-llava = offline demo)"})
    data: str = field(default="advbench-images", metadata={"help": "training prompts: built-in dataset or .jsonl/.csv (id, prompt, image, harmful); held-out CP goals are always removed"})
    benign_data: str | None = field(default=None, metadata={"help": ".jsonl/.csv of benign prompts (image optional: a benign photo is paired), e.g. XSTest prompts (contrast_* rows dropped); optional reference answers for the answer reward: answer (one string) or answers (a list in .jsonl; in .csv 'a|b' or a JSON list)"})
    benign_fraction: float = field(default=0.5, metadata={"help": "share of each rollout batch drawn from --benign-data"})
    limit: int | None = field(default=None, metadata={"help": "use only the first N training prompts"})
    layers: str = field(default="default", metadata={"help": "layer spec (N, A-B, all, default, lists); several layers = one sampled per prompt"})
    layer_weights: str | None = field(default=None, metadata={"help": "comma list of sampling weights, one per layer of --layers (default uniform)"})
    layers_from_scan: str | None = field(default=None, metadata={"help": "scan run folder: train the top-k layers of its metrics.csv by ASR, weighted by ASR"})
    top_k: int = field(default=3, metadata={"help": "with --layers-from-scan: how many layers"})
    method: str = field(default="lppo", metadata={"help": "repair method: lppo (clipped PPO on --reward, the paper's eq. 10) or distill (layer-consistency distillation: the model at --teacher-layer teaches the LoRA student at --layers; no reward, docs/lppo.md)"})
    teacher_layer: str = field(default="default", metadata={"help": "with --method distill: the encoder layer whose features the teacher (adapter disabled) sees; must not be among --layers"})
    reward: str = field(default="refusal", metadata={"help": "refusal | answer (VQA accuracy on benign rows with reference answers, else 0) | rm:PATH | llamaguard:ID | judge:NAME | weighted sum 'W*A+W*B', e.g. refusal+answer"})
    out: str = field(default="runs/align", metadata={"help": "output folder"})
    # --- rollout ---------------------------------------------------------------------------
    steps: int = field(default=200, metadata={"help": "PPO iterations (rollout + update)"})
    batch_size: int = field(default=16, metadata={"help": "rollouts per step per process (global batch = this x processes)"})
    mini_batch_size: int = field(default=4, metadata={"help": "sequences per gradient step per process (global = this x processes)"})
    ppo_epochs: int = field(default=4, metadata={"help": "passes over each rollout batch"})
    max_new_tokens: int = field(default=64, metadata={"help": "response length limit"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature; log-probs use logits/T too"})
    cache: str = field(default="auto", metadata={"help": "rollout KV cache: auto (static cache + CUDA-graph decode steps on CUDA), dynamic (stock generate), static"})
    # --- PPO -------------------------------------------------------------------------------
    gamma: float = field(default=1.0, metadata={"help": "discount γ (eq. 6)"})
    lam: float = field(default=0.95, metadata={"help": "GAE λ (eq. 6)"})
    clip_range: float = field(default=0.2, metadata={"help": "policy ratio clip ε (eq. 8)"})
    clip_range_value: float | None = field(default=0.2, metadata={"help": "value clip ε_v around the rollout values (None = off)"})
    vf_coef: float = field(default=0.1, metadata={"help": "value loss coefficient c1 (eq. 9)"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus coefficient"})
    ptx_coef: float = field(default=0.0, metadata={"help": "PPO-ptx (Ouyang et al. 2022): add this x the NLL of the reference answers of benign rows (answer/answers columns) to every minibatch's loss; 0 = off"})
    ptx_layer: str = field(default="default", metadata={"help": "encoder layer whose features the PPO-ptx answers are learned on (default: the model's default layer)"})
    kl_coef: float = field(default=0.05, metadata={"help": "KL penalty η (eq. 5); initial value if adaptive"})
    kl_estimator: str = field(default="k1", metadata={"help": "per-token KL estimator: k1 (log-ratio) or k3"})
    adaptive_kl: bool = field(default=False, metadata={"help": "adapt η towards --kl-target (Ziegler et al. 2019)"})
    kl_target: float = field(default=6.0, metadata={"help": "adaptive KL: target per-sequence KL"})
    kl_horizon: int = field(default=10000, metadata={"help": "adaptive KL: horizon in samples"})
    whiten_advantages: bool = field(default=True, metadata={"help": "normalise advantages per rollout batch"})
    whiten_rewards: bool = field(default=False, metadata={"help": "rescale per-token rewards (no mean shift) before GAE"})
    missing_eos_penalty: float = field(default=-1.0, metadata={"help": "added to the score of responses with no stop token (0 = off)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient-norm clip"})
    target_approx_kl: float | None = field(default=None, metadata={"help": "stop this step's PPO epochs once an epoch's approx-KL exceeds this"})
    # --- optimisation ---------------------------------------------------------------------
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate (policy and value head)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    lr_schedule: str = field(default="constant", metadata={"help": "constant | linear (decay to 0 over --steps)"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps"})
    # --- model adaptation -------------------------------------------------------------------
    full_finetune: bool = field(default=False, metadata={"help": "train all LM weights instead of LoRA (reference = frozen copy: 2x memory)"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (0 keeps rollout and training forwards identical)"})
    lora_target_modules: str = field(default=LORA_TARGETS, metadata={"help": "LM linear layers that get LoRA (language model only)"})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:N (accelerate launch sets it per process)"})
    # --- run management --------------------------------------------------------------------
    seed: int = field(default=0, metadata={"help": "seed: data order, layer sampling, generation"})
    save_every: int = field(default=50, metadata={"help": "checkpoint every N steps (and at the end)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "how many recent checkpoints to keep"})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in --out"})
    merge: bool = field(default=False, metadata={"help": "also save OUT/merged: adapter merged, loads with plain transformers"})
    log_with: str = field(default="none", metadata={"help": "none | tensorboard | wandb (JSONL/CSV always)"})
    reward_batch_size: int = field(default=16, metadata={"help": "batch size of reward-model / judge calls"})
    allow_pickle: bool = field(default=False, metadata={"help": "also load pickle weights (pytorch_model.bin: can run code); default safetensors only"})

    def validate(self) -> None:
        pos = {"steps": self.steps, "batch_size": self.batch_size, "mini_batch_size": self.mini_batch_size,
               "ppo_epochs": self.ppo_epochs, "max_new_tokens": self.max_new_tokens, "save_every": self.save_every,
               "top_k": self.top_k, "keep_checkpoints": self.keep_checkpoints}
        for k, v in pos.items():
            if not isinstance(v, int) or v < 1:
                raise UserError(f"--{k.replace('_', '-')} must be a positive integer, got {v!r}")
        if self.batch_size % self.mini_batch_size:
            raise UserError(f"--batch-size {self.batch_size} must be a multiple of --mini-batch-size {self.mini_batch_size}")
        if self.kl_estimator not in ppo.KL_ESTIMATORS:
            raise UserError(f"--kl-estimator {self.kl_estimator!r}: use one of {', '.join(ppo.KL_ESTIMATORS)}")
        if self.lr_schedule not in ("constant", "linear"):
            raise UserError(f"--lr-schedule {self.lr_schedule!r}: use constant or linear")
        if self.log_with not in ("none", "tensorboard", "wandb"):
            raise UserError(f"--log-with {self.log_with!r}: use none, tensorboard or wandb")
        if not 0 <= self.benign_fraction <= 1:
            raise UserError("--benign-fraction must be between 0 and 1")
        if self.ptx_coef < 0:
            raise UserError("--ptx-coef must be >= 0")
        from .rewards import parse_reward_spec

        parse_reward_spec(self.reward)  # a malformed --reward fails before any model loads
        if self.cache not in ("auto", "dynamic", "static"):
            raise UserError(f"--cache {self.cache!r}: use auto, dynamic or static")
        if not self.temperature > 0:
            raise UserError("--temperature must be > 0 (PPO needs a sampling policy)")
        for k in ("gamma", "lam"):
            if not 0 <= getattr(self, k) <= 1:
                raise UserError(f"--{k} must be in [0, 1]")
        if self.clip_range <= 0 or self.kl_coef < 0 or self.vf_coef < 0:
            raise UserError("--clip-range must be > 0; --kl-coef and --vf-coef must be >= 0")


# ============================================================================================
# Data: prompts, held-out goals, benign mix, layer sampling
# ============================================================================================

def _held_out_goals() -> set[str]:
    from ..data.builtin import CUSTOM_PROMPT_GOAL_INDICES, advbench_goals

    goals = advbench_goals()
    return {goals[i][0].strip() for i in CUSTOM_PROMPT_GOAL_INDICES}


def load_training_prompts(cfg: LPPOConfig, log=print):
    """(harmful-or-mixed samples, benign samples). The CP test goals never enter training."""
    from ..data import load_dataset

    if cfg.data == "custom-prompts":
        raise UserError("custom-prompts is the held-out test set (CP); train on advbench-images or your own file")
    ds = load_dataset(cfg.data, seed=cfg.seed, limit=cfg.limit)
    held = _held_out_goals()
    samples = [s for s in ds.samples if s.prompt.strip() not in held]
    if len(samples) < len(ds.samples):
        log(f"removed {len(ds.samples) - len(samples)} prompts that are held-out CP test goals")
    benign = load_benign(cfg.benign_data, cfg.seed) if cfg.benign_data else []
    if not samples:
        raise UserError(f"--data {cfg.data}: no usable prompts")
    for s in samples:  # benign rows of --data may carry answers too (vqav2:..., answer/answers columns)
        if s.harmful is False and ("answer" in s.meta or "answers" in s.meta):
            try:
                s.meta["answers"] = row_answers(s.meta)
            except UserError as e:
                raise UserError(f"--data {cfg.data}: sample {s.id}: {e}") from None
    return samples, benign


def row_answers(row: dict) -> list[str] | None:
    """Reference answers of a data row (or a sample's ``meta``), for the ``answer`` reward.

    ``answers`` wins over ``answer``. ``answer`` is one answer (a string; a number is turned into
    one). ``answers`` is a list (.jsonl), or a string: a JSON list (``["2", "two"]``, as
    :func:`layersafe.io.write_rows` writes lists into CSV) or answers separated by ``|``
    (``2|two``; the CSV form). Blank answers are dropped; no answer left -> None."""
    for key in ("answers", "answer"):
        v = row.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, str):
            text = v.strip()
            if key == "answer":
                v = [text]
            elif text.startswith("["):
                try:
                    v = json.loads(text)
                except json.JSONDecodeError:
                    raise UserError(f"answers {text[:60]!r}: starts with [ but is not a JSON list") from None
            else:
                v = text.split("|")
        elif not isinstance(v, (list, tuple)):
            v = [v]
        if not isinstance(v, (list, tuple)) or any(isinstance(a, (dict, list, tuple)) for a in v):
            raise UserError(f"{key} {v!r}: give a string or a list of strings")
        out = [str(a).strip() for a in v if a is not None and str(a).strip()]
        if out:
            return out
    return None


def load_benign(spec: str, seed: int):
    """Benign prompts from a .jsonl/.csv with a ``prompt`` column; rows without an image get a
    benign photo; XSTest's unsafe ``contrast_*`` rows are dropped. Optional reference answers
    (``answer`` / ``answers`` columns, :func:`row_answers`) go to ``Sample.meta["answers"]``."""
    from ..data.base import SKIMAGE_PREFIX, Sample
    from ..data.builtin import BENIGN_PHOTOS
    from ..io import read_rows

    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--benign-data {spec}: file not found")
    rows = read_rows(path)
    if not rows or "prompt" not in rows[0]:
        raise UserError(f"--benign-data {spec}: needs a prompt column")
    rng = random.Random(seed)
    out = []
    for i, r in enumerate(rows):
        if str(r.get("type", "")).startswith("contrast_") or str(r.get("label", "")).lower() == "unsafe":
            continue
        prompt = str(r.get("prompt") or "").strip()
        if not prompt:
            continue
        img = str(r.get("image") or "").strip()
        if not img:
            img = SKIMAGE_PREFIX + rng.choice(BENIGN_PHOTOS)
        elif not img.startswith(SKIMAGE_PREFIX) and not Path(img).is_absolute():
            img = str((path.resolve().parent / img).resolve())
        try:
            answers = row_answers(r)
        except UserError as e:
            raise UserError(f"--benign-data {spec}: row {i + 1}: {e}") from None
        out.append(Sample(id=f"benign-{r.get('id', i)}", prompt=prompt, image=img, harmful=False,
                          meta={"answers": answers} if answers else {}))
    if not out:
        raise UserError(f"--benign-data {spec}: no benign prompts found")
    return out


def layers_from_scan(run_dir: str, top_k: int) -> tuple[list[int], list[float]]:
    """The ``top_k`` layers with the highest ASR in RUN_DIR/metrics.csv, weights ∝ ASR."""
    import csv

    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise UserError(f"--layers-from-scan: {path} not found; run `layersafe scan ... --judge refusal` first")
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("asr") not in (None, "", "nan")]
    if not rows:
        raise UserError(f"{path} has no layer with an ASR")
    rows.sort(key=lambda r: (-float(r["asr"]), int(r["layer"])))
    top = rows[:top_k]
    layers = [int(r["layer"]) for r in top]
    w = [max(float(r["asr"]), 0.0) for r in top]
    if sum(w) == 0:
        w = [1.0] * len(layers)
    return layers, w


def resolve_layers(cfg: LPPOConfig, adapter) -> tuple[list[int], list[float]]:
    from ..layers import parse_layers

    if cfg.layers_from_scan:
        layers, w = layers_from_scan(cfg.layers_from_scan, cfg.top_k)
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


def draw_batch(samples, benign, cfg: LPPOConfig, step: int, world: int = 1):
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
            perm = list(range(len(pool)))
            random.Random(f"{cfg.seed}-{salt}-{epoch}").shuffle(perm)
            out.append(pool[perm[pos]])
        return out

    return take(samples, n_main, "main") + (take(benign, n_benign, "benign") if n_benign else [])


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


# ============================================================================================
# Policy + value, and the one training forward shared by rollout scoring and learning
# ============================================================================================

class PolicyWithValue(nn.Module):
    """The (peft-wrapped) VLM plus a scalar value head on the input of ``lm_head``."""

    def __init__(self, lm: nn.Module, raw_model: nn.Module, hidden_size: int, autocast_dtype=None):
        super().__init__()
        self.lm = lm
        # bf16/fp16 base + LoRA kept in fp32 (peft's default, so small updates are not rounded
        # away): run the LM under autocast with peft's input casting off. Otherwise every LoRA
        # layer makes its own fp32 copy of its input, kept for backward: about half the
        # activation memory of a 7B step, and slow fp32 matmuls.
        self.autocast_dtype = autocast_dtype
        self.value_head = nn.Linear(hidden_size, 1)
        # Zero init: V = 0 at the start, so early value errors do not push the shared trunk.
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self._hidden = None
        raw_model.get_output_embeddings().register_forward_pre_hook(self._grab)

    def _grab(self, module, args):
        self._hidden = args[0]

    def forward(self, inputs_embeds, attention_mask, position_ids, n_keep: int, with_values: bool = True):
        with self._autocast(inputs_embeds.device):
            out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                          logits_to_keep=n_keep, use_cache=False)
        hidden, self._hidden = self._hidden, None
        values = self.value_head(hidden.float()).squeeze(-1) if with_values else None  # fp32, outside autocast
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


def build_embeds(model, image_token_id: int, prompt_ids, prompt_mask, response_ids, response_mask, features):
    """``inputs_embeds`` for [left-padded prompt | right-padded response] with the cached layer-l
    features scattered into the prompt's image-token positions (never into the response: a
    sampled image-token id there is an ordinary embedding, as during generation)."""
    ids = torch.cat([prompt_ids, response_ids], 1)
    attn = torch.cat([prompt_mask, response_mask], 1)
    embeds = model.get_input_embeddings()(ids)
    is_img = torch.zeros_like(ids, dtype=torch.bool)
    is_img[:, :prompt_ids.shape[1]] = prompt_ids == image_token_id
    feats = torch.cat([f.reshape(-1, f.shape[-1]) for f in features]).to(embeds.device, embeds.dtype)
    if int(is_img.sum()) != feats.shape[0]:
        raise RuntimeError(f"image tokens ({int(is_img.sum())}) do not match cached features ({feats.shape[0]})")
    embeds = embeds.masked_scatter(is_img.unsqueeze(-1).expand_as(embeds), feats)
    # Positions from the mask, as generate() computes them for left-padded batches.
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    return embeds, attn, position_ids


def response_forward(policy: PolicyWithValue, raw_model, image_token_id, ro: Rollout, idx, temperature: float,
                     with_values: bool = True):
    """Log-probs (of logits/T) of the response tokens, entropy-ready logits and values, for the
    rows ``idx`` of a rollout. Position P−1+t predicts response token t."""
    sel = lambda t: t[idx]  # noqa: E731
    embeds, attn, pos = build_embeds(raw_model, image_token_id, sel(ro.prompt_ids), sel(ro.prompt_mask),
                                     sel(ro.response_ids), sel(ro.response_mask), [ro.features[i] for i in idx])
    R = ro.response_ids.shape[1]
    logits, values = policy(embeds, attn, pos, n_keep=R + 1, with_values=with_values)
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


def tokenize_and_project(ad, samples, layers):
    """Tokenise each training sample with its image and project its layer's features P(e_l),
    encoding the images once for all layers in the batch. Returns (items, features)."""
    from ..data.base import load_image

    items = []
    for s in samples:
        try:
            items.append(ad.tokenize(ad.build_prompt(s.prompt), load_image(s.image)))
        except Exception as e:  # a bad image in training data is the user's to fix, not to skip silently
            raise UserError(f"cannot load training sample {s.id} ({s.image}): {e}") from None
    enc = ad.encode(items, sorted(set(layers)))
    feats: list = [None] * len(samples)
    for layer in sorted(set(layers)):
        idx = [i for i, l in enumerate(layers) if l == layer]
        for i, f in zip(idx, ad.features(enc, layer, idx)):
            feats[i] = f.detach()
    return items, feats


class LPPOTrainer:
    def __init__(self, cfg: LPPOConfig, *, adapter=None, log=print, accelerator=None):
        cfg.validate()
        self.cfg, self.log = cfg, log
        self.acc = accelerator or _make_accelerator()
        from ..models import load_vlm

        if adapter is None:
            device = cfg.device
            if self.acc is not None and self.acc.num_processes > 1:
                device = str(self.acc.device)
            adapter = load_vlm(cfg.model, dtype=cfg.dtype, device=device, allow_pickle=cfg.allow_pickle)
        if adapter.family != "llava":
            raise UserError(f"align supports the LLaVA family for now; {cfg.model} is {adapter.family}")
        self.adapter = adapter
        self.raw = adapter.model
        self.image_token_id = adapter.image_token_id
        self.tok = adapter.tokenizer
        self.layers, self.layer_weights = resolve_layers(cfg, adapter)
        self.samples, self.benign = load_training_prompts(cfg, log=log if self.is_main else (lambda m: None))
        self.reward_fn = _build_reward(cfg)
        # answer_accuracy is logged (every step, for a stable log.csv) when any benign row has answers.
        self.has_answers = any(s.harmful is False and s.meta.get("answers") for s in (*self.samples, *self.benign))
        if self.is_main and not self.has_answers and any(name == "answer" for _, name, _ in self.reward_fn.terms):
            log("warning: --reward has an answer term but no benign prompt has reference answers "
                "(answer/answers columns of --benign-data): it scores 0 on every row")
        eos = self.raw.generation_config.eos_token_id
        self.eos_id = (eos[0] if isinstance(eos, list) else eos) if eos is not None else self.tok.eos_token_id
        self.ptx_pool, self.ptx_layer = self._ptx_setup()
        torch.manual_seed(cfg.seed)
        self._wrap_model()
        self.kl_ctl = (ppo.AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon) if cfg.adaptive_kl
                       else ppo.FixedKLController(cfg.kl_coef))
        params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda)
        if self.acc is not None:
            self.policy, self.optimizer = self.acc.prepare(self.policy, self.optimizer)
        self.step = 0

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
            lm = raw.model.language_model
            for p in lm.parameters():
                p.requires_grad_(True)
            if raw.get_output_embeddings().weight is not lm.get_input_embeddings().weight:
                raw.get_output_embeddings().weight.requires_grad_(True)
            self.peft = None
            self.policy = PolicyWithValue(raw, raw, hidden)
            self.ref_policy = PolicyWithValue(self.ref_model, self.ref_model, hidden)
        else:
            from peft import LoraConfig, get_peft_model

            names = [t.strip() for t in cfg.lora_target_modules.split(",") if t.strip()]
            # Regex on full module names: LoRA goes into the language model only, never the
            # vision tower or projector (their names also contain q_proj / linear_*).
            target = r".*language_model.*\.(" + "|".join(map(re.escape, names)) + r")"
            lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                              target_modules=target, bias="none")
            self.peft = get_peft_model(raw, lcfg)
            if not any(p.requires_grad for p in self.peft.parameters()):
                raise UserError(f"--lora-target-modules {cfg.lora_target_modules!r} matched no language-model layer")
            low = raw.get_output_embeddings().weight.dtype
            self.policy = PolicyWithValue(self.peft, raw, hidden,
                                          autocast_dtype=low if low in (torch.bfloat16, torch.float16) else None)
            self.ref_policy = None
        self.policy.value_head.to(raw.get_output_embeddings().weight.device)

    def _unwrapped(self) -> PolicyWithValue:
        return self.acc.unwrap_model(self.policy) if self.acc is not None else self.policy

    def reference_logprobs(self, ro: Rollout, idx) -> torch.Tensor:
        """log π_ref of the response tokens: LoRA disabled (same weights), same layer-l features."""
        pol = self._unwrapped()
        with torch.no_grad():
            if self.peft is not None:
                with self.peft.disable_adapter():
                    logp, _, _ = response_forward(pol, self.raw, self.image_token_id, ro, idx, self.cfg.temperature,
                                                  with_values=False)
            else:
                logp, _, _ = response_forward(self.ref_policy, self.ref_model, self.image_token_id, ro, idx,
                                              self.cfg.temperature, with_values=False)
        return logp

    # ---- rollout ---------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, step: int) -> Rollout:
        """The GLOBAL rollout of ``step``, the same on every process: each process draws and
        encodes the whole global batch (the encoder is cheap next to decoding), generates its
        own rows (:func:`shard`) with per-row seeds, and the responses are gathered."""
        from ..models.base import left_pad, right_pad

        cfg, ad = self.cfg, self.adapter
        rank, world = self.rank_world
        batch = draw_batch(self.samples, self.benign, cfg, step, world)
        layers = draw_layers(self.layers, self.layer_weights, len(batch), cfg.seed, step)
        items, feats = tokenize_and_project(ad, batch, layers)
        mine = shard(len(batch), rank, world)
        self.raw.eval()
        # PPO's ratio assumes samples come from softmax(logits/T): no top-k truncation (transformers
        # fills an unset top_k with 50). Set only around generate: save_pretrained rejects top_k=0.
        gc = self.raw.generation_config
        old_top_k, gc.top_k = gc.top_k, 0
        try:
            gens = ad.generate([items[j] for j in mine], [feats[j] for j in mine], max_new_tokens=cfg.max_new_tokens,
                               do_sample=True, temperature=cfg.temperature, top_p=1.0, cache=cfg.cache,
                               sample_seeds=sample_seeds(cfg.seed, step, mine))
        finally:
            gc.top_k = old_top_k
        ad.release_cache()  # a static KV cache would sit idle through scoring and learning
        gens = self._gather_rows(gens)
        dev = self.raw.get_input_embeddings().weight.device
        pad = self.tok.pad_token_id
        resp = [torch.tensor(g.tokens + ([self.eos_id] if g.finish_reason == "stop" else []), dtype=torch.long)
                for g in gens]
        response_ids, response_mask = right_pad(resp, pad)  # response token t sits at column t
        prompt_ids, prompt_mask = left_pad([it["input_ids"] for it in items], pad)
        return Rollout(prompt_ids.to(dev), prompt_mask.to(dev), response_ids.to(dev), response_mask.to(dev),
                       feats, layers, [s.prompt for s in batch], [s.harmful is not False for s in batch],
                       [g.text for g in gens],
                       torch.tensor([g.finish_reason == "stop" for g in gens], device=dev),
                       [(s.meta.get("answers") or None) if s.harmful is False else None for s in batch])

    def _gather_rows(self, x):
        """This process's shard rows (a list, or a tensor with rows on dim 0) -> all global rows, in
        global order (a list, or a tensor on this process's device)."""
        rank, world = self.rank_world
        if world == 1:
            return x
        n = len(x) * world
        # shard r holds rows r, r + world, ...: global row j is item j // world of shard j % world
        order = [(j % world) * len(x) + j // world for j in range(n)]
        if torch.is_tensor(x):
            flat = self.acc.gather(x.contiguous())
            return flat[torch.tensor(order, device=flat.device)]
        from accelerate.utils import gather_object

        flat = gather_object(list(x))
        return [flat[i] for i in order]

    # ---- PPO-ptx -----------------------------------------------------------------------------
    def _ptx_setup(self):
        """The benign rows with reference answers and the layer PPO-ptx learns them on."""
        cfg = self.cfg
        if not cfg.ptx_coef:
            return [], None
        if self.rank_world[1] > 1:  # a second policy forward per minibatch would trip DDP's reducer
            raise UserError("--ptx-coef runs on one process for now; launch without torchrun/accelerate")
        pool = [s for s in (*self.samples, *self.benign) if s.harmful is False and s.meta.get("answers")]
        if not pool:
            raise UserError("--ptx-coef needs benign prompts with reference answers (answer/answers columns of --benign-data)")
        from ..layers import parse_layers

        layer = parse_layers(cfg.ptx_layer, self.adapter.num_layers, self.adapter.default_layer)
        if len(layer) != 1:
            raise UserError(f"--ptx-layer {cfg.ptx_layer!r}: give one layer")
        return pool, layer[0]

    def ptx_batch(self, step: int) -> Rollout | None:
        """``mini_batch_size`` benign (prompt, first reference answer) pairs at ``ptx_layer``, drawn
        with a seed of (seed, step), laid out as a Rollout whose responses are the answers + EOS."""
        if not self.ptx_pool:
            return None
        from ..models.base import left_pad, right_pad

        rng = random.Random(f"{self.cfg.seed}-ptx-{step}")
        batch = [rng.choice(self.ptx_pool) for _ in range(self.cfg.mini_batch_size)]
        items, feats = tokenize_and_project(self.adapter, batch, [self.ptx_layer] * len(batch))
        dev = self.raw.get_input_embeddings().weight.device
        pad = self.tok.pad_token_id
        response_ids, response_mask = right_pad([target_ids(self.tok, s.meta["answers"][0], self.eos_id)
                                                 for s in batch], pad)
        prompt_ids, prompt_mask = left_pad([it["input_ids"] for it in items], pad)
        n = len(batch)
        return Rollout(prompt_ids.to(dev), prompt_mask.to(dev), response_ids.to(dev), response_mask.to(dev), feats,
                       [self.ptx_layer] * n, [s.prompt for s in batch], [False] * n,
                       [s.meta["answers"][0] for s in batch], torch.ones(n, dtype=torch.bool, device=dev),
                       [s.meta["answers"] for s in batch])

    # ---- one PPO step ----------------------------------------------------------------------
    def train_step(self, step: int) -> dict:
        """One PPO iteration over the global batch. Every process holds the whole rollout; it
        scores its :func:`shard` rows (scores gathered), and in each global minibatch
        (``mini_batch_size × world`` rows of one seeded permutation) learns on its chunk with the
        loss weighted by its share of the minibatch's tokens, so DDP's gradient average equals the
        gradient of the token mean over the global minibatch: the same update as one process."""
        cfg = self.cfg
        t0 = time.time()
        ro = self.rollout(step)
        t_gen = self._clock()
        rank, world = self.rank_world
        B = len(ro.prompts)
        mine = shard(B, rank, world)
        mask = ro.response_mask.float()
        pol = self._unwrapped()
        with torch.no_grad():
            old_logp, logits, old_values = response_forward(pol, self.raw, self.image_token_id, ro, mine,
                                                            cfg.temperature)
            ent_rows = ppo.masked_sum(ppo.entropy_from_logits(logits), mask[mine], dim=1)
            del logits
            ref_logp = self.reference_logprobs(ro, mine)
            # Every column of the reward call is indexed by the same shard rows.
            total, per_term = self.reward_fn.score([ro.prompts[j] for j in mine], [ro.texts[j] for j in mine],
                                                   [ro.harmful[j] for j in mine], [ro.answers[j] for j in mine])
            raw_scores = torch.tensor(total, dtype=torch.float32, device=mask.device)
            # [rows, terms]: each term's unweighted reward, gathered and logged as score_LABEL
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
        t_score = self._clock()

        # --- PPO epochs over minibatches (features cached in `ro`) ---
        self.raw.train()
        keys = ("policy_loss", "value_loss", "clipfrac", "value_clipfrac", "approx_kl")
        stats = {k: [] for k in (*keys, "grad_norm", "ptx_loss")}
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
                logp, logits, values = response_forward(self.policy, self.raw, self.image_token_id, ro, idx,
                                                        cfg.temperature)
                pl = ppo.policy_loss(logp, old_logp[idx], advantages[idx], m, cfg.clip_range)
                vl, vcf = ppo.value_loss(values, old_values[idx], returns[idx], m, cfg.clip_range_value)
                loss = pl.loss + cfg.vf_coef * vl
                if cfg.ent_coef:
                    loss = loss - cfg.ent_coef * ppo.masked_mean(ppo.entropy_from_logits(logits), m)
                if ptx is not None:  # PPO-ptx: γ · NLL of the reference answers (temperature 1)
                    plogp, _, _ = response_forward(self.policy, self.raw, self.image_token_id, ptx,
                                                   list(range(len(ptx.layers))), 1.0, with_values=False)
                    ptx_loss = ppo.ptx_loss(plogp, ptx.response_mask.float())
                    loss = loss + cfg.ptx_coef * ptx_loss
                    stats["ptx_loss"].append(float(ptx_loss.detach()))
                if world > 1:
                    loss = loss * (share * world)  # DDP averages gradients over processes
                self.optimizer.zero_grad(set_to_none=True)
                if self.acc is not None:
                    self.acc.backward(loss)
                    gn = self.acc.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                else:
                    loss.backward()
                    gn = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                # Stats stay tensors (no host sync per minibatch); summed across processes below.
                for k, v in zip(keys, (pl.loss, vl, pl.clipfrac, vcf, pl.approx_kl)):
                    stats[k].append(v.detach().float() * (share if world > 1 else 1.0))
                stats["grad_norm"].append(float(gn))
                epoch_kl.append(stats["approx_kl"][-1])
            epochs_done += 1
            if cfg.target_approx_kl is not None:
                mean_kl = self._sum_across(torch.stack(epoch_kl)).mean().item()  # same decision on every process
                if mean_kl > cfg.target_approx_kl:
                    break
        for k in keys:
            stats[k] = self._sum_across(torch.stack(stats[k])).tolist()
        self.scheduler.step()
        self.raw.eval()
        t_learn = self._clock()
        # Phase wall times of this step (benchmarks/bench_lppo.py); kept out of the log rows,
        # which must be identical between resumed and uninterrupted runs.
        self.last_phase_seconds = {"generate": t_gen - t0, "score": t_score - t_gen, "learn": t_learn - t_score}

        # Everything below is computed from the global rollout: the same on every process.
        seq_kl = (kl * mask).sum(1)
        self.kl_ctl.update(seq_kl.mean().item(), B)
        row = {
            "step": step,
            "score": raw_scores.mean().item(),
            # each reward term's unweighted mean: score = Σ weight · score_TERM
            **{f"score_{lab}": term_scores[:, k].mean().item() for k, lab in enumerate(self.reward_fn.labels)},
            "score_with_eos_penalty": scores.mean().item(),
            "reward_total": (rewards * mask).sum(1).mean().item(),
            "kl": seq_kl.mean().item(),
            "kl_coef": self.kl_ctl.value,
            "entropy": entropy,
            "response_length": mask.sum(1).mean().item(),
            "stop_rate": ro.stopped.float().mean().item(),
            "explained_variance": ppo.explained_variance(old_values, returns, mask),
            "ppo_epochs_done": epochs_done,
            "lr": self.scheduler.get_last_lr()[0],
        }
        row.update({k: sum(v) / len(v) for k, v in stats.items() if v})
        row.update(self._rates(ro, raw_scores))
        row["seconds"] = round(time.time() - t0, 3)
        return row

    def _rates(self, ro: Rollout, scores) -> dict:
        """Refusal rate on harmful vs benign prompts, reward per layer and (when the data has
        reference answers) VQA accuracy of the benign rows that have them, over the global batch."""
        from ..judges.refusal import classify_refusal
        from .rewards import answer_accuracy

        refused = [classify_refusal(t, p)[0] for t, p in zip(ro.texts, ro.prompts)]
        sums: dict[str, list[float]] = {}
        for r, h in zip(refused, ro.harmful):
            key = "refusal_rate_harmful" if h else "refusal_rate_benign"
            sums.setdefault(key, [0.0, 0.0])
            sums[key][0] += r
            sums[key][1] += 1
        for l, s in zip(ro.layers, scores.tolist()):
            sums.setdefault(f"score_layer_{l}", [0.0, 0.0])
            sums[f"score_layer_{l}"][0] += s
            sums[f"score_layer_{l}"][1] += 1
        for t, a in zip(ro.texts, ro.answers):
            acc = answer_accuracy(t, a) if a else None
            if acc is not None:
                sums.setdefault("answer_accuracy", [0.0, 0.0])
                sums["answer_accuracy"][0] += acc
                sums["answer_accuracy"][1] += 1
        keys = sorted(set(sums) | {"refusal_rate_harmful", "refusal_rate_benign"}
                      | {f"score_layer_{l}" for l in self.layers}
                      | ({"answer_accuracy"} if self.has_answers else set()))
        return {k: (sums[k][0] / sums[k][1] if k in sums else None) for k in keys}

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
    def trainable_state(self) -> dict:
        pol = self._unwrapped()
        return {n: p.detach().cpu().clone() for n, p in pol.named_parameters() if p.requires_grad}

    def save_checkpoint(self, out: Path, step: int) -> Path:
        """OUT/checkpoints/step-N: trainable weights (LoRA + value head), optimizer, scheduler, KL
        controller, RNG of every process, data position (= step). Written to a temp folder and
        renamed, then OUT/checkpoints/latest is replaced atomically: a crash leaves the old one."""
        root = out / CKPT_DIR
        final = root / f"step-{step:07d}"
        tmp = root / f".step-{step:07d}.tmp"
        rank, world = self.rank_world
        if self.is_main:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        self._barrier()
        torch.save(_rng_state(), tmp / f"rng-{rank}.pt")
        self._barrier()
        if self.is_main:
            torch.save(self.trainable_state(), tmp / "trainable.pt")
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
            atomic_write_json(tmp / "trainer_state.json", {
                "step": step, "kl_ctl": self.kl_ctl.state_dict(), "world_size": world,
                "data_position": step * world * self.cfg.batch_size, "layers": self.layers,
                "layer_weights": self.layer_weights})
            if self.peft is not None:
                self.peft.save_pretrained(tmp / ADAPTER_DIR)  # loadable on its own, too
            _fsync_dir(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            atomic_write_text(root / LATEST, final.name + "\n")
            for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self._barrier()
        return final

    def load_checkpoint(self, path: Path) -> int:
        state = json.loads((path / "trainer_state.json").read_text())
        rank, world = self.rank_world
        if state["world_size"] != world:
            raise UserError(f"checkpoint {path} was written by {state['world_size']} processes; resume with the same number")
        pol = self._unwrapped()
        weights = torch.load(path / "trainable.pt", map_location="cpu", weights_only=True)
        missing = set(n for n, p in pol.named_parameters() if p.requires_grad) - set(weights)
        if missing:
            raise UserError(f"checkpoint {path} does not match this model/config (missing {sorted(missing)[:3]})")
        with torch.no_grad():
            params = dict(pol.named_parameters())
            for n, t in weights.items():
                params[n].copy_(t.to(params[n].device, params[n].dtype))
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
        self.scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        _set_rng_state(torch.load(path / f"rng-{rank}.pt", weights_only=False))
        self.step = int(state["step"])
        return self.step

    def _barrier(self):
        if self.acc is not None and self.acc.num_processes > 1:
            self.acc.wait_for_everyone()

    # ---- final outputs ---------------------------------------------------------------------
    def save_final(self, out: Path, merge: bool) -> None:
        if not self.is_main:
            return
        pol = self._unwrapped()
        torch.save(pol.value_head.state_dict(), out / "value_head.pt")
        if self.peft is not None:
            self.peft.save_pretrained(out / ADAPTER_DIR)  # PeftModel.from_pretrained(base, OUT/adapter)
            if merge:
                merged = self.peft.merge_and_unload()  # last thing we do: merging changes the module in place
                _save_model(merged, self.adapter.processor, out / MERGED_DIR)
        else:
            _save_model(self.raw, self.adapter.processor, out / MERGED_DIR)


def _save_model(model, processor, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())


def _rng_state() -> dict:
    import numpy as np

    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    import numpy as np

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _make_accelerator():
    """One process: no accelerate needed (None). Under ``accelerate launch``: an Accelerator."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import Accelerator

    # Without cpu=True accelerate ignores a multi-process launch on a CPU-only machine and every
    # process trains alone (same folder, no gradient all-reduce).
    return Accelerator(cpu=not torch.cuda.is_available())


def _build_reward(cfg: LPPOConfig):
    from .rewards import build_reward

    return build_reward(cfg.reward, device=cfg.device, batch_size=cfg.reward_batch_size, allow_pickle=cfg.allow_pickle)


# ============================================================================================
# Run: output folder, resume, logging, progress
# ============================================================================================

# Fields that must match to resume: anything that changes what a step computes.
_RESUME_KEYS = ("model", "data", "benign_data", "benign_fraction", "limit", "layers", "layer_weights",
                "layers_from_scan", "top_k", "reward", "batch_size", "mini_batch_size", "ppo_epochs",
                "max_new_tokens", "temperature", "seed", "full_finetune", "lora_r", "lora_target_modules",
                "ptx_coef", "ptx_layer")


def _prepare_out(cfg: LPPOConfig) -> tuple[Path, Path | None]:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    latest = resume_point(out, cfg, _RESUME_KEYS, run_json=RUN_JSON, ckpt_dir=CKPT_DIR, latest=LATEST)
    out.mkdir(parents=True, exist_ok=True)
    return out, latest


class _Logger:
    """log.jsonl (appended, fsynced per step) + log.csv (rewritten atomically) + optional TB/W&B."""

    def __init__(self, out: Path, cfg: LPPOConfig, resume_step: int | None):
        self.out = out
        path = out / LOG_JSONL
        self.rows = []
        if resume_step is not None and path.exists():
            # Rows written after the checkpoint (before a crash) are redone: drop them.
            self.rows = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= resume_step]
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in self.rows))
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


def train(cfg: LPPOConfig, *, adapter=None, progress: bool = True, log=print, _stop_after: int | None = None) -> dict:
    """Run L-PPO; returns the summary stored in OUT/run.json. ``adapter`` may be pre-loaded;
    ``_stop_after`` (tests) stops after that step as if interrupted (no final outputs).
    OUT is locked for the run: a second run writing there is refused, a dead run's lock taken over."""
    cfg.validate()
    with locked_out(cfg.out, log=log):
        return _train(cfg, adapter=adapter, progress=progress, log=log, _stop_after=_stop_after)


def _train(cfg: LPPOConfig, *, adapter, progress: bool, log, _stop_after: int | None) -> dict:
    from tqdm.auto import tqdm

    from ..models import model_identity
    from ..versions import package_versions as _versions

    cfg.validate()
    out, latest = _prepare_out(cfg)
    trainer = LPPOTrainer(cfg, adapter=adapter, log=log)
    start = trainer.load_checkpoint(latest) if latest is not None else 0
    if start and trainer.is_main:
        log(f"resumed from {latest} (step {start})")
    identity = model_identity(trainer.adapter, cfg.model)
    run = {"config": asdict(cfg), "versions": _versions(), "model": identity,
           "num_layers": trainer.adapter.num_layers, "default_layer": trainer.adapter.default_layer,
           "layers": trainer.layers, "layer_weights": trainer.layer_weights,
           "n_train_prompts": len(trainer.samples), "n_benign_prompts": len(trainer.benign),
           "world_size": trainer.rank_world[1], "status": "running", "started_step": start}
    if trainer.is_main:
        atomic_write_json(out / RUN_JSON, run)
    logger = _Logger(out, cfg, start if latest is not None else None) if trainer.is_main else None
    bar = tqdm(total=cfg.steps, initial=start, desc="align", unit="step", disable=not (progress and trainer.is_main),
               dynamic_ncols=True)
    last = {}
    try:
        for step in range(start + 1, cfg.steps + 1):
            last = trainer.train_step(step)
            trainer.step = step
            if logger:
                logger.write(last)
            bar.update(1)
            bar.set_postfix(score=f"{last['score']:.3f}", kl=f"{last['kl']:.3f}",
                            refuse_h=_fmt(last.get("refusal_rate_harmful")))
            if step % cfg.save_every == 0 or step == cfg.steps:
                trainer.save_checkpoint(out, step)
            if _stop_after is not None and step >= _stop_after:
                return {"stopped_at": step, "last": last}
    finally:
        bar.close()
        if logger:
            logger.close()
    trainer.save_final(out, cfg.merge)
    run.update(status="complete", final=last, steps=cfg.steps)
    if trainer.is_main:
        atomic_write_json(out / RUN_JSON, run)
    return run


def _fmt(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"
