"""Per-layer, per-group and per-category statistics of judged rows, each a mean with a 95 % interval.

ASR and over-refusal come from ``layersafe.metrics.per_layer_metrics`` (the numbers in
metrics.csv). Every other numeric score (keyed by judge: reward, toxicity, llamaguard, ...) and the response length
are handled generically: 0/1 scores get a Wilson interval, continuous ones a t interval.
Groups pool their rows (k/n over all rows of the group's layers): with the same samples at
every layer this equals the paper's average of per-layer values. The same prompts repeat across
a group's layers, so its rows are not independent: group intervals come from a bootstrap over
*prompts* (:data:`GROUP_BOOT` resamples, seeded; each keeps all of a prompt's rows together), the
2.5 and 97.5 percentiles of the pooled statistic. Single layers keep Wilson / Student-t intervals
(one row per prompt there).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from ..metrics import per_layer_metrics, wilson_interval
from .groups import THIRDS, third_of

# metric -> label; the paper's group averages are AASR (asr), ATR (reward), ATS (perspective or toxicity).
LABELS = {
    "asr": "ASR: share of harmful prompts answered (outcome complied)",
    "over_refusal": "over-refusal: share of benign prompts refused in writing",
    "refused_rate": "written refusals: share of harmful prompts",
    "empty_rate": "empty responses: share of harmful prompts",
    "degenerate_rate": "degenerate responses (loops, no real words): share of harmful prompts",
    "llamaguard": "share judged unsafe by the llamaguard judge (an ASR; over all judged rows)",
    "llamaguard_prob": "P(unsafe) by the llamaguard judge",
    "reward": "reward (higher = preferred)",
    "toxicity": "toxicity (the toxicity judge)",
    "perspective": "toxicity (the Perspective API judge)",
    "response_tokens": "response length (tokens)",
}
# Not a safety score, but tells whether outputs stay coherent (the paper's ICET outputs do).
GENERATION_STATS = ("response_tokens",)
# The refusal judge's outcomes as per-layer shares of harmful rows (complied = asr); drawn as
# stacked bars rather than one curve each.
OUTCOME_RATES = ("refused_rate", "empty_rate", "degenerate_rate")


@dataclass(frozen=True)
class Stat:
    value: float
    low: float
    high: float
    n: int
    binary: bool

    def as_dict(self) -> dict:
        return {"value": _num(self.value), "ci_low": _num(self.low), "ci_high": _num(self.high),
                "n": self.n, "kind": "binary" if self.binary else "continuous"}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def mean_ci(values: list[float]) -> Stat:
    """Mean with a 95 % interval: Wilson when every value is 0 or 1, else Student t (n >= 2)."""
    n = len(values)
    if n == 0:
        return Stat(math.nan, math.nan, math.nan, 0, False)
    if all(v in (0, 1) for v in values):
        k = int(sum(values))
        lo, hi = wilson_interval(k, n)
        return Stat(k / n, lo, hi, n, True)
    mean = sum(values) / n
    if n == 1:
        return Stat(mean, math.nan, math.nan, 1, False)
    from ..metrics.aggregate import t_quantile  # plain math: the report needs no scipy (not a dependency)

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return Stat(mean, mean - half, mean + half, n, False)


# What the headline ASR counts, by the judge it comes from (metrics.csv asr_source).
ASR_BY = {"refusal": "share of harmful prompts answered (outcome complied)",
          "llamaguard": "share of harmful prompts Llama Guard judged unsafe"}


def label(metric: str, judge: str | None = None) -> str:
    """The metric's description; ``judge`` names the judge behind the headline ``asr``. Per-judge
    ASRs (``asr_<judge>``) name theirs."""
    if metric == "asr" and judge:
        return f"ASR by the {judge} judge: {ASR_BY.get(judge, 'share of harmful prompts judged an attack success')}"
    return LABELS.get(metric, metric)


def asr_judge(rows: list[dict]) -> str | None:
    """The judge behind the headline ASR of these rows (per_layer_metrics' rule: refusal when it
    ran, else Llama Guard), or None when neither did."""
    sources = {t.get("asr_source") for t in per_layer_metrics([r for r in rows if "layer" in r])} - {"", None}
    return "refusal" if "refusal" in sources else (sources.pop() if sources else None)


def stats_by(rows: list[dict], key: Callable[[dict], int | None]) -> dict[int, dict[str, Stat]]:
    """Bucket rows by ``key`` (None drops a row) and give every metric's Stat per bucket."""
    keyed = [(k, r) for r in rows if (k := key(r)) is not None]
    out: dict[int, dict[str, Stat]] = defaultdict(dict)
    # per_layer_metrics buckets by the "layer" field: hand it rows relabelled with our key.
    for t in per_layer_metrics([{**r, "layer": k} for k, r in keyed]):
        b = out[t["layer"]]
        if t["n"]:
            b["asr"] = Stat(t["asr"], t["asr_ci_low"], t["asr_ci_high"], t["n"], True)
        for m in OUTCOME_RATES:
            if t["n"] and t.get("asr_source") == "refusal" and m in t:
                lo, hi = wilson_interval(round(t[m] * t["n"]), t["n"])
                b[m] = Stat(t[m], lo, hi, t["n"], True)
        if t.get("benign_n"):
            b["over_refusal"] = Stat(t["over_refusal"], t["over_refusal_ci_low"], t["over_refusal_ci_high"],
                                     t["benign_n"], True)
    values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for k, r in keyed:
        if r.get("error"):
            continue
        scores = r.get("scores") if isinstance(r.get("scores"), dict) else {}
        for m, v in scores.items():
            if m != "refusal" and _is_number(v):
                values[k][m].append(float(v))
        for m in GENERATION_STATS:
            if _is_number(r.get(m)) and r.get("response") is not None:
                values[k][m].append(float(r[m]))
    for k, by_metric in values.items():
        for m, vals in by_metric.items():
            out[k][m] = mean_ci(vals)
    return dict(out)


def per_layer(rows: list[dict]) -> dict[int, dict[str, Stat]]:
    return dict(sorted(stats_by(rows, lambda r: int(r["layer"])).items()))


GROUP_BOOT = 1000


def prompt_bootstrap(rows: list[dict], key: Callable[[dict], int | None], pooled: dict[int, dict[str, Stat]],
                     n_boot: int = GROUP_BOOT, seed: int = 0) -> dict[int, dict[str, Stat]]:
    """``pooled`` (from :func:`stats_by` with ``key``) with every interval replaced by a bootstrap
    over prompts: each prompt contributes (sum, count) of each metric in each bucket; a draw
    resamples prompts with replacement and takes sum/count; the interval is the draws' 2.5 and
    97.5 percentiles. Values and n are unchanged."""
    import numpy as np

    index = {sid: i for i, sid in enumerate(dict.fromkeys(str(r.get("sample_id", r.get("id"))) for r in rows))}
    n = len(index)
    keys = [key(r) for r in rows]
    if n == 0 or all(k is None for k in keys):
        return pooled
    width = 1 + max(k for k in keys if k is not None)

    def sample_bucket(r):  # one stats_by pass over (prompt, bucket) cells
        b = key(r)
        return None if b is None else index[str(r.get("sample_id", r.get("id")))] * width + b

    num: dict[tuple, np.ndarray] = {}
    den: dict[tuple, np.ndarray] = {}
    for cell, stats in stats_by(rows, sample_bucket).items():
        i, b = divmod(cell, width)
        for m, s in stats.items():
            if s.n and not math.isnan(s.value):
                num.setdefault((b, m), np.zeros(n))[i] = s.value * s.n
                den.setdefault((b, m), np.zeros(n))[i] = s.n
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    out = {b: dict(stats) for b, stats in pooled.items()}
    for (b, m), a in num.items():
        s = out.get(b, {}).get(m)
        if s is None:
            continue
        tot, cnt = a[idx].sum(axis=1), den[(b, m)][idx].sum(axis=1)
        ratios = tot[cnt > 0] / cnt[cnt > 0]
        if ratios.size:
            out[b][m] = Stat(s.value, float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975)), s.n,
                             s.binary)
    return out


def groups(rows: list[dict], num_layers: int, default_layer: int | None) -> dict[str, dict[str, Stat]]:
    """Stats of layer 0, each third, all blocks 1..N and the default layer (see groups.py); the
    thirds' and All's intervals resample prompts (:func:`prompt_bootstrap`)."""
    index = {name: i for i, name in enumerate(THIRDS)}

    def third_key(r):
        name = third_of(int(r["layer"]), num_layers)
        return None if name is None else index[name]

    def all_key(r):
        return 0 if 1 <= int(r["layer"]) <= num_layers else None

    by_third = prompt_bootstrap(rows, third_key, stats_by(rows, third_key))
    everything = prompt_bootstrap(rows, all_key, stats_by(rows, all_key))
    layers = per_layer(rows)
    return {"layer0": layers.get(0, {}), **{name: by_third.get(i, {}) for name, i in index.items()},
            "all": everything.get(0, {}), "default": layers.get(default_layer, {})}


def categories(rows: list[dict], num_layers: int, default_layer: int | None) -> dict[str, dict]:
    """Group stats per dataset category; empty unless the rows carry two or more categories."""
    names = sorted({str(r["category"]) for r in rows if r.get("category") not in (None, "")})
    if len(names) < 2:
        return {}
    return {c: groups([r for r in rows if str(r.get("category")) == c], num_layers, default_layer)
            for c in names}


def category_layer_matrix(rows: list[dict], metric: str) -> tuple[list[str], list[int], list[list[float]]]:
    """Category × layer values of one metric (NaN where absent), for the heat map."""
    names = sorted({str(r["category"]) for r in rows if r.get("category") not in (None, "")})
    layers = sorted({int(r["layer"]) for r in rows})
    matrix = []
    for c in names:
        by_layer = per_layer([r for r in rows if str(r.get("category")) == c])
        matrix.append([by_layer.get(l, {}).get(metric, Stat(math.nan, 0, 0, 0, False)).value for l in layers])
    return names, layers, matrix


def metric_names(*tables: dict[int, dict[str, Stat]]) -> list[str]:
    """Metrics present, safety scores first (asr, over_refusal, judges' scores), length last."""
    seen = {m for t in tables for stats in t.values() for m in stats}
    head = [m for m in ("asr", "over_refusal") if m in seen]
    tail = [m for m in GENERATION_STATS if m in seen]
    return head + sorted(seen - set(head) - set(tail)) + tail


def fmt(s: Stat | None) -> str:
    """``0.375 [0.137, 0.694]`` (interval omitted when undefined)."""
    if s is None or s.n == 0 or math.isnan(s.value):
        return "—"
    digits = 3 if s.binary or abs(s.value) < 10 else 1
    text = f"{s.value:.{digits}f}"
    if not math.isnan(s.low):
        text += f" [{s.low:.{digits}f}, {s.high:.{digits}f}]"
    return text


def outcome_shares(rows: list[dict]) -> dict[int, dict[str, float]]:
    """Per layer, the share of judged harmful rows in each refusal-judge outcome (they sum to 1);
    layers without such rows are left out."""
    from ..judges.outcome import OUTCOMES
    from ..metrics.aggregate import is_harmful, row_outcome

    by_layer: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        o = None if r.get("error") else row_outcome(r)
        if o is not None and is_harmful(r):
            by_layer[int(r["layer"])].append(o)
    return {l: {o: got.count(o) / len(got) for o in OUTCOMES} for l, got in sorted(by_layer.items())}
