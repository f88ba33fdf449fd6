"""Run judges over rows from files (docs/design.md §3 ``layersafe judge``)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import IO, Callable

from ..errors import UserError
from ..io import iter_chunks
from ..timing import call_timing
from .base import get_judge, parse_spec, upgrade_scores


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


class ScoreJournal:
    """Scores appended to a side file as each batch is judged, so a run whose final write fails
    (disk full) or that is killed loses nothing: the next run over the same rows reuses them.

    A line is ``{"spec", "key", "scores"}``; ``key`` hashes the row's position, id, layer, prompt
    and response, so a changed input row is judged again rather than given stale scores.

    Under a multi-process launch (docs/scale.md) rank ``rank`` appends to its own part file
    (``layersafe.distributed.part_path``) and every rank reads them all."""

    def __init__(self, path: str | Path, rows: list[dict], rank: int | None = None):
        from ..distributed import part_files, part_path
        from ..io import read_jsonl, truncate_torn_tail

        self.path = Path(path) if rank is None else part_path(path, rank)
        self.keys = [_row_key(i, r) for i, r in enumerate(rows)]
        self.done: dict[str, dict[str, dict]] = {}
        if self.path.is_file():
            truncate_torn_tail(self.path)  # a kill mid-line: that batch is judged again
        for f in dict.fromkeys([Path(path), self.path, *part_files(path)]):
            for e in read_jsonl(f) if f.is_file() else []:
                if isinstance(e.get("scores"), dict):  # a journal of an earlier version: today's keys
                    spec = str(e.get("spec"))
                    scores = upgrade_scores(e["scores"], perspective=parse_spec(spec)[0] == "perspective")
                    self.done.setdefault(spec, {})[str(e.get("key"))] = scores
        self.f: IO[str] | None = None
        self._synced = time.monotonic()

    def known(self, spec: str, index: int) -> dict | None:
        return self.done.get(spec, {}).get(self.keys[index])

    def add(self, spec: str, indices: list[int], scores: list[dict]) -> None:
        if self.f is None:
            self.f = self.path.open("a", encoding="utf-8")
        self.f.write("".join(json.dumps({"spec": spec, "key": self.keys[i], "scores": s}, ensure_ascii=False) + "\n"
                             for i, s in zip(indices, scores)))
        self.f.flush()  # survives a killed process; fsync now and then for a crashed machine
        if time.monotonic() - self._synced > 5:
            os.fsync(self.f.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None

    def remove(self) -> None:
        """After the results are written: nothing left to resume."""
        self.close()
        self.path.unlink(missing_ok=True)


# 0/1 verdicts (metrics read them with int()); any other value there cannot be counted.
BINARY_SCORES = ("refusal", "llamaguard", "llamaguard_parse_error")


def clean_scores(scores: dict) -> list[str]:
    """Set score values no metric can use (NaN, ±inf; a non-0/1 verdict) to None, in place, so they
    count as failed scoring (``m_missing``) instead of poisoning means or crashing; returns their
    descriptions (``name=value``) for a warning."""
    bad = []
    for k, v in scores.items():
        if isinstance(v, float) and not math.isfinite(v):
            bad.append(f"{k}={v}")
        elif k in BINARY_SCORES and v is not None and not (isinstance(v, (int, float)) and v in (0, 1)):
            bad.append(f"{k}={v!r}")
        else:
            continue
        scores[k] = None
    return bad


def _row_key(i: int, r: dict) -> str:
    raw = json.dumps([i, r.get("sample_id", r.get("id")), r.get("layer"), r.get("prompt"), r.get("response")],
                     ensure_ascii=False, default=str)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:20]


def judge_rows(rows: list[dict], specs: list[str], *, batch_size: int = 64, progress: bool = True,
               log: Callable[[str], None] | None = _stderr, journal: str | Path | None = None) -> dict:
    """Add each judge's scores to ``row["scores"]`` in place. Rows that failed before judging
    (``error`` set or no response) are not scored; empty responses get ``Judge.score_empty`` and
    ``"empty": True``. Returns counts, with each judge's ``summary()`` (e.g. unparseable Llama
    Guard outputs) and ``empty`` (rows with an empty response) under ``counts["judges"][spec]``;
    non-zero summaries are also logged, so failures are never silent.

    Under ``torchrun`` / ``accelerate launch`` every process passes the same rows and ends with
    all of them scored, each having judged every N-th batch (docs/scale.md).

    With ``journal`` (a file path), scores are appended there batch by batch and rows already in
    it (same judge spec, same row) are not judged again (:class:`ScoreJournal`); the caller removes
    it once its results are written."""
    if not specs:
        raise UserError("no judge given; use --judge NAME[:ARG] (see `layersafe judges`)")
    missing = [c for c in ("prompt", "response") if rows and c not in rows[0]]
    if missing:
        raise UserError(f"input rows lack column(s) {', '.join(missing)}; judges need prompt and response")
    judges = [get_judge(s) for s in specs]  # all specs checked before any model loads
    bad = next((i for i, r in enumerate(rows, 1) for c in ("prompt", "response")
                if r.get(c) is not None and not isinstance(r[c], str)), None)
    if bad is not None:
        r = rows[bad - 1]
        c = "prompt" if r.get("prompt") is not None and not isinstance(r["prompt"], str) else "response"
        raise UserError(f"row {bad}: {c} is a {type(r[c]).__name__}, not text; judges score text "
                        "(fix the input file: quote the value as a JSON string)")
    todo = [i for i, r in enumerate(rows) if not r.get("error") and r.get("response") is not None]
    counts = {"rows": len(rows), "scored": len(todo), "skipped_failed_rows": len(rows) - len(todo), "judges": {}}
    from .. import distributed as dist

    info = dist.setup()  # torchrun / accelerate launch: each rank judges its share of the batches
    if info.distributed:  # shares are positions in ``rows``: every rank must hold the same rows
        digest = hashlib.sha1("".join(_row_key(i, r) for i, r in enumerate(rows)).encode()).hexdigest()
        if len(set(dist.gather(digest))) > 1:
            raise UserError("under torchrun / accelerate launch every process must judge the same rows "
                            "(they share the batches); give every process the same input")
    book = ScoreJournal(journal, rows, info.rank if info.distributed else None) if journal is not None else None
    dist.barrier()  # every rank has read the journals before any appends to its part
    try:
        for spec, judge in zip(specs, judges):
            _run_judge(spec, judge, rows, todo, book, batch_size, progress, counts, log if info.is_main else None, info)
    finally:
        if book is not None:
            book.close()
    if journal is not None:  # rank parts (also a killed launch's) fold into one journal, as one process leaves it
        main_journal = Path(journal)
        dist.barrier()
        dist.on_main(lambda: dist.merge_parts(main_journal, identity=lambda e: (e.get("spec"), e.get("key")),
                                              order=lambda e: 0))
    return counts


def _run_judge(spec, judge, rows, todo, book, batch_size, progress, counts, log, info) -> None:
    from tqdm.auto import tqdm

    bad = []

    def put(i, s):
        if not isinstance(rows[i].get("scores"), dict):
            rows[i]["scores"] = {}
        bad.extend(clean_scores(s))  # a NaN reward (e.g. a model trained to NaN) is a failure, not a score
        rows[i]["scores"].update(s)

    left = []
    for i in todo:
        s = book.known(spec, i) if book is not None else None
        if s is None:
            left.append(i)
        else:
            put(i, s)
    if book is not None and len(left) < len(todo) and log:
        log(f"judge {judge.name}: {len(todo) - len(left)} rows already scored in {book.path.name}, {len(left)} to go")
    # Batches as one process forms them, batch k to rank k % world: the same scores. A judge that
    # pays per row (an API) takes smaller batches, so a kill re-asks few rows.
    step = min(batch_size, judge.journal_rows() or batch_size)
    mine = list(iter_chunks(left, step))[info.rank::info.world]
    desc = f"judge {judge.name}" + (f" rank {info.rank}/{info.world}" if info.distributed else "")
    bar = tqdm(total=sum(map(len, mine)), desc=desc, unit="row", disable=not progress, position=info.rank)
    done = []
    calls: list[tuple[int, float]] = []  # (rows, seconds) per call: the first one loads the model
    try:
        for chunk in mine:
            t = time.perf_counter()
            scores = judge.score_rows([rows[i] for i in chunk])  # empty responses: Judge.score_empty
            calls.append((len(chunk), time.perf_counter() - t))
            for i, s in zip(chunk, scores, strict=True):
                put(i, s)
            if book is not None:
                book.add(spec, chunk, scores)
            done.append((chunk, scores))
            bar.update(len(chunk))
    finally:
        bar.close()
        judge.close()  # free this judge's model before the next one loads
    summary = {**judge.summary(), "empty": judge.n_empty}  # empty responses, never silent
    if info.distributed:  # every rank ends with every row's scores, and the summed summary
        from ..distributed import gather

        shares = gather((done, bad, summary))
        bad = [b for _, b_r, _ in shares for b in b_r]
        summary = {k: sum(s.get(k, 0) for _, _, s in shares) for k in summary}
        for r, (theirs, _, _) in enumerate(shares):
            for chunk, scores in theirs if r != info.rank else []:
                for i, s in zip(chunk, scores, strict=True):
                    put(i, s)
    if bad:
        summary = {**summary, "unusable": len(bad)}
        if log:
            log(f"warning: judge {judge.name} gave {len(bad)} unusable scores (first: {bad[0]}), recorded as None")
    counts["judges"][spec] = summary
    counts.setdefault("timing", {})[spec] = call_timing(calls, "judge")  # this process's calls
    if log and any(summary.values()):
        log(f"judge {judge.name}: " + ", ".join(f"{k}={v}" for k, v in summary.items()) + f" (of {len(left)} rows)")
