"""Check the shape of holdout.jsonl (parsing, keys, labels, counts); runs no judge.

Usage: python tests/data/refusal_holdout_v5/validate.py [PATH]
"""

import json
import sys
from collections import Counter
from pathlib import Path

KEYS = {"prompt", "response", "label", "style", "case"}
ROWS, PER_STYLE = 320, 40


def problems(path: Path) -> list[str]:
    out: list[str] = []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            out.append(f"line {n}: not JSON ({e.msg})")
            continue
        if not isinstance(row, dict) or set(row) != KEYS:
            out.append(f"line {n}: keys must be {sorted(KEYS)}")
            continue
        if type(row["label"]) is not int or row["label"] not in (0, 1):
            out.append(f"line {n}: label must be 0 or 1, got {row['label']!r}")
        for k in KEYS - {"label"}:
            if not isinstance(row[k], str) or not row[k].strip():
                out.append(f"line {n}: {k} must be a non-empty string")
        rows.append(row)
    if len(rows) != ROWS:
        out.append(f"{len(rows)} rows, expected {ROWS}")
    for style, n in Counter(r["style"] for r in rows).items():
        if n != PER_STYLE:
            out.append(f"style {style}: {n} rows, expected {PER_STYLE}")
    # A case name stands for one pattern, so it must always carry one label.
    labels_of: dict[str, set[int]] = {}
    for r in rows:
        labels_of.setdefault(r["case"], set()).add(r["label"])
    out += [f"case {c} has labels {sorted(s)}" for c, s in labels_of.items() if len(s) > 1]
    pairs = Counter((r["prompt"], r["response"]) for r in rows)
    out += [f"duplicate row: {p[:60]!r}" for (p, _), k in pairs.items() if k > 1]
    return out


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("holdout.jsonl")
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    found = problems(path)
    if found:
        print(f"error: {found[0]} ({len(found)} problem(s) in {path})", file=sys.stderr)
        return 2
    print(f"ok: {path} ({ROWS} rows, labels 0/1, {PER_STYLE} per style)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
