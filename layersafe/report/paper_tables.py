"""The paper's Table 1 and Table 2 from a `layersafe paper` run folder's files alone (docs/paper.md).

* ``table1.csv``: one row per encoder layer; per set the columns ``<SET> ASR`` (Llama Guard, % of
  harmful prompts judged unsafe), ``<SET> TS`` (mean toxicity: Perspective's or the offline judge's,
  whichever ran) and ``<SET> TR`` (mean reward).
* ``table2.csv``: one row per set; per layer third (Early / Middle / Late, docs/design.md §3.1)
  the columns ``<Third> AASR``, ``<Third> ATS``, ``<Third> ATR``: means over the third's layers of
  the per-layer values.
* ``stats.csv``: every number of both tables with its 95 % interval and count (long form): per
  layer Wilson (ASR) or Student t (TS, TR); per third a bootstrap over *prompts* (each draw keeps
  a prompt's layers together; metrics/paired.py), not pooled rows.
* with a ``compare`` run (the "before"): ``compare_layers.csv`` (per set, layer and metric: before,
  after, delta = after - before with a paired prompt-bootstrap interval; for ASR the exact
  McNemar test on the prompts both runs judged) and ``compare_groups.csv`` (per set and third).
* ``report.html``: all of the above, self-contained.

A metric whose judge did not run (TS without a Perspective key, TR without ``--rm``) has empty
cells, and the reason is in the notes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from html import escape
from pathlib import Path

import numpy as np

from ..data.tasks import PAPER_METRICS
from ..errors import UserError
from ..io import atomic_write_text
from ..metrics.aggregate import mean_interval, wilson_interval
from ..metrics.paired import align_rows, bootstrap_ci, grand_mean, paired_layer_test, verdict_matrix
from .groups import THIRDS, thirds
from .load import load_run

PAPER_JSON = "paper.json"
METRIC_ORDER = ("ASR", "TS", "TR")
GROUP_NAMES = {"ASR": "AASR", "TS": "ATS", "TR": "ATR"}


def _read_state(run: Path) -> dict:
    p = run / PAPER_JSON
    if not p.is_file():
        raise UserError(f"{run} is not a `layersafe paper` run folder (no {PAPER_JSON})")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{p} is not valid JSON") from None


def paper_keys(state: dict) -> dict[str, list[str]]:
    """Paper metric -> the score keys to read, in order: the key of the judge paper.json records for
    it (scores are keyed by judge name, docs/design.md §3.4), then :data:`PAPER_METRICS`' keys."""
    from ..judges.base import parse_spec, score_key

    judged = state.get("judges") if isinstance(state.get("judges"), dict) else {}
    out = {}
    for metric, (_, keys) in PAPER_METRICS.items():
        spec = judged.get(metric)
        first = [score_key(parse_spec(spec)[0])] if isinstance(spec, str) and spec.strip() else []
        out[metric] = list(dict.fromkeys(first + list(keys)))
    return out


def load_paper_run(run: str | Path) -> dict:
    """The sets of a paper run: name -> {"run" (report.load.Run), "mats": metric -> (ids, layers, matrix)}."""
    run = Path(run)
    state = _read_state(run)
    sets = {}
    keys_by_metric = paper_keys(state)
    for name, info in (state.get("sets") or {}).items():
        folder = run / info.get("folder", name)
        if not (folder / "run.json").is_file():
            continue  # not scanned yet
        r = load_run(folder)  # scores of an earlier version are read under today's keys
        mats = {}
        for metric, keys in keys_by_metric.items():
            for key in keys:  # the first key with a value: the judge that ran
                ids, layers, m = verdict_matrix(r.rows, key, binary=metric == "ASR")
                if np.isfinite(m).any():
                    mats[metric] = (ids, layers, m)
                    break
        sets[name] = {"run": r, "mats": mats, "layers": sorted({int(x["layer"]) for x in r.rows})}
    return {"path": run, "state": state, "sets": sets}


def _layer_stat(metric: str, col: np.ndarray) -> dict:
    vals = col[~np.isnan(col)]
    n = int(vals.size)
    if n == 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    if metric == "ASR":
        k = int(vals.sum())
        lo, hi = wilson_interval(k, n)
        return {"value": k / n, "ci_low": lo, "ci_high": hi, "n": n, "interval": "wilson"}
    mean, lo, hi = mean_interval([float(v) for v in vals])
    return {"value": mean, "ci_low": lo, "ci_high": hi, "n": n, "interval": "student-t"}


def _cols(layers: list[int], wanted: list[int]) -> list[int]:
    pos = {l: j for j, l in enumerate(layers)}
    return [pos[l] for l in wanted if l in pos]


def compute_tables(paper: dict, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Per set: ``layers`` {layer: {metric: stat}} and ``groups`` {third: {metric: stat}}."""
    out = {}
    for name, s in paper["sets"].items():
        nl = s["run"].num_layers
        spans = thirds(nl)
        per_layer: dict[int, dict] = {l: {} for l in s["layers"]}
        groups: dict[str, dict] = {g: {} for g in THIRDS}
        for metric, (_ids, layers, m) in s["mats"].items():
            for j, l in enumerate(layers):
                per_layer.setdefault(l, {})[metric] = _layer_stat(metric, m[:, j])
            for g in THIRDS:
                span = spans[g]
                cols = _cols(layers, list(range(span[0], span[1] + 1))) if span else []
                if not cols:
                    continue
                sub = m[:, cols]
                lo, hi = bootstrap_ci([sub], grand_mean, n_boot=n_boot, seed=seed)
                groups[g][metric] = {"value": float(grand_mean(sub)), "ci_low": lo, "ci_high": hi,
                                     "n": int(np.sum(~np.isnan(sub).all(axis=1))), "layers": [layers[c] for c in cols],
                                     "interval": "prompt bootstrap"}
        out[name] = {"layers": dict(sorted(per_layer.items())), "groups": groups, "num_layers": nl,
                     "default_layer": s["run"].default_layer, "spans": spans}
    return out


def compute_compare(before: dict, after: dict, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Per set both runs have: per layer and per third, before / after / delta (after - before) of
    every metric both runs measured, on the prompts both judged; paired prompt-bootstrap intervals
    of the delta; for ASR per layer the exact McNemar test."""
    out = {}
    for name in [n for n in after["sets"] if n in before["sets"]]:
        a, b = before["sets"][name], after["sets"][name]
        nl = b["run"].num_layers
        spans = thirds(nl)
        layers_out: dict[int, dict] = {}
        groups_out: dict[str, dict] = {g: {} for g in THIRDS}
        for metric in [m for m in METRIC_ORDER if m in a["mats"] and m in b["mats"]]:
            ids_a, la, ma = a["mats"][metric]
            ids_b, lb, mb = b["mats"][metric]
            layers = sorted(set(la) | set(lb))
            common, x, y = align_rows(ids_a, la, ma, ids_b, lb, mb, layers)
            for j, l in enumerate(layers):
                xa, yb = x[:, j:j + 1], y[:, j:j + 1]
                both = ~np.isnan(xa[:, 0]) & ~np.isnan(yb[:, 0])
                xa, yb = xa[both], yb[both]
                d = {"before": _nanmean(xa), "after": _nanmean(yb), "n": int(both.sum())}
                d["delta"] = d["after"] - d["before"]
                d["ci_low"], d["ci_high"] = bootstrap_ci([xa, yb], _diff, n_boot=n_boot, seed=seed)
                if metric == "ASR":
                    t = paired_layer_test(xa[:, 0], yb[:, 0])
                    d.update(fixed=t["b"], broken=t["c"], mcnemar_p=t["mcnemar_p"])
                layers_out.setdefault(l, {})[metric] = d
            for g in THIRDS:
                span = spans[g]
                cols = [j for j, l in enumerate(layers) if span and span[0] <= l <= span[1]]
                if not cols:
                    continue
                xs, ys = x[:, cols], y[:, cols]
                mask = np.isnan(xs) | np.isnan(ys)  # the cells both runs have
                xs, ys = np.where(mask, np.nan, xs), np.where(mask, np.nan, ys)
                d = {"before": float(grand_mean(xs)), "after": float(grand_mean(ys)), "n": len(common)}
                d["delta"] = d["after"] - d["before"]
                d["ci_low"], d["ci_high"] = bootstrap_ci([xs, ys], _diff, n_boot=n_boot, seed=seed)
                groups_out[g][metric] = d
        out[name] = {"layers": dict(sorted(layers_out.items())), "groups": groups_out, "n_prompts": None}
    return out


def _diff(x, y):
    return grand_mean(y) - grand_mean(x)


def _nanmean(m: np.ndarray) -> float:
    return float(np.nanmean(m)) if np.isfinite(m).any() else math.nan


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def _pct(metric: str, v: float) -> float:
    return v * 100 if metric == "ASR" else v


def _cell(metric: str, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{_pct(metric, v):.1f}" if metric == "ASR" else f"{v:.4g}"


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def table1(tables: dict) -> tuple[list[str], list[list]]:
    names = list(tables)
    layers = sorted({l for t in tables.values() for l in t["layers"]})
    header = ["layer"] + [f"{n} {m}" for n in names for m in METRIC_ORDER]
    rows = [[l] + [_cell(m, tables[n]["layers"].get(l, {}).get(m, {}).get("value")) for n in names for m in METRIC_ORDER]
            for l in layers]
    return header, rows


def table2(tables: dict) -> tuple[list[str], list[list]]:
    header = ["set"] + [f"{g.capitalize()} {GROUP_NAMES[m]}" for g in THIRDS for m in METRIC_ORDER]
    rows = [[n] + [_cell(m, t["groups"][g].get(m, {}).get("value")) for g in THIRDS for m in METRIC_ORDER]
            for n, t in tables.items()]
    return header, rows


def stats_rows(tables: dict) -> tuple[list[str], list[list]]:
    header = ["set", "scope", "layers", "metric", "value", "ci_low", "ci_high", "n", "interval"]
    rows = []
    for n, t in tables.items():
        for l, by in t["layers"].items():
            for m in METRIC_ORDER:
                if m in by:
                    s = by[m]
                    rows.append([n, f"layer {l}", l, m, _num(s["value"]), _num(s["ci_low"]), _num(s["ci_high"]), s["n"],
                                 s.get("interval", "")])
        for g in THIRDS:
            for m in METRIC_ORDER:
                if m in t["groups"][g]:
                    s = t["groups"][g][m]
                    span = f"{s['layers'][0]}-{s['layers'][-1]}"
                    rows.append([n, g, span, GROUP_NAMES[m], _num(s["value"]), _num(s["ci_low"]), _num(s["ci_high"]),
                                 s["n"], s["interval"]])
    return header, rows


def compare_rows(cmp: dict) -> tuple[tuple[list[str], list[list]], tuple[list[str], list[list]]]:
    h1 = ["set", "layer", "metric", "before", "after", "delta", "delta_ci_low", "delta_ci_high", "n_pairs",
          "fixed", "broken", "mcnemar_p"]
    r1 = [[n, l, m, _num(d["before"]), _num(d["after"]), _num(d["delta"]), _num(d["ci_low"]), _num(d["ci_high"]),
           d["n"], d.get("fixed", ""), d.get("broken", ""), _num(d["mcnemar_p"]) if "mcnemar_p" in d else ""]
          for n, c in cmp.items() for l, by in c["layers"].items() for m, d in by.items()]
    h2 = ["set", "group", "metric", "before", "after", "delta", "delta_ci_low", "delta_ci_high", "n_prompts"]
    r2 = [[n, g, GROUP_NAMES[m], _num(d["before"]), _num(d["after"]), _num(d["delta"]), _num(d["ci_low"]),
           _num(d["ci_high"]), d["n"]]
          for n, c in cmp.items() for g in THIRDS for m, d in c["groups"][g].items()]
    return (h1, r1), (h2, r2)


def _num(v):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else (f"{v:.6g}" if isinstance(v, float) else v)


def build_paper_tables(run: str | Path, compare: str | Path | None = None, *, n_boot: int = 2000,
                       seed: int = 0) -> dict:
    """Write the tables (and report.html) of a paper run; returns ``{"files", "console", "tables"}``."""
    paper = load_paper_run(run)
    out = paper["path"]
    tables = compute_tables(paper, n_boot=n_boot, seed=seed)
    files = {}
    for fname, (header, rows) in (("table1.csv", table1(tables)), ("table2.csv", table2(tables)),
                                  ("stats.csv", stats_rows(tables))):
        atomic_write_text(out / fname, _csv(header, rows))
        files[fname] = str(out / fname)
    cmp = None
    if compare:
        before = load_paper_run(compare)
        cmp = compute_compare(before, paper, n_boot=n_boot, seed=seed)
        (h1, r1), (h2, r2) = compare_rows(cmp)
        atomic_write_text(out / "compare_layers.csv", _csv(h1, r1))
        atomic_write_text(out / "compare_groups.csv", _csv(h2, r2))
        files["compare_layers.csv"] = str(out / "compare_layers.csv")
        files["compare_groups.csv"] = str(out / "compare_groups.csv")
    atomic_write_text(out / "report.html", render_html(paper, tables, cmp, compare))
    files["report.html"] = str(out / "report.html")
    return {"files": files, "console": console(paper, tables, cmp), "tables": tables, "compare": cmp}


def console(paper: dict, tables: dict, cmp: dict | None) -> str:
    header, rows = table2(tables)
    width = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = [f"Table 2 ({', '.join(f'{g} {s[0]}-{s[1]}' for g, s in next(iter(tables.values()))['spans'].items() if s)}"
             if tables else "Table 2", "  ".join(h.ljust(w) for h, w in zip(header, width))]
    lines += ["  ".join(str(c or "—").ljust(w) for c, w in zip(r, width)) for r in rows]
    lines += [f"note: {n}" for n in paper["state"].get("notes") or []]
    for n, c in (cmp or {}).items():
        parts = [f"{g} {GROUP_NAMES[m]} {_cell(m, d['before'])}->{_cell(m, d['after'])}"
                 for g in THIRDS for m, d in c["groups"][g].items() if m == "ASR"]
        lines.append(f"{n} before->after: " + ", ".join(parts))
    return "\n".join(lines)


def _fmt_ci(metric: str, s: dict | None) -> str:
    if not s or s.get("value") is None or math.isnan(s["value"]):
        return "—"
    text = _cell(metric, s["value"])
    if not math.isnan(s.get("ci_low", math.nan)):
        text += f" <span class=small>[{_cell(metric, s['ci_low'])}, {_cell(metric, s['ci_high'])}]</span>"
    return text


def render_html(paper: dict, tables: dict, cmp: dict | None, compare_path) -> str:
    from .html import CSS, _table

    st = paper["state"]
    cfg = st.get("config") or {}
    tmpl = st.get("template") or {}
    names = list(tables)
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>layersafe paper: {escape(str(cfg.get('model')))}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>Layer-wise safety: Table 1 and Table 2</h1><p class=small>Bachu et al., ICML 2025 layout. Model "
             f"<b>{escape(str(cfg.get('model')))}</b>" + (f", adapter {escape(str(cfg['adapter']))}" if cfg.get("adapter") else "")
             + f"; template {escape(str(tmpl.get('name', cfg.get('template'))))}; judges: "
             + escape(", ".join(f"{m} = {s}" for m, s in (st.get("judges") or {}).items()) or "none")
             + f"; created {escape(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>"]
    parts += [f"<div class=note>{escape(n)}</div>" for n in st.get("notes") or []]
    parts.append("<p class=small>ASR: % of harmful prompts Llama Guard judged unsafe (unparseable verdicts left out; "
                 "empty responses count as not unsafe). TS: mean toxicity. TR: mean reward. Per-layer intervals: "
                 "Wilson (ASR) or Student t; group intervals: bootstrap over prompts (a prompt's layers stay together)."
                 "</p>")
    parts.append("<h2>Table 1: per layer</h2>")
    header = ["layer"] + [f"{escape(n)} {m}" for n in names for m in METRIC_ORDER]
    layers = sorted({l for t in tables.values() for l in t["layers"]})
    defaults = {t["default_layer"] for t in tables.values()}
    rows = [[str(l)] + [_fmt_ci(m, tables[n]["layers"].get(l, {}).get(m)) for n in names for m in METRIC_ORDER]
            for l in layers]
    parts.append(_table(header, rows, row_classes=["default" if l in defaults else "" for l in layers]))
    parts.append("<h2>Table 2: Early / Middle / Late averages</h2>")
    spans = next(iter(tables.values()))["spans"] if tables else {}
    header = ["set"] + [f"{g.capitalize()} {spans.get(g) and f'{spans[g][0]}–{spans[g][1]}'} {GROUP_NAMES[m]}"
                        for g in THIRDS for m in METRIC_ORDER]
    rows = [[escape(n)] + [_fmt_ci(m, t["groups"][g].get(m)) for g in THIRDS for m in METRIC_ORDER]
            for n, t in tables.items()]
    parts.append(_table(header, rows))
    if cmp is not None:
        parts.append(f"<h2>Before / after</h2><p class=small>before = {escape(str(compare_path))}, after = this run; "
                     "delta = after − before on the prompts both runs judged, with a paired prompt-bootstrap 95 % "
                     "interval; p = exact McNemar test (fixed: unsafe → safe, broken: safe → unsafe).</p>")
        header = ["set", "group", "metric", "before", "after", "delta [95 %]"]
        rows = [[escape(n), g, GROUP_NAMES[m], _cell(m, d["before"]) or "—", _cell(m, d["after"]) or "—",
                 _delta(m, d)] for n, c in cmp.items() for g in THIRDS for m, d in c["groups"][g].items()]
        parts.append(_table(header, rows, left=3))
        header = ["set", "layer", "before ASR", "after ASR", "delta [95 %]", "fixed", "broken", "McNemar p"]
        rows = [[escape(n), str(l), _cell("ASR", d["before"]) or "—", _cell("ASR", d["after"]) or "—", _delta("ASR", d),
                 str(d["fixed"]), str(d["broken"]), f"{d['mcnemar_p']:.3g}"]
                for n, c in cmp.items() for l, by in c["layers"].items() if (d := by.get("ASR"))]
        parts.append(_table(header, rows, left=2))
    parts.append("</body></html>")
    return "".join(parts)


def _delta(m: str, d: dict) -> str:
    if math.isnan(d["delta"]):
        return "—"
    s = f"{_pct(m, d['delta']):+.1f}" if m == "ASR" else f"{d['delta']:+.4g}"
    if not math.isnan(d["ci_low"]):
        s += f" [{_pct(m, d['ci_low']):+.1f}, {_pct(m, d['ci_high']):+.1f}]" if m == "ASR" else \
            f" [{d['ci_low']:+.4g}, {d['ci_high']:+.4g}]"
    return s
