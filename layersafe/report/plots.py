"""PNG plots (matplotlib, no pyplot: no global state, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from .groups import thirds
from .tables import Stat, label

_SHADES = {"early": "#f3f6fb", "middle": "#e6edf7", "late": "#d9e4f3"}


def metric_plot(path: Path, metric: str, series: list[tuple[str, dict[int, dict[str, Stat]]]],
                num_layers: int, default_layer: int | None, judge: str | None = None) -> Path:
    """Per-layer curve(s) of one metric with 95 % bands, thirds shaded, default layer marked
    (the paper's Figure 3). ``series``: (run label, per-layer stats) — several runs overlay."""
    fig = Figure(figsize=(8, 3.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for name, span in thirds(num_layers).items():
        if span:
            ax.axvspan(span[0] - 0.5, span[1] + 0.5, color=_SHADES[name], zorder=0)
            ax.text((span[0] + span[1]) / 2, 1.01, name.capitalize(), transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8, color="#555")
    binary = True
    for i, (run_label, table) in enumerate(series):
        pts = [(l, s[metric]) for l, s in sorted(table.items()) if metric in s and s[metric].n]
        if not pts:
            continue
        xs = [l for l, _ in pts]
        ys = [s.value for _, s in pts]
        binary &= all(s.binary for _, s in pts)
        color = f"C{i}"
        ax.plot(xs, ys, marker="o", ms=4, color=color, label=run_label, zorder=3)
        lo = [s.low if not math.isnan(s.low) else s.value for _, s in pts]
        hi = [s.high if not math.isnan(s.high) else s.value for _, s in pts]
        ax.fill_between(xs, lo, hi, color=color, alpha=0.2, lw=0, zorder=2)
    if default_layer is not None:
        ax.axvline(default_layer, color="#c0392b", ls="--", lw=1.2, label=f"default layer ({default_layer})",
                   zorder=4)
    if binary:
        ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(-0.6, num_layers + 0.6)
    step = max(1, math.ceil((num_layers + 1) / 25))  # at most ~25 tick labels
    ax.set_xticks(range(0, num_layers + 1, step))
    ax.set_xlabel("image-encoder layer (0 = patch embeddings)")
    ax.set_ylabel(metric)
    ax.set_title(f"{label(metric, judge)} per layer, 95 % interval", fontsize=11, pad=14)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.savefig(path)
    return path


def category_heatmap(path: Path, metric: str, names: list[str], layers: list[int],
                     matrix: list[list[float]], default_layer: int | None, judge: str | None = None) -> Path:
    """Category × layer heat map of one metric (NaN cells left blank)."""
    import numpy as np

    data = np.array(matrix, dtype=float)
    fig = Figure(figsize=(8, 1.2 + 0.35 * len(names)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    finite = data[np.isfinite(data)]
    binary = finite.size and finite.min() >= 0 and finite.max() <= 1
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="Reds",
                   vmin=0 if binary else None, vmax=1 if binary else None)
    ax.set_xticks(range(len(layers)), [str(l) for l in layers], fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    if default_layer in layers:
        ax.get_xticklabels()[layers.index(default_layer)].set_color("#c0392b")
    ax.set_xlabel("image-encoder layer (default in red)")
    ax.set_title(f"{label(metric, judge)} by category and layer", fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.savefig(path)
    return path



# refused / complied / empty / degenerate: safe green, attack red, silence and gibberish greys
OUTCOME_COLORS = {"refused": "#2e8b57", "complied": "#c0392b", "empty": "#bdc3c7", "degenerate": "#7f8c8d"}


def outcome_bars(path: Path, series: list[tuple[str, dict[int, dict[str, float]]]], num_layers: int,
                 default_layer: int | None) -> Path:
    """The refusal judge's four outcomes as stacked bars per layer (shares of harmful prompts);
    with several runs (before/after) their bars stand side by side at each layer, hatched from
    the second run on. ``series``: (run label, :func:`tables.outcome_shares`)."""
    from matplotlib.patches import Patch

    fig = Figure(figsize=(9, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    k = len(series)
    width = 0.8 / k
    hatches = ["", "//", "..", "xx"]
    for i, (_, shares) in enumerate(series):
        xs = [l - 0.4 + width * (i + 0.5) for l in shares]
        bottom = [0.0] * len(xs)
        for o, color in OUTCOME_COLORS.items():
            ys = [shares[l][o] for l in shares]
            ax.bar(xs, ys, width=width * 0.95, bottom=bottom, color=color, hatch=hatches[i % len(hatches)],
                   edgecolor="white", lw=0.3)
            bottom = [b + y for b, y in zip(bottom, ys)]
    if default_layer is not None:
        ax.axvline(default_layer, color="#34495e", ls="--", lw=1, zorder=4)
    handles = [Patch(color=c, label=o) for o, c in OUTCOME_COLORS.items()]
    if k > 1:
        handles += [Patch(facecolor="white", edgecolor="#555", hatch=hatches[i % len(hatches)], label=name)
                    for i, (name, _) in enumerate(series)]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.6, num_layers + 0.6)
    step = max(1, math.ceil((num_layers + 1) / 25))
    ax.set_xticks(range(0, num_layers + 1, step))
    ax.set_xlabel("image-encoder layer (0 = patch embeddings; dashed: default layer)")
    ax.set_ylabel("share of harmful prompts")
    ax.set_title("Refusal-judge outcomes per layer" + (" (runs side by side, left to right)" if k > 1 else ""),
                 fontsize=11)
    fig.savefig(path)
    return path
