"""Build a report from run folders alone: PNG plots, report.html, summary.json, console table."""

from __future__ import annotations

import re
import time
from pathlib import Path

from ..errors import UserError
from ..io import atomic_write_json, atomic_write_text
from .compare import compare_runs
from .groups import GROUPS, describe_thirds, group_labels, thirds
from .load import Run, _sid, load_run, stale_metrics_note
from .tables import (OUTCOME_RATES, Stat, categories, category_layer_matrix, fmt, groups, metric_names,
                     outcome_shares, per_layer)


def _analyse(run: Run) -> dict:
    from ..judges.agreement import judge_agreement

    layers = per_layer(run.rows)
    note = stale_metrics_note(run, {l: s["asr"].value for l, s in layers.items() if "asr" in s})
    return {"identity": run.identity(), "notes": run.notes + ([note] if note else []),
            "per_layer": layers, "metrics": metric_names(layers),
            "groups": groups(run.rows, run.num_layers, run.default_layer),
            "categories": categories(run.rows, run.num_layers, run.default_layer),
            "agreement": judge_agreement(run.rows)}


def first_examples(rows: list[dict], n: int) -> dict[int, list[dict]]:
    """The rows of the first ``n`` samples (in file order) at every layer."""
    first = list(dict.fromkeys(_sid(r) for r in rows))[:n]
    keep = set(first)
    out: dict[int, list[dict]] = {}
    for r in sorted((r for r in rows if _sid(r) in keep), key=lambda r: (int(r["layer"]), first.index(_sid(r)))):
        out.setdefault(int(r["layer"]), []).append(r)
    return out


def build_report(run_dir: str | Path, compare: list[str | Path] = (), out: str | Path | None = None, *,
                 redact: bool = False, n_examples: int = 3) -> dict:
    """Write OUT (default RUN_DIR/report) with report.html, one PNG per metric and summary.json;
    returns the summary (plus ``console``, the text table)."""
    from .. import __version__
    from .html import render
    from .plots import category_heatmap, metric_plot, outcome_bars

    if n_examples < 0:
        raise UserError("--examples must be 0 or more")
    runs = [load_run(run_dir)] + [load_run(p) for p in compare]
    _unique_labels(runs)
    out = Path(out) if out is not None else Path(run_dir) / "report"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    analysed = [_analyse(r) for r in runs]
    base, base_run = analysed[0], runs[0]
    comparisons = [compare_runs(base_run, r) for r in runs[1:]]

    plots, category_plots = [], []
    for m in metric_names(*(a["per_layer"] for a in analysed)):
        if m in OUTCOME_RATES:
            continue  # drawn together as stacked bars below
        series = [(a["identity"]["label"], a["per_layer"]) for a in analysed]
        plots.append((m, metric_plot(out / f"{_slug(m)}.png", m, series, base_run.num_layers,
                                     base_run.default_layer, base["identity"]["asr_judge"])))
    if base["categories"]:
        for m in base["metrics"][:1]:  # the primary metric (ASR when judged) is enough for a heat map
            names, layers, matrix = category_layer_matrix(base_run.rows, m)
            category_plots.append((m, category_heatmap(out / f"categories_{_slug(m)}.png", m, names, layers,
                                                       matrix, base_run.default_layer, base["identity"]["asr_judge"])))
    outcome_series = [(r.label, shares) for r in runs if (shares := outcome_shares(r.rows))]
    outcome_plot = (outcome_bars(out / "outcomes.png", outcome_series, base_run.num_layers, base_run.default_layer)
                    if outcome_series else None)
    created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    ctx = {"runs": analysed, "plots": plots, "category_plots": category_plots, "comparisons": comparisons,
           "outcome_plot": outcome_plot,
           "examples": first_examples(base_run.rows, n_examples), "n_examples": n_examples,
           "redact": redact, "created": created, "version": __version__}
    atomic_write_text(out / "report.html", render(ctx))
    summary = {
        "created": created, "layersafe_version": __version__,
        "thirds": {"num_layers": base_run.num_layers, "description": describe_thirds(base_run.num_layers),
                   **{k: (list(v) if v else None) for k, v in thirds(base_run.num_layers).items()}},
        "runs": [_run_json(a) for a in analysed],
        "comparisons": [_comparison_json(c) for c in comparisons],
        "files": {"html": str(out / "report.html"),
                  "plots": [str(p) for _, p in plots + category_plots] + ([str(outcome_plot)] if outcome_plot else [])},
    }
    atomic_write_json(out / "summary.json", summary)
    summary["console"] = console_table(analysed, comparisons)
    return summary


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _unique_labels(runs: list[Run]) -> None:
    """Folder names label runs; two runs named alike get their full paths instead."""
    names = [r.label for r in runs]
    for r in runs:
        if names.count(r.label) > 1:
            r.label = str(r.path.resolve())
    if len({r.path.resolve() for r in runs}) < len(runs):
        raise UserError("the same run folder is given twice; --compare needs a different run")


def _stats_json(stats: dict[str, Stat]) -> dict:
    return {m: s.as_dict() for m, s in stats.items()}


def _run_json(a: dict) -> dict:
    ident = a["identity"]
    return {"identity": ident, "notes": a["notes"], "metrics": a["metrics"],
            "group_labels": group_labels(ident["num_layers"], ident["default_layer"]),
            "groups": {g: _stats_json(s) for g, s in a["groups"].items()},
            "per_layer": [{"layer": l, **_stats_json(s)} for l, s in a["per_layer"].items()],
            "categories": {c: {g: _stats_json(s) for g, s in gs.items()} for c, gs in a["categories"].items()},
            "judge_agreement": [{**x, "kappa": None if x["kappa"] != x["kappa"] else x["kappa"]} for x in a["agreement"]]}


def _comparison_json(c: dict) -> dict:
    def conv(d):
        return {m: {"base": v["base"].as_dict() if v["base"] else None,
                    "other": v["other"].as_dict() if v["other"] else None,
                    "delta": None if v["delta"] != v["delta"] else v["delta"]} for m, v in d.items()}

    return {**{k: v for k, v in c.items() if k not in ("per_layer", "groups")},
            "groups": {g: conv(d) for g, d in c["groups"].items()},
            "per_layer": [{"layer": l, **conv(d)} for l, d in c["per_layer"].items()]}


def console_table(analysed: list[dict], comparisons: list[dict]) -> str:
    """Group table(s) for the terminal: one line per metric, one column per layer group."""
    lines = []
    for a in analysed:
        ident = a["identity"]
        labels = group_labels(ident["num_layers"], ident["default_layer"])
        lines.append(f"run {ident['label']}: model {ident['model']}, dataset {ident['dataset']}, "
                     f"{ident['n_samples']} samples x {len(ident['layers'])} layers"
                     + (f"; asr by the {ident['asr_judge']} judge" if ident.get("asr_judge") else ""))
        lines.append(describe_thirds(ident["num_layers"]))
        lines += [f"note: {n}" for n in a["notes"]]
        if not a["metrics"]:
            continue
        width = max(len(m) for m in a["metrics"]) + 2
        cells = [[fmt(a["groups"][g].get(m)) for g in GROUPS] for m in a["metrics"]]
        colw = [max(len(labels[g]), *(len(c[i]) for c in cells)) + 2 for i, g in enumerate(GROUPS)]
        lines.append(("metric".ljust(width) + "".join(labels[g].ljust(w) for g, w in zip(GROUPS, colw))).rstrip())
        for m, row in zip(a["metrics"], cells):
            lines.append((m.ljust(width) + "".join(c.ljust(w) for c, w in zip(row, colw))).rstrip())
    for c in comparisons:
        lines.append(f"delta {c['other']} - {c['base']} on {c['n_matched_pairs']} matched (sample, layer) pairs "
                     f"({len(c['samples_only_in_base'])} samples only in base, "
                     f"{len(c['samples_only_in_other'])} only in other)")
        for m in c["metrics"]:
            deltas = "  ".join(f"{g} {c['groups'][g][m]['delta']:+.3f}" for g in GROUPS
                               if m in c["groups"][g] and c["groups"][g][m]["delta"] == c["groups"][g][m]["delta"])
            lines.append(f"  {m}: {deltas or '—'}")
    return "\n".join(lines)
