"""Bradley–Terry reward models (docs/design.md §1 eq. 4): loss, text encoding, scoring, training.

A reward model is any transformers backbone loaded as ``AutoModelForSequenceClassification`` with
``num_labels=1``; its single logit is the reward r(x, y). Texts are always rendered with
:func:`layersafe.rm_score.format_dialogue`, tokenised with the RM's tokenizer, truncated from the
left (the response is at the end and must survive), given an EOS, and right-padded
(:func:`encode_texts`). Training and the reward judge share that path (``layersafe.rm_score``), so scores match.

Why EOS and a separate pad token: causal backbones (GPT-2) pool the logit at the rightmost token that
is not the pad token. If pad == EOS (the usual GPT-2 workaround), the appended EOS would be skipped
and the score read one token early; we add a distinct pad token instead, so the score sits on EOS
(docs/design.md §7) and plain ``from_pretrained`` pools at the same place.

Training is a plain PyTorch loop (clearer than Trainer for a pairwise loss) on accelerate, which
provides device placement, bf16 autocast and checkpoints of model/optimizer/scheduler/RNG state.
The batch order is a pure function of (seed, step), so a resumed run continues with the same data.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..io import JsonlAppender, atomic_write_json, read_jsonl, truncate_torn_tail
from ..lock import LOCK_NAME, is_empty, locked_out
from ..safeload import check_local_folder, check_weights, first_line, load_errors, load_hint, require_classifier, weights_kwargs
from ..rm_score import PAD_TOKEN, collate, encode_texts, format_dialogue, prepare_tokenizer, score_ids, score_texts  # noqa: F401
from ..rm_score import appends_eos as _appends_eos, head_rewards as _rewards
CARD = "rm_card.json"
LOG = "train_log.jsonl"
CKPT_DIR = "checkpoints"
STATE = "trainer_state.json"


# --------------------------------------------------------------------------------------------
# Loss (pure)
# --------------------------------------------------------------------------------------------

def pairwise_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | float | None = None,
                  center_coef: float = 0.0) -> torch.Tensor:
    """Bradley–Terry pairwise loss, averaged over the batch (Bachu et al. eq. 4):

        L = −log σ(r(x, y_w) − r(x, y_l) − m) + λ · (r(x, y_w) + r(x, y_l))²

    ``r_chosen`` = r(x, y_w), ``r_rejected`` = r(x, y_l), shape (B,). ``margin`` m (scalar or (B,),
    default 0) asks the chosen reward to win by at least m (Llama 2's margin loss); ``center_coef``
    λ ≥ 0 pulls rewards towards zero mean (Eisenstein et al. 2023), since BT only fixes differences.
    ``logsigmoid`` keeps the first term finite for large negative differences.
    """
    diff = r_chosen.float() - r_rejected.float()
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coef:
        loss = loss + center_coef * ((r_chosen.float() + r_rejected.float()) ** 2).mean()
    return loss


def pairwise_accuracy(r_chosen: Sequence[float], r_rejected: Sequence[float]) -> tuple[int, int]:
    """(correct, n): a pair is correct when the chosen reward is strictly higher (ties are wrong)."""
    return sum(float(c) > float(r) for c, r in zip(r_chosen, r_rejected)), len(r_chosen)


# --------------------------------------------------------------------------------------------
# Model setup (text encoding and scoring, shared with the reward judge, live in layersafe.rm_score)
# --------------------------------------------------------------------------------------------

def load_base(base: str, *, trust_remote_code: bool = False, keep_dropout: bool = False, max_length: int | None = None,
              allow_pickle: bool = False):
    """Tokenizer + ``AutoModelForSequenceClassification(num_labels=1)`` from an HF id or folder
    (safetensors weights only unless ``allow_pickle``)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    check_local_folder(base, "--base")
    check_weights(base, allow_pickle, "--base")
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=1, trust_remote_code=trust_remote_code, dtype=torch.float32, **weights_kwargs(allow_pickle))
    except load_errors() as e:  # corrupt pickles/safetensors too
        first = first_line(e)
        raise UserError(f"cannot load --base {base!r}: {first}{load_hint(first, allow_pickle, path=base)}") from None
    if prepare_tokenizer(tokenizer, max_length):
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if not keep_dropout:
        # Dropout makes r(x, y_w) and r(x, y_l) noisy in different ways within one pair; RM recipes
        # (TRL's disable_dropout) train without it.
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    return tokenizer, model


def encode_pairs(tokenizer, pairs, max_length: int) -> tuple[list[list[int]], list[list[int]]]:
    """(chosen ids, rejected ids) for preference pairs, rendered with the HH format."""
    chosen = encode_texts(tokenizer, [format_dialogue(p.prompt, p.chosen) for p in pairs], max_length)
    rejected = encode_texts(tokenizer, [format_dialogue(p.prompt, p.rejected) for p in pairs], max_length)
    return chosen, rejected


def evaluate_pairs(model, tokenizer, chosen_ids, rejected_ids, margins=None, batch_size: int = 16,
                   center_coef: float = 0.0, progress: bool = False) -> dict:
    """Pairwise accuracy and mean loss on pre-encoded pairs, plus the raw rewards."""
    rc = score_ids(model, tokenizer, chosen_ids, batch_size, progress)
    rr = score_ids(model, tokenizer, rejected_ids, batch_size, progress)
    correct, n = pairwise_accuracy(rc, rr)
    m = torch.tensor(margins, dtype=torch.float32) if margins is not None else None
    loss = pairwise_loss(torch.tensor(rc), torch.tensor(rr), m, center_coef).item() if n else math.nan
    return {"n": n, "correct": correct, "accuracy": correct / n if n else math.nan, "loss": loss,
            "reward_margin": (sum(rc) - sum(rr)) / n if n else math.nan,
            "r_chosen": rc, "r_rejected": rr}


def pair_step(model, tokenizer, chosen: list[list[int]], rejected: list[list[int]], margins: list[float],
              center_coef: float, device, autocast=contextlib.nullcontext, backward=torch.Tensor.backward,
              scale: float = 1.0) -> dict:
    """Forward chosen and rejected texts as one right-padded batch, backpropagate ``scale`` × the
    pairwise loss, return sums for logging. The unit of work of training (and of bench_rm.py)."""
    batch = collate(tokenizer, list(chosen) + list(rejected), device)
    with autocast():
        r = _rewards(model, batch)
    n = len(chosen)
    rc, rr = r[:n], r[n:]
    loss = pairwise_loss(rc, rr, torch.tensor(margins, device=device), center_coef)
    backward(loss * scale)
    rc, rr = rc.detach().float(), rr.detach().float()
    return {"loss": loss.item() * n, "correct": int((rc > rr).sum()), "margin": float((rc - rr).sum()), "n": n,
            "tokens": int(batch["attention_mask"].sum())}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

# The config (torch-free: it builds `layersafe train-rm`'s options; fields marked resume=True are
# RMTrainConfig.RESUME_KEYS) lives in layersafe/rl/configs.py.
from .configs import RMTrainConfig  # noqa: E402


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> list[int]:
    """Pair indices of optimizer step ``step`` (0-based): epoch e uses a seeded permutation of
    range(n), drop-last. A pure function, so --resume needs only the step to find its place."""
    per_epoch = n // batch_size
    epoch, j = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    return perm[j * batch_size:(j + 1) * batch_size].tolist()


def _device(spec: str) -> str:
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {spec}: CUDA is not available on this machine; use --device cpu")
    return spec


def _checkpoints(out: Path) -> list[Path]:
    root = out / CKPT_DIR
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.name.startswith("step-") and (p / STATE).is_file()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def _check_out(cfg: RMTrainConfig, out: Path) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run; refuses to clobber a finished run."""
    ckpts = _checkpoints(out)
    if cfg.resume:
        if (out / CARD).is_file():
            raise UserError(f"{out} holds a finished reward model ({CARD}); nothing to resume")
        if not ckpts:
            # A run that died before its first checkpoint starts over there (its log is rewound);
            # a folder holding anything else (a model, other files) is never trained over.
            own = {LOG, CKPT_DIR, LOCK_NAME}
            if out.is_dir() and any(p.name not in own for p in out.iterdir()):
                raise UserError(f"--resume: no checkpoint in {out / CKPT_DIR} and {out} holds other files; "
                                "start without --resume in an empty or new --out")
            return None
        try:
            saved = json.loads((ckpts[-1] / STATE).read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"checkpoint {ckpts[-1]}: {STATE} is unreadable ({type(e).__name__}); remove that "
                            "checkpoint to resume from the one before, or start a new --out") from None
        saved.setdefault("learning_rate", saved.get("lr"))  # checkpoints written before the rename
        diff = [k for k in RMTrainConfig.RESUME_KEYS if saved.get(k) != getattr(cfg, k)]
        if diff:
            raise UserError("--resume with different settings than the checkpoint: "
                            + ", ".join(f"{k} {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in diff))
        return ckpts[-1]
    if not is_empty(out):
        raise UserError(f"--out {out} is not empty; pass --resume to continue the run there, or choose a new folder")
    return None


def _save_checkpoint(accelerator, out: Path, step: int, state: dict, keep: int) -> Path:
    """accelerate state (model, optimizer, scheduler, RNG) + our step, published with the protocol of
    :mod:`layersafe.rl.checkpoint` (temp folder, fsync, rename, ``latest``, keep-N) that align and
    sft use: a crash mid-save leaves the previous checkpoint as the latest. Every process saves its
    part of the accelerate state; the main process publishes."""
    from . import checkpoint as ckpt

    main = accelerator.is_main_process
    if main:
        ckpt.begin(out, step)
    accelerator.wait_for_everyone()
    tmp = ckpt.temp_dir(out, step)
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if main:
        atomic_write_json(tmp / STATE, state)
        ckpt.commit(out, step, keep if keep > 0 else 10**9)  # keep_checkpoints 0 = keep every one
    accelerator.wait_for_everyone()
    return out / CKPT_DIR / f"step-{step:07d}"


def _new_window() -> dict:
    return {"loss": 0.0, "correct": 0, "n": 0, "margin": 0.0, "tokens": 0}


def _rewind_log(path: Path, step: int | None) -> None:
    """Drop log lines past the checkpoint (those steps are about to be redone); all of them for a
    fresh start (``step`` None)."""
    if not path.exists():
        return
    if step is None:
        path.unlink()
        return
    truncate_torn_tail(path)
    rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
    from ..io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _finalize(model, tokenizer, out: Path, card: dict) -> None:
    """Write the plain transformers checkpoint + tokenizer into OUT (each file renamed into place),
    then rm_card.json last: its presence means the model files are complete."""
    tmp = out / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    for f in tmp.iterdir():
        os.replace(f, out / f.name)
    tmp.rmdir()
    atomic_write_json(out / CARD, card)


def train_reward_model(cfg: RMTrainConfig, progress: bool = True,
                       log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict:
    """Train a reward model as configured; returns the rm_card dict (also written to OUT).
    OUT is locked for the run: a second run writing there is refused, a dead run's lock taken over."""
    cfg.validate()  # finite numbers and declared ranges, before OUT is touched
    with locked_out(cfg.out, log=log):
        return _train_reward_model(cfg, progress, log)


def _train_reward_model(cfg: RMTrainConfig, progress: bool, log: Callable[[str], None]) -> dict:
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    from .. import __version__
    from ..data.preferences import load_preferences, split_pairs

    t0 = time.time()
    out = Path(cfg.out)
    micro = cfg.micro_batch_size or cfg.batch_size
    if cfg.batch_size < 1 or micro < 1 or cfg.batch_size % micro:
        raise UserError(f"--batch-size {cfg.batch_size} must be a positive multiple of --micro-batch-size {micro}")
    if cfg.max_length < 8:
        raise UserError(f"--max-length {cfg.max_length} is too short for a dialogue")
    resume_from = _check_out(cfg, out)

    data = load_preferences(cfg.data, cfg.limit)
    log(f"data: {data.summary()}")
    if cfg.eval_data:
        edata = load_preferences(cfg.eval_data)
        log(f"eval data: {edata.summary()}")
        train_pairs, eval_pairs = data.pairs, edata.pairs
    else:
        train_pairs, eval_pairs = split_pairs(data.pairs, cfg.eval_size, cfg.seed)
    if len(train_pairs) < cfg.batch_size:
        raise UserError(f"{len(train_pairs)} training pairs is fewer than --batch-size {cfg.batch_size}")
    per_epoch = len(train_pairs) // cfg.batch_size
    total = cfg.steps if cfg.steps is not None else max(1, math.ceil(cfg.epochs * per_epoch))

    device = _device(cfg.device)
    bf16 = cfg.bf16 == "yes" or (cfg.bf16 == "auto" and device.startswith("cuda"))
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision="bf16" if bf16 else "no")
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)
    set_seed(cfg.seed)  # the new score head's init depends on it
    tokenizer, model = load_base(cfg.base, trust_remote_code=cfg.trust_remote_code,
                                 keep_dropout=cfg.keep_dropout, max_length=cfg.max_length, allow_pickle=cfg.allow_pickle)
    from ..models import context_length

    positions = context_length(model.config)
    if positions and cfg.max_length > positions:  # longer inputs would index past the position table
        raise UserError(f"--max-length {cfg.max_length} is more than the {positions} positions {cfg.base} has; "
                        f"give --max-length {positions} or less")
    log(f"model: {cfg.base} ({type(model).__name__}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
        f"params) on {accelerator.device}{' bf16 autocast' if bf16 else ''}; pad token {tokenizer.pad_token!r}")

    tc, tr = encode_pairs(tokenizer, train_pairs, cfg.max_length)
    ec, er = encode_pairs(tokenizer, eval_pairs, cfg.max_length)
    t_margin = [p.margin + cfg.margin for p in train_pairs]
    e_margin = [p.margin + cfg.margin for p in eval_pairs]

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]  # biases and norms: no decay
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learning_rate)
    try:
        sched = get_scheduler(cfg.scheduler, opt, num_warmup_steps=cfg.warmup_steps, num_training_steps=total)
    except ValueError:
        raise UserError(f"unknown --scheduler {cfg.scheduler!r}; use linear, cosine, constant, "
                        "constant_with_warmup, polynomial, ...") from None
    model, opt, sched = accelerator.prepare(model, opt, sched)

    step, history, initial = 0, [], None
    if resume_from is not None:
        try:  # accelerate loads with weights_only=True: a planted pickle fails here instead of running
            accelerator.load_state(str(resume_from))
        except load_errors() as e:
            raise UserError(f"--resume: checkpoint {resume_from} cannot be loaded ({type(e).__name__}: "
                            f"{first_line(e)[:150]}); it is corrupt or not written by train-rm -- remove it to "
                            "fall back to an earlier one, or start again") from None
        state = json.loads((resume_from / STATE).read_text())
        step, history, initial = state["step"], state["history"], state["initial_eval"]
        log(f"resumed from {resume_from} at step {step}/{total}")
    out.mkdir(parents=True, exist_ok=True)
    _rewind_log(out / LOG, step if resume_from is not None else None)
    logf = JsonlAppender(out / LOG)

    def run_eval(at: int) -> dict | None:
        if not eval_pairs:
            return None
        with accelerator.autocast():
            ev = evaluate_pairs(accelerator.unwrap_model(model), tokenizer, ec, er, e_margin, cfg.eval_batch_size,
                                cfg.center_coef, progress=progress)
        row = {"step": at, "split": "eval", "loss": ev["loss"], "accuracy": ev["accuracy"], "n": ev["n"],
               "reward_margin": ev["reward_margin"]}
        logf.write(row)
        history.append(row)
        return row

    if initial is None:
        initial = run_eval(0)
        if initial:
            log(f"step 0: eval accuracy {initial['accuracy']:.3f} loss {initial['loss']:.4f} (n={initial['n']})")

    model.train()
    window = _new_window()
    t_window = time.time()
    bar = tqdm(total=total, initial=step, desc="train-rm", disable=not progress, dynamic_ncols=True)
    last_eval = history[-1] if history else None
    try:
        while step < total:
            idx = batch_indices(step, len(train_pairs), cfg.batch_size, cfg.seed)
            step_loss = 0.0
            for k in range(0, len(idx), micro):
                mi = idx[k:k + micro]
                st = pair_step(model, tokenizer, [tc[i] for i in mi], [tr[i] for i in mi], [t_margin[i] for i in mi],
                               cfg.center_coef, accelerator.device, accelerator.autocast, accelerator.backward,
                               scale=len(mi) / len(idx))
                for key in window:
                    window[key] += st[key]
                step_loss += st["loss"]
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm) if cfg.max_grad_norm else 0.0
            if not (math.isfinite(step_loss) and math.isfinite(float(grad_norm))):
                # An update from a NaN/inf loss or gradient makes every weight NaN, and such a model
                # scores everything NaN: stop before it, keeping the last good checkpoint.
                raise UserError(f"train-rm: non-finite loss or gradient at step {step + 1} (loss {step_loss:g}, "
                                f"gradient norm {float(grad_norm):g}); stopped before updating the weights. Lower "
                                f"--lr or check the data, then continue from the last checkpoint in "
                                f"{out / 'checkpoints'} with --resume or start again")
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                dt = max(time.time() - t_window, 1e-9)
                row = {"step": step, "split": "train", "loss": window["loss"] / window["n"],
                       "accuracy": window["correct"] / window["n"], "reward_margin": window["margin"] / window["n"],
                       "lr": sched.get_last_lr()[0], "pairs_per_s": window["n"] / dt,
                       "tokens_per_s": window["tokens"] / dt}
                logf.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.2f}",
                                eval=f"{last_eval['accuracy']:.3f}" if last_eval else "-")
                window = _new_window()
                t_window = time.time()
            if cfg.eval_every and step % cfg.eval_every == 0 and step != total:
                last_eval = run_eval(step)
                model.train()
            if cfg.save_every and step % cfg.save_every == 0 and step != total:
                _save_checkpoint(accelerator, out, step, {"step": step, "history": history, "initial_eval": initial,
                                                          "config": cfg.to_dict()}, cfg.keep_checkpoints)
    finally:
        bar.close()
    final = run_eval(step)
    logf.close()

    card = {
        "kind": "reward-model", "base": cfg.base, "data": data.source, "data_format": data.format,
        "eval_data": cfg.eval_data or f"{len(eval_pairs)} pairs held out of data (seed {cfg.seed}, by prompt)",
        "train_pairs": len(train_pairs), "eval_pairs": len(eval_pairs),
        "skipped_rows": dict(data.skipped), "steps": step, "epochs": step * cfg.batch_size / len(train_pairs),
        "eval_accuracy": final["accuracy"] if final else None, "eval_loss": final["loss"] if final else None,
        "initial_eval_accuracy": initial["accuracy"] if initial else None,
        "text_format": "rm_format.format_dialogue(prompt, response) + EOS, right-padded, left-truncated",
        "max_length": cfg.max_length, "pad_token": tokenizer.pad_token, "appends_eos": _appends_eos(tokenizer),
        "config": cfg.to_dict(), "layersafe_version": __version__, "seconds": round(time.time() - t0, 1),
    }
    model_out = accelerator.unwrap_model(model)
    _finalize(model_out, tokenizer, out, card)
    if final:
        log(f"step {step}: eval accuracy {final['accuracy']:.3f} loss {final['loss']:.4f} (n={final['n']})")
    return card


def load_reward_model(path: str, device: str = "auto", trust_remote_code: bool = False, allow_pickle: bool = False):
    """(model, tokenizer) from a train-rm output folder or any sequence-classification checkpoint,
    in eval mode, with the tokenizer prepared like training (pad != EOS, right padding).
    Safetensors weights only unless ``allow_pickle``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    check_local_folder(path, "reward model")
    check_weights(path, allow_pickle, "reward model")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                                   **weights_kwargs(allow_pickle))
    except load_errors() as e:  # corrupt pickles/safetensors too
        first = first_line(e)
        raise UserError(f"cannot load reward model {path!r}: {first}{load_hint(first, allow_pickle, path=path)}") from None
    require_classifier(model.config, path, "reward model")
    if model.config.num_labels != 1:
        raise UserError(f"{path} has {model.config.num_labels} output labels; a reward model has 1")
    if prepare_tokenizer(tokenizer):
        # Not trained by train-rm: a new pad token needs an embedding row (never attended to).
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    from ..models import context_length

    positions = context_length(model.config)
    if positions and not 0 < tokenizer.model_max_length <= positions:
        # Texts are cut (from the left) to what the model has positions for; longer would crash.
        tokenizer.model_max_length = positions
    return model.to(_device(device)).eval(), tokenizer


def rm_card(path: str | Path) -> dict | None:
    p = Path(path) / CARD
    return json.loads(p.read_text()) if p.is_file() else None


__all__ = ["pairwise_loss", "pairwise_accuracy", "prepare_tokenizer", "load_base", "encode_texts", "collate",
           "score_texts", "score_ids", "encode_pairs", "evaluate_pairs", "pair_step", "RMTrainConfig", "train_reward_model",
           "batch_indices", "load_reward_model", "rm_card"]
