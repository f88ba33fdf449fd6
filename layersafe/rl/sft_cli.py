"""``layersafe sft`` (registered through cli.EXTRA_COMMANDS)."""

from __future__ import annotations

import sys

from ..cli_text import EPILOG
from ..config import add_options, config_from_args
from .configs import SFTConfig


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sft", help="supervised safety fine-tuning baseline (LoRA) at chosen image-encoder layers",
        description="LoRA-SFT of the language model with the projected features of the chosen encoder layers: "
                    "harmful prompts -> a refusal, benign prompts (harmful=false) -> their `response` column or a "
                    "helpful template. Writes OUT/adapter (peft; `scan --adapter` accepts it), OUT/log.jsonl, OUT/run.json "
                    "and OUT/checkpoints (for --resume).",
        epilog=EPILOG)
    add_options(p, SFTConfig, required=("out",))
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_sft)


def cmd_sft(a) -> int:
    from .sft import train_sft

    from ..distributed import rank_info

    cfg = config_from_args(SFTConfig, a)
    s = train_sft(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    if not rank_info().is_main:  # a multi-process launch: rank 0 reports
        return 0
    print(f"sft complete: {cfg.steps} steps on layers {s['layers']}, loss {s['first_loss']:.3f} -> {s['last_loss']:.3f}")
    print(f"adapter: {s['adapter']}  (layersafe scan --adapter {s['adapter']} ...)")
    return 0
