"""Wall time of repeated calls (generate batches, judge batches) split into a steady per-row rate
and one-time excess, so that a small run's figures extrapolate to a large one."""

from __future__ import annotations

import statistics


def call_timing(calls: list[tuple[int, float]], name: str = "generate") -> dict:
    """``calls``: (rows, seconds) of each call. ``median_row_seconds`` is the median over calls of
    seconds per row; ``warmup_seconds`` what calls took beyond rows x that median (a model's lazy
    load, a new decoder's graph capture and kernel compiles, a batch of another size). With them a
    small run extrapolates to a large one without scaling its warm-up (benchmarks/bench_paper_sweep.py).
    Also ``{name}_calls`` and ``{name}_seconds`` (their count and summed time)."""
    if not calls:
        return {f"{name}_calls": 0, f"{name}_seconds": 0.0, "median_row_seconds": None, "warmup_seconds": 0.0}
    med = statistics.median(t / n for n, t in calls)
    return {f"{name}_calls": len(calls), f"{name}_seconds": round(sum(t for _, t in calls), 3),
            "median_row_seconds": round(med, 6),
            "warmup_seconds": round(sum(max(0.0, t - n * med) for n, t in calls), 3)}
