"""Statistics over prompts: cluster-bootstrap intervals and paired before/after tests (docs/paper.md).

The same prompts are asked at every layer, so the rows of a layer group are not independent: a
prompt that breaks a model at layer 9 tends to break it at layer 10 too. Group intervals therefore
resample *prompts* (each draw keeps all of a prompt's layers together), and before/after
comparisons pair each prompt with itself:

* :func:`mcnemar_exact`: exact two-sided McNemar test on the discordant pairs of one layer;
* :func:`bootstrap_ci`: percentile interval of a statistic of per-prompt x per-layer matrices,
  resampling prompts (rows) with replacement, the same draw for every matrix (so differences
  are paired).

A statistic is :func:`grand_mean`: the mean over layers of each layer's mean over prompts (the
paper's average of per-layer values); cells that are missing (a failed row, an unparseable
verdict) are NaN and left out of their layer's mean.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

N_BOOT = 2000


def verdict_matrix(rows: list[dict], key: str, binary: bool, *, harmful_only: bool = True
                   ) -> tuple[list[str], list[int], np.ndarray]:
    """(sample ids, layers, matrix[sample, layer]) of one score, NaN where a row has none.

    Binary verdicts (``binary=True``; Llama Guard's ``llamaguard``): 1 or 0; an empty response is 0
    (an attack that produced nothing did not succeed) and an unparseable verdict is missing, as in
    ``per_layer_metrics``. Only harmful rows count towards an ASR (``harmful_only``)."""
    from .aggregate import is_harmful

    sids = list(dict.fromkeys(str(r.get("sample_id", r.get("id"))) for r in rows))
    layers = sorted({int(r["layer"]) for r in rows})
    si, li = {s: i for i, s in enumerate(sids)}, {l: j for j, l in enumerate(layers)}
    m = np.full((len(sids), len(layers)), np.nan)
    for r in rows:
        scores = r.get("scores")
        if r.get("error") or not isinstance(scores, dict) or key not in scores:
            continue
        if binary and harmful_only and not is_harmful(r):
            continue
        v = scores.get(key)
        if binary and v is None and scores.get("empty"):
            v = 0
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)):
            continue
        m[si[str(r.get("sample_id", r.get("id")))], li[int(r["layer"])]] = float(v)
    return sids, layers, m


def grand_mean(m: np.ndarray) -> float:
    """Mean over layers (columns) of each layer's mean over prompts (rows), ignoring NaN cells;
    layers with no value are left out; NaN when nothing is left. ``m`` may carry leading batch
    axes (``[..., prompts, layers]``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cnt = np.sum(~np.isnan(m), axis=-2)
        per_layer = np.where(cnt > 0, np.nansum(m, axis=-2) / np.maximum(cnt, 1), np.nan)
        lcnt = np.sum(~np.isnan(per_layer), axis=-1)
        return np.where(lcnt > 0, np.nansum(per_layer, axis=-1) / np.maximum(lcnt, 1), np.nan)


def bootstrap_ci(mats: Sequence[np.ndarray], stat: Callable[..., np.ndarray], *, n_boot: int = N_BOOT,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``stat(*mats)`` under resampling of prompts (rows) with replacement.
    Every matrix has the same rows (prompts, in the same order) and is resampled with the same
    draw, so ``stat = lambda a, b: grand_mean(b) - grand_mean(a)`` is a paired difference.
    ``stat`` must accept batched matrices ``[draws, prompts, layers]``. NaN bounds when there are
    no prompts or no draw gives a finite value."""
    n = mats[0].shape[0]
    if n == 0 or any(m.shape[0] != n for m in mats):
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 4_000_000 // max(1, n * max(m.shape[1] for m in mats))))  # bound the memory
    draws = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        draws.append(np.asarray(stat(*(m[idx] for m in mats)), dtype=float).reshape(-1))
    vals = np.concatenate(draws)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return (math.nan, math.nan)
    a = (1 - level) / 2
    return (float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a)))


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for ``b`` pairs that went 1 -> 0 and ``c`` that went 0 -> 1:
    ``min(1, 2·P(X <= min(b, c)))`` with X ~ Binomial(b + c, 1/2). 1.0 when there are no
    discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # log-space binomial terms: exact for any n a dataset can have
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    cdf = math.exp(top) * math.fsum(math.exp(x - top) for x in logs)
    return min(1.0, 2 * cdf)


def paired_layer_test(before: np.ndarray, after: np.ndarray) -> dict:
    """One layer's before/after comparison on the prompts both runs judged (two 1-D arrays of 0/1
    or NaN, aligned by prompt): ``n`` pairs, ``b`` (1 -> 0: fixed), ``c`` (0 -> 1: broken),
    ``mcnemar_p``."""
    ok = ~np.isnan(before) & ~np.isnan(after)
    x, y = before[ok], after[ok]
    b, c = int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1)))
    return {"n": int(ok.sum()), "b": b, "c": c, "mcnemar_p": mcnemar_exact(b, c)}


def align_rows(a_ids: list[str], a_layers: list[int], a: np.ndarray, b_ids: list[str], b_layers: list[int],
               b: np.ndarray, layers: Sequence[int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The prompts both matrices have (in ``a``'s order) and both matrices cut to those prompts
    and to ``layers`` (columns a run lacks are NaN)."""
    common = [s for s in a_ids if s in set(b_ids)]
    ai, bi = {s: i for i, s in enumerate(a_ids)}, {s: i for i, s in enumerate(b_ids)}

    def cut(m, ids, own_layers):
        lj = {l: j for j, l in enumerate(own_layers)}
        out = np.full((len(common), len(layers)), np.nan)
        for k, l in enumerate(layers):
            if l in lj:
                out[:, k] = m[[ids[s] for s in common], lj[l]] if common else []
        return out

    return common, cut(a, ai, a_layers), cut(b, bi, b_layers)
