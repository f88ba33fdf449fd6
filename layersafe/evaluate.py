"""Judge a finished run folder and aggregate per layer: generations.jsonl -> scores.jsonl,
metrics.csv (and metrics_by_category.csv when the samples carry categories)."""

from __future__ import annotations

from pathlib import Path

from .errors import UserError
from .io import csv_cell, read_jsonl, write_rows
from .judges.base import folder_judges, upgrade_rows
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
        # categories come from the dataset file: text a spreadsheet must not run as a formula
        write_metrics_csv(out / METRICS_BY_CATEGORY, [{**r, "category": csv_cell(r["category"])} for r in by_cat])
    return table


JOURNAL = ".scores.journal.jsonl"


def judge_run(out: str | Path, judges: list[str], *, progress: bool = True, log=None, batch_size: int = 64,
              timing: dict | None = None) -> list[dict]:
    """Judge OUT/generations.jsonl into OUT/scores.jsonl and the metrics files.

    Scores already in scores.jsonl (of judges run since, e.g. a reward model) are kept for rows
    whose response is unchanged, so a resumed scan does not drop them. Scores are journalled as
    they are computed (OUT/.scores.journal.jsonl) and the journal is removed only once everything
    is written: a failed write (disk full) or a kill loses no judged row. ``timing`` (a dict) gets
    each judge's call timing (layersafe.timing.call_timing), keyed by spec."""
    import sys

    log = log or (lambda m: print(m, file=sys.stderr))
    out = Path(out)
    rows = read_jsonl(out / "generations.jsonl")
    from .distributed import rank_info

    if rank_info().is_main:  # the others may read run.json while rank 0 is finishing it
        _note_unfinished(out, len(rows), log)
    extra = _carry_scores(out / SCORES, rows, log, folder_judges(out))
    owned = owned_by(judges)
    extra = {k for k in extra if not owned(k)}
    for r in rows:  # a judge run again replaces its scores (stale details such as llamaguard_raw go too)
        if isinstance(r.get("scores"), dict):
            r["scores"] = {k: v for k, v in r["scores"].items() if not owned(k)}
    counts = judge_rows(rows, judges, batch_size=batch_size, progress=progress, log=log, journal=out / JOURNAL)
    if timing is not None:
        timing.update(counts.get("timing", {}))
    if not rank_info().is_main:  # a multi-process launch judged together; rank 0 writes (docs/scale.md)
        return per_layer_metrics(rows)
    lacking = [extra - set(r.get("scores") or {}) for r in rows if r.get("response") is not None and not r.get("error")]
    lacking = [m for m in lacking if m]
    if lacking:
        log(f"note: {len(lacking)} rows have no {', '.join(sorted(set().union(*lacking)))} score (added since those "
            f"judges ran); run those judges again over {out / SCORES} to score them")
    write_rows(out / SCORES, rows)
    table = write_metrics(out, rows)
    (out / JOURNAL).unlink(missing_ok=True)
    return table


def _note_unfinished(out: Path, n: int, log) -> None:
    """Say so when the rows judged are not the whole scan: a cut-off last line (not judged) or a
    scan that did not finish (its metrics will cover fewer rows per layer)."""
    import json

    from .io import torn_tail

    torn = torn_tail(out / "generations.jsonl") > 0  # read_jsonl dropped that line
    try:
        status = json.loads((out / "run.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    if torn or status not in (None, "complete"):
        why = "its last line is cut off and is not judged" if torn else f"run.json says {status!r}"
        log(f"note: the scan in {out} is unfinished ({why}); judging its {n} rows. Finish it with "
            "`layersafe scan ... --resume`, then judge again")


def owned_by(specs: list[str]):
    """A test of whether a score key belongs to one of the judges ``specs`` (docs/design.md §3.4):
    its name as a key or a detail under it (``llamaguard``, ``llamaguard_raw``, ``perspective_error``;
    ``llamaguard_vision_prob`` is llamaguard-vision's, not llamaguard's: :func:`key_owner`), or
    one of its declared metrics (a rubric's). The row marker ``empty`` is written afresh by every
    judge and needs no owner."""
    from .judges.base import available, key_owner, parse_spec

    judges = available()
    names = [n for n in (parse_spec(s)[0] for s in specs) if n in judges]
    exact = {k for n in names for k in judges[n].metrics}

    def owned(key: str) -> bool:
        return key in exact or key_owner(key, judges) in names

    return owned


def _carry_scores(path: Path, rows: list[dict], log, judged_by=()) -> set[str]:
    """Copy each old row's ``scores`` onto the same (sample, layer, response); returns the score
    names every old scored row has (the headline values of judges that earlier runs added)."""
    if not path.is_file():
        return set()
    try:
        old = read_jsonl(path)
    except UserError as e:
        log(f"warning: earlier scores not kept: {e}")
        return set()
    upgrade_rows(old, judged_by=judged_by)  # scores of an earlier version (``unsafe``, ...) under today's keys
    by_key = {(str(r.get("sample_id")), r.get("layer"), r.get("response")): r["scores"]
              for r in old if isinstance(r.get("scores"), dict)}
    for r in rows:
        s = by_key.get((str(r.get("sample_id")), r.get("layer"), r.get("response")))
        if s:
            r["scores"] = dict(s)
    return set.intersection(*map(set, by_key.values())) if by_key else set()
