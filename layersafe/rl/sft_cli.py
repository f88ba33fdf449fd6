"""``layersafe sft`` (registered through cli.EXTRA_COMMANDS)."""

from __future__ import annotations

import sys

from ..cli_text import ALLOW_PICKLE_HELP, EPILOG


def add_parser(sub) -> None:
    from .sft import SFTConfig

    d = SFTConfig()
    p = sub.add_parser(
        "sft", help="supervised safety fine-tuning baseline (LoRA) at chosen image-encoder layers",
        description="LoRA-SFT of the language model with the projected features of the chosen encoder layers: "
                    "harmful prompts -> a refusal, benign prompts (harmful=false) -> their `response` column or a "
                    "helpful template. Writes OUT/adapter (peft; `scan --adapter` accepts it), OUT/log.jsonl, OUT/run.json "
                    "and OUT/checkpoints (for --resume).",
        epilog=EPILOG)
    p.add_argument("--model", default=d.model, help="HF id / local folder of a LLaVA model (default: tiny random LLaVA)")
    p.add_argument("--data", default=d.data, help=f"dataset spec or .jsonl/.csv (default {d.data})")
    p.add_argument("--layers", default=d.layers, help="layers whose features training uses (sampled per example); default: default")
    p.add_argument("--out", required=True, help="output folder (new or empty unless --resume)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--lora-r", type=int, default=d.lora_r)
    p.add_argument("--lora-alpha", type=int, default=d.lora_alpha)
    p.add_argument("--lora-target-modules", default=d.lora_target_modules)
    p.add_argument("--refusal", default=d.refusal, help=f"refusal target for harmful prompts (default {d.refusal!r})")
    p.add_argument("--benign-template", default=d.benign_template, help="target for benign prompts without a response column")
    p.add_argument("--limit", type=int, default=None, help="use only the first N samples")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--dtype", default=d.dtype)
    p.add_argument("--device", default=d.device)
    p.add_argument("--save-every", type=int, default=d.save_every, help="checkpoint every N steps (and at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last checkpoint in OUT (settings that change a step must be the same)")
    p.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE_HELP)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_sft)


def cmd_sft(a) -> int:
    from .sft import SFTConfig, train_sft

    cfg = SFTConfig(model=a.model, data=a.data, layers=a.layers, out=a.out, steps=a.steps, batch_size=a.batch_size,
                    learning_rate=a.learning_rate, lora_r=a.lora_r, lora_alpha=a.lora_alpha,
                    lora_target_modules=a.lora_target_modules, refusal=a.refusal, benign_template=a.benign_template,
                    limit=a.limit, seed=a.seed, dtype=a.dtype, device=a.device, save_every=a.save_every,
                    resume=a.resume, allow_pickle=a.allow_pickle)
    s = train_sft(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    print(f"sft complete: {cfg.steps} steps on layers {s['layers']}, loss {s['first_loss']:.3f} -> {s['last_loss']:.3f}")
    print(f"adapter: {s['adapter']}  (layersafe scan --adapter {s['adapter']} ...)")
    return 0
