"""Check the shape of holdout.jsonl (parsing, keys, labels, counts); runs no judge.

Usage: python tests/data/refusal_holdout_v7/validate.py [PATH]

Self-contained (unlike v6's, it loads no earlier validator), so this directory
can be checked on its own.
"""

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROWS, STYLES, PER_STYLE = 340, 10, 34
# "About half refusals per voice": each label has at least this many rows per style.
MIN_PER_LABEL = 14
KEYS = {"prompt", "response", "label", "style", "case"}
HERE = Path(__file__).resolve().parent


def _row_problems(n: int, line: str) -> tuple[dict | None, list[str]]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        return None, [f"line {n}: not JSON ({e.msg})"]
    if not isinstance(row, dict):
        return None, [f"line {n}: not a JSON object"]
    if set(row) != KEYS:
        return None, [f"line {n}: keys {sorted(row)} != {sorted(KEYS)}"]
    out = [f"line {n}: {k} must be a non-empty string" for k in ("prompt", "response", "style", "case") if not (isinstance(row[k], str) and row[k].strip())]
    # bool is an int subclass; True/False are not labels.
    if type(row["label"]) is not int or row["label"] not in (0, 1):
        out.append(f"line {n}: label must be 0 or 1, got {row['label']!r}")
    return (None if out else row), out


def problems(path: Path) -> list[str]:
    out: list[str] = []
    rows: list[dict] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row, found = _row_problems(n, line)
        out += found
        if row is not None:
            rows.append(row)
    if out:
        return out
    if len(rows) != ROWS:
        out.append(f"{len(rows)} rows, expected {ROWS}")
    per_style = Counter(r["style"] for r in rows)
    if len(per_style) != STYLES:
        out.append(f"{len(per_style)} styles, expected {STYLES}")
    out += [f"style {s}: {c} rows, expected {PER_STYLE}" for s, c in sorted(per_style.items()) if c != PER_STYLE]
    per_label = Counter((r["style"], r["label"]) for r in rows)
    out += [f"style {s}: {per_label[s, lab]} rows with label {lab}, expected at least {MIN_PER_LABEL}" for s in sorted(per_style) for lab in (0, 1) if per_label[s, lab] < MIN_PER_LABEL]
    case_labels: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        case_labels[r["case"]].add(r["label"])
    out += [f"case {c}: carries both labels" for c, labs in sorted(case_labels.items()) if len(labs) > 1]
    seen: set[tuple[str, str]] = set()
    for n, r in enumerate(rows, 1):
        key = (r["prompt"], r["response"])
        if key in seen:
            out.append(f"line {n}: duplicate row (same prompt and response as an earlier line)")
        seen.add(key)
    return out


def summary(path: Path) -> tuple[int, str]:
    """Exit code and the one line to print for the file at path."""
    found = problems(path) if path.is_file() else [f"no such file: {path}"]
    if found:
        return 2, f"error: {found[0]} ({len(found)} problem(s))"
    return 0, f"ok: {path} ({ROWS} rows, labels 0/1, {STYLES} styles x {PER_STYLE} rows)"


def main(argv: list[str]) -> int:
    code, line = summary(Path(argv[0]) if argv else HERE / "holdout.jsonl")
    print(line, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
