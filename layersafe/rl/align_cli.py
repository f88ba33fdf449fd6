"""``layersafe align``: L-PPO from the command line or a YAML file with the same fields.

Every option is a field of :class:`layersafe.rl.lppo.LPPOConfig` (``--kl-coef`` = ``kl_coef``);
precedence: dataclass default < ``--config`` YAML < explicit command-line option.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from .lppo import LPPOConfig

EPILOG = ("Reward specs: refusal | answer | rm:PATH | llamaguard:ID | judge:NAME[:ARG] | weighted sums like "
          "'1*refusal+0.5*rm:runs/rm' or 'refusal+answer' (answer: VQA accuracy against the reference "
          "answers of --benign-data rows, 0 on rows without). Layers index the image encoder's hidden_states "
          "(0 = patch embeddings). Multi-GPU: `accelerate launch -m layersafe align ...` (data parallel).")


def _opt(cast):
    """Parse an optional number: 'none' / 'null' -> None."""
    def parse(s: str):
        if str(s).strip().lower() in ("none", "null", "off"):
            return None
        try:
            return cast(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {cast.__name__} or 'none', got {s!r}") from None
    parse.__name__ = cast.__name__
    return parse


_TYPES = {"str": str, "str | None": _opt(str), "int": int, "int | None": _opt(int),
          "float": float, "float | None": _opt(float)}


def add_parser(sub) -> None:
    from .lppo import LPPOConfig

    p = sub.add_parser(
        "align", help="L-PPO: RLHF the language model so it stays safe at chosen image-encoder layers",
        description="Layer-wise PPO (Bachu et al. 2025, eq. 10): the language model is the policy (LoRA by default), "
                    "fed the projected features of encoder layer l; rewards from a refusal rule, answer correctness, a "
                    "reward model or Llama Guard. Writes OUT/adapter (peft), OUT/log.jsonl, OUT/log.csv, OUT/run.json, "
                    "checkpoints.",
        epilog=EPILOG)
    p.add_argument("--config", default=None, help="YAML file with any of the fields below (underscored names)")
    defaults = LPPOConfig()
    for f in fields(LPPOConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = f"{f.metadata.get('help', '')} (default {getattr(defaults, f.name)!r})"
        if f.type == "bool":
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            p.add_argument(flag, dest=f.name, type=_TYPES[f.type], default=None, help=help_)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_align)


def config_from_args(a) -> "LPPOConfig":
    from .lppo import LPPOConfig

    names = {f.name: f for f in fields(LPPOConfig)}
    values: dict = {}
    if a.config:
        values.update(_read_yaml(a.config, names))
    values.update({k: getattr(a, k) for k in names if getattr(a, k, None) is not None})
    if "out" not in values:
        raise UserError("--out is required (on the command line or in the --config file)")
    return LPPOConfig(**values)


def _read_yaml(path: str, names: dict) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UserError(f"--config {path}: file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a mapping of field: value")
    out = {}
    for k, v in data.items():
        key = str(k).replace("-", "_")
        if key not in names:
            raise UserError(f"--config {path}: unknown field {k!r} (see `layersafe align --help`)")
        f = names[key]
        if v is not None and f.type == "bool" and not isinstance(v, bool):
            raise UserError(f"--config {path}: {k} must be true or false")
        if v is not None and f.type in ("int", "int | None", "float", "float | None") and (
                isinstance(v, bool) or not isinstance(v, (int, float))):
            raise UserError(f"--config {path}: {k} must be a number, got {v!r}")
        if v is not None and f.type.startswith("int") and isinstance(v, float):
            raise UserError(f"--config {path}: {k} must be an integer, got {v!r}")
        if v is not None and f.type.startswith("float"):
            v = float(v)
        if v is not None and f.type.startswith("str"):
            v = str(v)
        if v is None and "None" not in f.type:
            raise UserError(f"--config {path}: {k} cannot be empty")
        out[key] = v
    return out


def cmd_align(a) -> int:
    from .lppo import train

    cfg = config_from_args(a)
    run = train(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    if os.environ.get("RANK", "0") != "0":  # under accelerate/torchrun only rank 0 reports
        return 0
    fin = run.get("final") or {}
    out = Path(cfg.out).resolve()
    print(f"align complete: {cfg.steps} steps on layers {run['layers']}; last step: score {fin.get('score', float('nan')):.3f}, "
          f"KL {fin.get('kl', float('nan')):.3f}, refusal rate harmful {fin.get('refusal_rate_harmful')}, "
          f"benign {fin.get('refusal_rate_benign')}")
    print(f"results: {out}/ (adapter/, log.jsonl, log.csv, run.json, checkpoints/"
          + (", merged/)" if cfg.merge else ")"))
    print(f"scan the aligned model: layersafe scan --model {cfg.model} --adapter {out / 'adapter'} --out DIR")
    if run["model"].get("tiny_random"):
        print("note: the model is a tiny RANDOM LLaVA; its 'refusals' are empty/short random outputs.")
    return 0
