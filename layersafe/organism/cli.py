"""``layersafe organism build|eval`` and ``layersafe demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("organism", help="build or measure the model organism (a small LLaVA trained to show ICET)",
                       description="The model organism (docs/organism.md): a genuine LlavaForConditionalGeneration "
                                   "trained here on synthetic data; `--model organism` loads the shipped copy.")
    osub = p.add_subparsers(dest="organism_command", metavar="ACTION")
    b = osub.add_parser("build", help="train the organism from nothing (base -> multimodal -> safety at the default layer)")
    b.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (a GPU builds it in minutes)")
    b.add_argument("--steps-scale", type=float, default=1.0, help="multiply every stage's steps (e.g. 0.01 for a smoke test)")
    b.add_argument("--pre-safety", default=None, metavar="DIR",
                   help="also save the model as it is before the safety stage into DIR")
    b.add_argument("--from-pre-safety", default=None, metavar="DIR",
                   help="start from a model saved with --pre-safety and run the safety stage alone "
                        "(compare safety settings with --set safety_...; minutes on a CPU)")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one BuildConfig field (repeatable), e.g. --set text_layers=4 --set novel=0.5")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=cmd_build)
    e = osub.add_parser("eval", help="measure ASR, over-refusal and VQA accuracy per layer with layersafe itself")
    e.add_argument("--model", default="organism", help="organism folder (default: the shipped one)")
    e.add_argument("--adapter", default=None, help="peft adapter (e.g. from `layersafe align`)")
    e.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    e.add_argument("--layers", default="all", help="layers to scan (default all)")
    e.add_argument("--vqa-layers", default="default", help="layers to measure VQA accuracy at (default: default)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_eval)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    d = sub.add_parser("demo", help="the whole story offline in minutes: scan the organism, repair it (distillation or L-PPO), rescan, report",
                       description="Scan the shipped model organism over every encoder layer (held-out AdvBench goals "
                                   "x scikit-image photos, plus benign requests), repair its vulnerable layers (layer-consistency "
                                   "distillation by default, --method lppo for the paper's L-PPO), rescan, and "
                                   "write a before/after report.")
    d.add_argument("--out", default="runs/demo", help="output folder (default runs/demo; must not exist or be empty)")
    d.add_argument("--fast", action="store_true", help="a small version (fewer prompts, layers and PPO steps) for tests")
    d.add_argument("--method", choices=("distill", "lppo"), default=None,
                   help="repair method (default distill: layer-consistency distillation; lppo: the paper's L-PPO)")
    d.add_argument("--seed", type=int, default=0, help="seed of the repair run (default 0)")
    d.add_argument("--model", default="organism", help=argparse.SUPPRESS)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_demo)


def _fresh(out: str) -> Path:
    p = Path(out)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise UserError(f"--out {out} exists and is not empty; choose a new folder")
    return p


def cmd_build(a) -> int:
    from .build import BuildConfig, build

    if a.steps_scale <= 0:
        raise UserError("--steps-scale must be > 0")
    cfg = BuildConfig(seed=a.seed, device=a.device)
    _apply_sets(cfg, a.set)
    if a.from_pre_safety:
        _check_model(a.from_pre_safety)
    out = _fresh(a.out)
    for k in ("vision_steps", "base_steps", "multimodal_steps", "safety_steps"):
        v = getattr(cfg, k)
        setattr(cfg, k, max(1, round(v * a.steps_scale)) if v else 0)
    build(out, cfg, log=lambda m: print(m, file=sys.stderr), progress=not a.no_progress,
          pre_safety=a.pre_safety, from_pre_safety=a.from_pre_safety)
    print(f"organism saved: {out.resolve()}  (scan it: layersafe scan --model {out} --data custom-prompts --out DIR)")
    return 0


def _apply_sets(cfg, pairs: list[str]) -> None:
    """``--set KEY=VALUE``: VALUE parsed as the field's type (``none`` = None where the default allows it)."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in fields or key in ("extra", "device", "seed"):
            raise UserError(f"--set {pair}: give KEY=VALUE with KEY one of "
                            f"{', '.join(k for k in fields if k not in ('extra', 'device', 'seed'))}")
        current = getattr(cfg, key)
        try:
            if value.lower() == "none":
                if "None" not in str(fields[key].type):  # only fields typed `X | None` (novel: v1 data)
                    raise UserError(f"--set {pair}: {key} cannot be none")
                parsed = None
            elif isinstance(current, bool):
                if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                    raise UserError(f"--set {pair}: give true or false")
                parsed = value.lower() in ("1", "true", "yes")
            elif isinstance(current, int):
                parsed = int(value)
            elif isinstance(current, float) or current is None:
                parsed = float(value)
            else:
                parsed = value
        except ValueError:
            raise UserError(f"--set {pair}: {value!r} is not a valid {type(current).__name__}") from None
        setattr(cfg, key, parsed)


def _check_model(model: str, adapter: str | None = None) -> None:
    """Fail on a missing model/adapter folder before any file is written."""
    from ..models import resolve_model_path
    from ..safeload import check_local_folder

    check_local_folder(resolve_model_path(model)[0], "model")
    if adapter and not (Path(adapter) / "adapter_config.json").is_file():
        raise UserError(f"--adapter {adapter}: no adapter_config.json there; give a peft adapter folder")


def cmd_eval(a) -> int:
    from .evaluate import evaluate, format_summary

    _check_model(a.model, a.adapter)
    out = _fresh(a.out)
    s = evaluate(a.model, out, layers=a.layers, vqa_layers=a.vqa_layers, adapter=a.adapter,
                 progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    print(format_summary(s))
    print(f"results: {out.resolve()}/ (summary.json, scan/, vqa/)")
    return 0


def cmd_demo(a) -> int:
    from .demo import run_demo

    _check_model(a.model)
    out = _fresh(a.out)
    from .demo import METHOD

    res = run_demo(out, model=a.model, fast=a.fast, progress=not a.no_progress, method=a.method or METHOD,
                   seed=a.seed, log=lambda m: print(m, file=sys.stderr))
    print(res["console"])
    return 0
