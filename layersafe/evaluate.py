"""Judge a finished run folder and aggregate per layer: generations.jsonl -> scores.jsonl,
metrics.csv (and metrics_by_category.csv when the samples carry categories)."""

from __future__ import annotations

from pathlib import Path

from .io import read_jsonl, write_rows
from .judges.runner import judge_rows
from .metrics import per_category_metrics, per_layer_metrics, write_metrics_csv

SCORES = "scores.jsonl"
METRICS = "metrics.csv"
METRICS_BY_CATEGORY = "metrics_by_category.csv"


def write_metrics(out: Path, rows: list[dict], table_fn=per_layer_metrics) -> list[dict]:
    """OUT/metrics.csv (one row per layer) and, when rows have categories, OUT/metrics_by_category.csv
    (one row per layer and category, same columns plus ``category``). Returns the per-layer table."""
    table = table_fn(rows)
    write_metrics_csv(out / METRICS, table)
    by_cat = per_category_metrics(rows, table_fn)
    if by_cat:
        write_metrics_csv(out / METRICS_BY_CATEGORY, by_cat)
    return table


def judge_run(out: str | Path, judges: list[str], *, progress: bool = True) -> list[dict]:
    out = Path(out)
    rows = read_jsonl(out / "generations.jsonl")
    judge_rows(rows, judges, progress=progress)
    write_rows(out / SCORES, rows)
    return write_metrics(out, rows)
