"""``layersafe align``: L-PPO from the command line or a YAML/JSON file with the same fields.

Every option is a field of :class:`layersafe.rl.configs.LPPOConfig` (``--kl-coef`` = ``kl_coef``),
built by :mod:`layersafe.config`; precedence: dataclass default < ``--config`` file < explicit option.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import add_config_file_option, add_options
from ..config import config_from_args as _from_args
from .configs import LPPOConfig

EPILOG = ("Reward specs: refusal | answer | rm:PATH | llamaguard:ID | judge:NAME[:ARG] | weighted sums like "
          "'1*refusal+0.5*rm:runs/rm' or 'refusal+answer' (answer: VQA accuracy against the reference "
          "answers of --benign-data rows, 0 on rows without). Layers index the image encoder's hidden_states "
          "(0 = patch embeddings). Multi-GPU: `accelerate launch -m layersafe align ...` (data parallel; add "
          "--shard-model to shard the language model over the GPUs, docs/scale.md).")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "align", help="L-PPO: RLHF the language model so it stays safe at chosen image-encoder layers",
        description="Layer-wise PPO (Bachu et al. 2025, eq. 10): the language model is the policy (LoRA by default), "
                    "fed the projected features of encoder layer l; rewards from a refusal rule, answer correctness, a "
                    "reward model or Llama Guard. Writes OUT/adapter (peft), OUT/log.jsonl, OUT/log.csv, OUT/run.json, "
                    "checkpoints.",
        epilog=EPILOG)
    add_config_file_option(p)
    add_options(p, LPPOConfig, negatable=True,  # --no-merge & co. override the --config file
                help_overrides={"out": "output folder (required: on the command line or in the --config file)"})
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_align)


def config_from_args(a: argparse.Namespace) -> LPPOConfig:
    cfg = _from_args(LPPOConfig, a, required=("out",))
    cfg.validate()  # reward spec, batch multiples: before any model loads
    cfg.check_launch()  # before OUT is created (the trainer checks again)
    return cfg


def cmd_align(a) -> int:
    from .lppo import train

    cfg = config_from_args(a)
    run = train(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    if os.environ.get("RANK", "0") != "0":  # under accelerate/torchrun only rank 0 reports
        return 0
    fin = run.get("final") or {}
    out = Path(cfg.out).resolve()
    if cfg.method == "distill":
        print(f"align (distill) complete: {cfg.steps} steps, student layers {run['repair_layers']} taught by layer "
              f"{run['teacher_layer']}; last step: KL to the teacher {fin.get('distill_kl', float('nan')):.3f}/token, "
              f"written refusals harmful {fin.get('refusal_rate_harmful')}, benign {fin.get('refusal_rate_benign')}")
    else:
        print(f"align complete: {cfg.steps} steps on layers {run['layers']}; last step: score {fin.get('score', float('nan')):.3f}, "
              f"KL {fin.get('kl', float('nan')):.3f}, refusal rate harmful {fin.get('refusal_rate_harmful')}, "
              f"benign {fin.get('refusal_rate_benign')}")
    print(f"results: {out}/ (adapter/, log.jsonl, log.csv, run.json, checkpoints/"
          + (", merged/)" if cfg.merge else ")"))
    print(f"scan the aligned model: layersafe scan --model {cfg.model} --adapter {out / 'adapter'} --out DIR")
    if run["model"].get("tiny_random"):
        print(f"note: the model is a tiny RANDOM {run['model'].get('family', 'VLM')} model; its 'refusals' are empty/short random outputs.")
    return 0
