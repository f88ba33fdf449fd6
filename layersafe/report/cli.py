"""`layersafe report`: build report.html, PNG plots and summary.json from run folders alone."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="plots, layer-group table and one HTML page from a scan's run folder",
        description="Build a report from a run folder alone (run.json + scores.jsonl, or generations.jsonl "
                    "when nothing is judged yet): per-layer curves of every metric with 95 % intervals and the "
                    "default layer marked, the Early/Middle/Late layer-group table (thirds of the encoder "
                    "depth), per-category breakdowns, example responses, and comparisons with other runs. "
                    "Writes report.html (self-contained), one PNG per metric and summary.json.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by `layersafe scan --out`")
    p.add_argument("--compare", action="append", default=[], metavar="OTHER_RUN_DIR",
                   help="another run to overlay and compare with RUN_DIR (e.g. after L-PPO); deltas are "
                        "other - RUN_DIR on matched (sample, layer) pairs; repeatable")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/report, which is rebuilt each time; "
                   "another folder that holds files needs --force)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds files (they are replaced)")
    p.add_argument("--redact", action="store_true",
                   help="hide response text in the HTML (prompts, verdicts and numbers stay), for sharing")
    p.add_argument("--examples", type=int, default=3, metavar="N",
                   help="example responses: the first N samples at every layer (default 3; 0 for none)")
    p.set_defaults(func=cmd_report)


def cmd_report(a) -> int:
    summary = make_report(a.run_dir, a.compare, a.out, force=a.force, redact=a.redact, examples=a.examples)
    print(summary["console"])
    print(f"report: {summary['files']['html']}")
    return 0


def make_report(run_dir, compare=(), out=None, *, force: bool = False, redact: bool = False, examples: int = 3) -> dict:
    """What ``layersafe report`` does (and ``layersafe.report()``): check ``out``, then
    :func:`~layersafe.report.build.build_report`; returns its summary (with ``console``)."""
    from pathlib import Path

    from ..errors import UserError
    from .build import build_report

    # One rule for every command: a file or folder you named is never overwritten silently. The
    # default RUN_DIR/report is the run's own derived output, rebuilt from its files every time.
    out_dir = Path(out) if out else None
    if out_dir is not None and out_dir.resolve() != (Path(run_dir) / "report").resolve() and out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise UserError(f"--out {out_dir} is not empty; pass --force to replace its report files or choose another folder")
    return build_report(run_dir, list(compare), out, redact=redact, n_examples=examples)
