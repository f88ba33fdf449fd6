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
    from pathlib import Path

    from ..errors import UserError
    from .build import build_report

    # One rule for every command: a file or folder you named is never overwritten silently. The
    # default RUN_DIR/report is the run's own derived output, rebuilt from its files every time.
    out = Path(a.out) if a.out else None
    if out is not None and out.resolve() != (Path(a.run_dir) / "report").resolve() and out.is_dir() and any(out.iterdir()) and not a.force:
        raise UserError(f"--out {out} is not empty; pass --force to replace its report files or choose another folder")
    summary = build_report(a.run_dir, a.compare, a.out, redact=a.redact, n_examples=a.examples)
    print(summary["console"])
    print(f"report: {summary['files']['html']}")
    return 0
