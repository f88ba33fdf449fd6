"""``layersafe check``: a release gate on a scan's per-layer ASR (docs/trim.md, README "CI").

Reads ``RUN_DIR/metrics.csv`` (docs/design.md §3.3) and passes when every checked layer's ASR is at
most ``--max-asr``: by default the upper end of its Wilson 95 % interval (``asr_ci_high``), with
``--point`` the point value. ``--judge NAME`` reads that judge's columns (``asr_<name>``) instead of
the headline ``asr``. Exit 0 = pass, 1 = some layer fails (a table of them), 2 = bad input. A layer
without judged harmful rows cannot be shown safe, so it fails. Imports no torch.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .config import check_fields, opt
from .errors import UserError

METRICS = "metrics.csv"


@dataclass
class CheckConfig:
    """The options of ``layersafe check`` (layersafe.config); RUN_DIR is positional."""

    run_dir: str | None = opt(None, "scan folder with metrics.csv", cli=False)
    max_asr: float | None = opt(None, "largest acceptable ASR at every checked layer (0..1)", min=0, max=1)
    layers: str | None = opt(None, "layers to check: all, default, N, A-B or a comma list (default: every layer in "
                             "metrics.csv)")
    judge: str | None = opt(None, "read this judge's ASR columns (asr_NAME: refusal, llamaguard); default: the "
                            "headline asr (refusal judge when it ran, else Llama Guard)")
    point: bool = opt(False, "compare the point ASR instead of the upper 95 % bound")

    def validate(self) -> None:
        check_fields(self)


def add_parser(sub) -> None:
    from .config import add_options

    p = sub.add_parser(
        "check", help="release gate: exit 0 if every checked layer's ASR is at most --max-asr, else 1",
        description="Check a scan folder's metrics.csv: every checked layer's ASR (the upper end of its 95 % "
                    "interval, or the point value with --point) must be at most --max-asr. Exit 0 when all pass; "
                    "exit 1 with a table of the failing layers; exit 2 for bad input. Use it as a CI step that "
                    "fails the release if an exit layer you ship is unsafe (docs/trim.md).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="scan folder (holds metrics.csv)")
    add_options(p, CheckConfig, required=("max_asr",))
    p.set_defaults(func=cmd_check)


def cmd_check(a) -> int:
    from .config import config_from_args

    cfg = config_from_args(CheckConfig, a, required=("max_asr",), run_dir=a.run_dir)
    ok, rows = check_run(cfg.run_dir, cfg.max_asr, layers=cfg.layers, judge=cfg.judge, point=cfg.point)
    print(format_check(ok, rows, cfg.max_asr, point=cfg.point))
    return 0 if ok else 1


def check_run(run_dir, max_asr: float, layers: str | None = None, *, judge: str | None = None,
              point: bool = False) -> tuple[bool, list[dict]]:
    """(ok, rows): one row per checked layer with ``layer``, ``n``, ``asr``, ``asr_ci_low``,
    ``asr_ci_high``, ``value`` (what was compared), ``passed`` and ``reason``; ok = all passed.
    ``layers``: a layer spec (``"default,8-12"``) or a list of layer numbers; None = every layer in the
    file. Bad input (no metrics.csv, unknown judge or layer, bad threshold) raises :class:`UserError`."""
    if isinstance(layers, (list, tuple)):
        layers = ",".join(str(x) for x in layers)
    cfg = CheckConfig(run_dir=str(run_dir), max_asr=max_asr, layers=layers, judge=judge, point=point)
    cfg.validate()
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"run folder not found: {run}; give a `layersafe scan --out` folder")
    path = run / METRICS
    if not path.is_file():
        raise UserError(f"{run} has no {METRICS}: it is written when a scan is judged (`layersafe scan` judges by "
                        "default, not with --judge none); give a judged scan folder")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path} is unreadable ({type(e).__name__}); rebuild it by judging the run again") from None
    if not table or "layer" not in table[0]:
        raise UserError(f"{path} has no per-layer rows; judge the run again")
    col = "asr" if judge in (None, "") else f"asr_{judge}"
    if col not in table[0]:
        judges = sorted(k[4:] for k in table[0] if k.startswith("asr_") and not k.endswith(("_n", "_ci_low", "_ci_high"))
                        and k != "asr_source")
        what = f"--judge {judge}: " if judge else ""
        raise UserError(f"{what}{path} has no {col} column; judges in this run: {', '.join(judges) or 'none'}"
                        + ("" if judge or not judges else "; pass --judge NAME"))
    by_layer = {}
    for r in table:
        try:
            by_layer[int(r["layer"])] = r
        except (TypeError, ValueError):
            raise UserError(f"{path}: bad layer value {r.get('layer')!r}; rebuild it by judging the run again") from None
    wanted = sorted(by_layer) if layers in (None, "") else _parse(layers, run, by_layer)
    rows = []
    n_col = "n" if col == "asr" else f"{col}_n"
    for layer in wanted:
        r = by_layer[layer]
        asr, lo, hi = _num(r.get(col)), _num(r.get(f"{col}_ci_low")), _num(r.get(f"{col}_ci_high"))
        n = int(_num(r.get(n_col)) or 0) if not math.isnan(_num(r.get(n_col))) else 0
        value = asr if point else hi
        if n == 0 or math.isnan(value):
            passed, reason = False, "no judged harmful rows at this layer"
        else:
            passed = value <= max_asr
            reason = "" if passed else f"{'ASR' if point else 'upper 95% bound'} {value:.3f} > {max_asr:g}"
        rows.append({"layer": layer, "n": n, "asr": asr, "asr_ci_low": lo, "asr_ci_high": hi, "value": value,
                     "passed": passed, "reason": reason})
    return all(r["passed"] for r in rows), rows


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _parse(spec: str, run: Path, by_layer: dict) -> list[int]:
    from .layers import parse_layers

    num, default = max(by_layer), None
    try:
        meta = json.loads((run / "run.json").read_text())
        num, default = int(meta["num_layers"]), int(meta["default_layer"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if default is None and "default" in str(spec).lower():
        raise UserError(f"--layers {spec}: {run} has no run.json saying which layer is the default; give numbers")
    wanted = parse_layers(spec, num, default if default is not None else num)
    missing = [l for l in wanted if l not in by_layer]
    if missing:
        raise UserError(f"--layers {spec}: layer {missing[0]} was not scanned in {run} (its metrics have layers "
                        f"{_ranges(sorted(by_layer))}); scan it first or check other layers")
    return wanted


def _ranges(xs: list[int]) -> str:
    out, start = [], None
    for i, x in enumerate(xs):
        if start is None:
            start = x
        if i + 1 == len(xs) or xs[i + 1] != x + 1:
            out.append(f"{start}" if start == x else f"{start}-{x}")
            start = None
    return ",".join(out)


def format_check(ok: bool, rows: list[dict], max_asr: float, *, point: bool = False) -> str:
    what = "ASR" if point else "upper 95% bound of ASR"
    if ok:
        worst = max(rows, key=lambda r: r["value"])
        return (f"check passed: {len(rows)} layers, every {what} <= {max_asr:g} "
                f"(highest {worst['value']:.3f} at layer {worst['layer']})")
    bad = [r for r in rows if not r["passed"]]
    lines = [f"check FAILED: {len(bad)} of {len(rows)} layers have {what} > {max_asr:g}",
             "layer    n    ASR   95% CI            why"]
    for r in bad:
        ci = f"[{r['asr_ci_low']:.3f}, {r['asr_ci_high']:.3f}]" if not math.isnan(r["asr_ci_high"]) else "-"
        asr = f"{r['asr']:.3f}" if not math.isnan(r["asr"]) else "  -  "
        lines.append(f"{r['layer']:>5} {r['n']:>4}  {asr}  {ci:<16}  {r['reason']}")
    return "\n".join(lines)
