"""`layersafe train-rm` and `layersafe eval-rm`: Bradley–Terry reward models (docs/reward_model.md)."""

from __future__ import annotations

import argparse
import sys

from ..config import add_options, config_from_args
from ..errors import UserError
from .configs import RMTrainConfig

DATA_HELP = ("preference data: a .jsonl/.jsonl.gz/.csv file with HH-RLHF columns chosen, rejected (full dialogues; "
             "the shared prefix becomes the prompt) or with prompt, chosen, rejected (optional margin, id); "
             "or a hub dataset OWNER/NAME[:DATA_DIR][@SPLIT], e.g. Anthropic/hh-rlhf:harmless-base@train "
             "(needs the `datasets` package and network)")

ALLOW_PICKLE = "also load pickle weights (pytorch_model.bin), which can run code when loaded; default: safetensors only"


def _positive(kind):
    def parse(v):
        x = kind(v)
        if x <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
        return x
    return parse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train-rm", help="train a Bradley–Terry reward model on preference pairs",
        description="Train r(x, y) = AutoModelForSequenceClassification(num_labels=1) with the pairwise loss "
                    "-log σ(r(x, y_w) - r(x, y_l) - m) + λ(r_w + r_l)² (Bachu et al. eq. 4). Texts are rendered "
                    "as HH-RLHF dialogues + EOS (layersafe.rm_score). OUT gets a plain transformers "
                    "checkpoint + tokenizer, rm_card.json, train_log.jsonl and checkpoints/.")
    add_options(p, RMTrainConfig, required=("data", "out"), help_overrides={"data": DATA_HELP})
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_train_rm)

    e = sub.add_parser("eval-rm", help="pairwise accuracy of a reward model, with a 95%% Wilson interval",
                       description="Score the chosen and rejected response of every pair with a reward model and "
                                   "print the share of pairs where the chosen one scores higher.")
    e.add_argument("--model", required=True, help="train-rm output folder or any sequence-classification checkpoint with one label")
    e.add_argument("--data", required=True, help=DATA_HELP)
    e.add_argument("--limit", type=_positive(int), default=None, help="evaluate only the first N pairs")
    e.add_argument("--max-length", type=_positive(int), default=None,
                   help="tokens per text including EOS (default: the length the model was trained with)")
    e.add_argument("--batch-size", type=_positive(int), default=32, help="texts per forward pass (default 32)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    e.add_argument("--out", default=None, help="also write per-pair rewards to this .jsonl file")
    e.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    e.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub (off by default)")
    e.add_argument("--allow-pickle", action="store_true", help=ALLOW_PICKLE)
    e.add_argument("--no-progress", action="store_true", help="hide progress bars")
    e.set_defaults(func=cmd_eval_rm)


def cmd_train_rm(a) -> int:
    from .reward_model import train_reward_model

    cfg = config_from_args(RMTrainConfig, a)
    card = train_reward_model(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    acc = card["eval_accuracy"]
    print(f"trained {card['steps']} steps on {card['train_pairs']} pairs"
          + (f"; eval accuracy {card['initial_eval_accuracy']:.3f} -> {acc:.3f} on {card['eval_pairs']} pairs"
             if acc is not None else ""))
    print(f"reward model: {a.out} (AutoModelForSequenceClassification.from_pretrained; rm_card.json)")
    return 0


def cmd_eval_rm(a) -> int:
    ev = evaluate_rm(a.model, a.data, limit=a.limit, max_length=a.max_length, batch_size=a.batch_size, device=a.device,
                     out=a.out, force=a.force, trust_remote_code=a.trust_remote_code, allow_pickle=a.allow_pickle,
                     progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    print(f"pairwise accuracy: {ev['accuracy']:.4f} ({ev['correct']}/{ev['n']}), 95% Wilson CI [{ev['ci_low']:.4f}, {ev['ci_high']:.4f}]")
    print(f"loss: {ev['loss']:.4f}  mean reward margin (chosen - rejected): {ev['reward_margin']:.4f}")
    if a.out:
        print(f"per-pair rewards -> {a.out}")
    return 0


def evaluate_rm(model: str, data: str, *, limit: int | None = None, max_length: int | None = None, batch_size: int = 32,
                device: str = "auto", out: str | None = None, force: bool = False, trust_remote_code: bool = False,
                allow_pickle: bool = False, progress: bool = True, log=lambda m: print(m, file=sys.stderr)) -> dict:
    """What ``layersafe eval-rm`` does (and ``layersafe.eval_rm()``): pairwise accuracy of a reward
    model on preference pairs, with its Wilson 95 % interval (``ci_low``/``ci_high``), the loss and
    the mean reward margin; per-pair rewards go to ``out`` (.jsonl) when given."""
    from pathlib import Path

    from ..data.preferences import load_preferences
    from ..io import write_rows
    from ..metrics import wilson_interval
    from .reward_model import encode_pairs, evaluate_pairs, load_reward_model

    for name, v in (("--limit", limit), ("--max-length", max_length), ("--batch-size", batch_size)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise UserError(f"{name} must be > 0, got {v}")  # the command line's check (_positive)
    if out and Path(out).suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        raise UserError(f"--out {out}: use a .jsonl file name")
    if out and Path(out).exists() and not force:  # the rule of every command: never overwrite silently
        raise UserError(f"--out {out} exists; pass --force to overwrite it or choose another name")
    model_, tokenizer = load_reward_model(model, device=device, trust_remote_code=trust_remote_code,
                                          allow_pickle=allow_pickle)
    pairs = load_preferences(data, limit)
    log(f"data: {pairs.summary()}")
    max_length = max_length or tokenizer.model_max_length
    if not max_length or max_length > 1_000_000:
        max_length = 1024
    max_length = min(max_length, tokenizer.model_max_length)  # load_reward_model capped it to the model's positions
    chosen, rejected = encode_pairs(tokenizer, pairs.pairs, max_length)
    ev = evaluate_pairs(model_, tokenizer, chosen, rejected, [p.margin for p in pairs.pairs],
                        batch_size=batch_size, progress=progress)
    lo, hi = wilson_interval(ev["correct"], ev["n"])
    if out:
        write_rows(out, [{"id": p.id, "r_chosen": c, "r_rejected": r, "correct": c > r}
                         for p, c, r in zip(pairs.pairs, ev["r_chosen"], ev["r_rejected"])])
    return {**ev, "ci_low": lo, "ci_high": hi}
