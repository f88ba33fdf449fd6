"""Judge a finished run folder and aggregate per layer: generations.jsonl -> scores.jsonl, metrics.csv."""

from __future__ import annotations

from pathlib import Path

from .io import read_jsonl, write_rows
from .judges.runner import judge_rows
from .metrics import per_layer_metrics, write_metrics_csv

SCORES = "scores.jsonl"
METRICS = "metrics.csv"


def judge_run(out: str | Path, judges: list[str], *, progress: bool = True) -> list[dict]:
    out = Path(out)
    rows = read_jsonl(out / "generations.jsonl")
    judge_rows(rows, judges, progress=progress)
    write_rows(out / SCORES, rows)
    table = per_layer_metrics(rows)
    write_metrics_csv(out / METRICS, table)
    return table
