"""Run judges over rows from files (docs/design.md §3 ``layersafe judge``)."""

from __future__ import annotations

import sys
from typing import Callable

from ..errors import UserError
from ..io import iter_chunks
from .base import get_judge


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def judge_rows(rows: list[dict], specs: list[str], *, batch_size: int = 64, progress: bool = True,
               log: Callable[[str], None] | None = _stderr) -> dict:
    """Add each judge's scores to ``row["scores"]`` in place. Rows that failed before judging
    (``error`` set or no response) are not scored. Returns counts, with each judge's
    ``summary()`` (e.g. unparseable Llama Guard outputs) under ``counts["judges"][spec]``;
    non-zero summaries are also logged, so failures are never silent."""
    from tqdm.auto import tqdm

    if not specs:
        raise UserError("no judge given; use --judge NAME[:ARG] (see `layersafe judges`)")
    missing = [c for c in ("prompt", "response") if rows and c not in rows[0]]
    if missing:
        raise UserError(f"input rows lack column(s) {', '.join(missing)}; judges need prompt and response")
    judges = [get_judge(s) for s in specs]  # all specs checked before any model loads
    todo = [r for r in rows if not r.get("error") and r.get("response") is not None]
    counts = {"rows": len(rows), "scored": len(todo), "skipped_failed_rows": len(rows) - len(todo), "judges": {}}
    for spec, judge in zip(specs, judges):
        bar = tqdm(total=len(todo), desc=f"judge {judge.name}", unit="row", disable=not progress)
        try:
            for chunk in iter_chunks(todo, batch_size):
                for r, s in zip(chunk, judge.score(chunk), strict=True):
                    if not isinstance(r.get("scores"), dict):
                        r["scores"] = {}
                    r["scores"].update(s)
                bar.update(len(chunk))
        finally:
            bar.close()
            judge.close()  # free this judge's model before the next one loads
        summary = judge.summary()
        counts["judges"][spec] = summary
        if log and any(summary.values()):
            log(f"judge {judge.name}: " + ", ".join(f"{k}={v}" for k, v in summary.items()) + f" (of {len(todo)} rows)")
    return counts
