"""``layersafe utility`` (registered through cli.EXTRA_COMMANDS)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cli_text import EPILOG
from ..config import add_options, config_from_args
from .run import UtilityConfig


def add_parser(sub) -> None:
    p = sub.add_parser(
        "utility", help="utility / over-refusal per image-encoder layer (VQA-v2 accuracy, XSTest, reward)",
        description="Generate at every requested layer (same run format as `scan`) and score utility: "
                    "xstest = over-refusal on safe prompts and refusal on unsafe ones (refusal judge); "
                    "vqav2 = official VQA-v2 accuracy; reward = mean reward of answers to benign questions. "
                    "Writes OUT/generations.jsonl, run.json, scores.jsonl, metrics.csv (and metrics_by_category.csv); `layersafe report OUT` plots it.",
        epilog=EPILOG)
    add_options(p, UtilityConfig, required=("suite", "out"))
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_utility)


def _f(x) -> str:
    """A rate for the console; n/a where nothing was measured (NaN: every row there failed)."""
    return "  n/a" if x is None or x != x else f"{x:.3f}"


def cmd_utility(a) -> int:
    from .run import TASKS, headline, run_utility

    cfg = config_from_args(UtilityConfig, a)
    res = run_utility(cfg, progress=not a.no_progress, log=lambda m: print(m, file=sys.stderr))
    rows = headline(res["table"], a.suite)
    if TASKS[a.suite].extra:  # xstest: over-refusal and the unsafe prompts' refusal rate
        print("layer    n   over-refusal  95% CI            unsafe refusal")
        for layer, n, v, lo, hi, u in rows:
            print(f"{layer:>5} {n:>4}   {_f(v)}       [{_f(lo)}, {_f(hi)}]    {_f(u)}")
    else:
        name = TASKS[a.suite].label
        print(f"layer    n   {name:<8} 95% CI")
        for layer, n, v, lo, hi in rows:
            print(f"{layer:>5} {n:>4}   {_f(v)}    [{_f(lo)}, {_f(hi)}]")
    failed = res["run"].get("stats", {}).get("failed", 0)
    if failed:
        rows_fail = "1 row failed and is" if failed == 1 else f"{failed} rows failed and are"
        print(f"warning: {rows_fail} not counted (their errors: the 'error' field in {a.out}/generations.jsonl)",
              file=sys.stderr)
    extra = ", metrics_by_category.csv" if (Path(a.out) / "metrics_by_category.csv").is_file() else ""
    print(f"results: {a.out}/ (generations.jsonl, run.json, scores.jsonl, metrics.csv{extra})")
    return 0
