"""Compare two runs (e.g. before vs after L-PPO) on the (sample, layer) pairs both have.

Deltas (other − base) are computed only on matched pairs that neither run failed, so a changed
number means changed responses, not a changed sample set. Samples and layers present in only
one run are listed, never dropped silently.
"""

from __future__ import annotations

from .load import Run, _sid
from .tables import Stat, groups, metric_names, per_layer


def _pairs(run: Run) -> dict[tuple[str, int], dict]:
    return {(_sid(r), int(r["layer"])): r for r in run.rows}


def compare_runs(base: Run, other: Run) -> dict:
    a, b = _pairs(base), _pairs(other)
    matched = sorted(k for k in a.keys() & b.keys() if not a[k].get("error") and not b[k].get("error"))
    rows_a, rows_b = [a[k] for k in matched], [b[k] for k in matched]
    la, lb = per_layer(rows_a), per_layer(rows_b)
    ga = groups(rows_a, base.num_layers, base.default_layer)
    gb = groups(rows_b, base.num_layers, base.default_layer)
    samples_a, samples_b = {s for s, _ in a}, {s for s, _ in b}
    layers_a, layers_b = {l for _, l in a}, {l for _, l in b}
    notes = []
    if other.num_layers != base.num_layers or other.default_layer != base.default_layer:
        notes.append(f"encoder depth/default layer differ ({base.num_layers}/{base.default_layer} vs "
                     f"{other.num_layers}/{other.default_layer}): layers are matched by number; "
                     f"thirds follow {base.label}")
    return {
        "base": base.label, "other": other.label,
        "metrics": metric_names(la, lb),
        "n_matched_pairs": len(matched),
        "n_pairs_failed_in_either": len(a.keys() & b.keys()) - len(matched),
        "samples_only_in_base": sorted(samples_a - samples_b),
        "samples_only_in_other": sorted(samples_b - samples_a),
        "layers_only_in_base": sorted(layers_a - layers_b),
        "layers_only_in_other": sorted(layers_b - layers_a),
        "per_layer": {l: _deltas(la.get(l, {}), lb.get(l, {})) for l in sorted(la.keys() | lb.keys())},
        "groups": {g: _deltas(ga[g], gb[g]) for g in ga},
        "notes": notes,
    }


def _deltas(sa: dict[str, Stat], sb: dict[str, Stat]) -> dict[str, dict]:
    out = {}
    for m in sa.keys() | sb.keys():
        x, y = sa.get(m), sb.get(m)
        delta = y.value - x.value if x is not None and y is not None else float("nan")
        out[m] = {"base": x, "other": y, "delta": delta}
    return out
