"""Check the shape of holdout.jsonl (parsing, keys, labels, counts); runs no judge.

Usage: python tests/data/refusal_holdout_v6/validate.py [PATH]

The row checks are v5's validator (loaded from its file, not copied) run with
v6's counts, plus one v6 check: the image voice's prompts start with <image>.
"""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROWS, PER_STYLE = 340, 34
HERE = Path(__file__).resolve().parent


def _v5() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refusal_holdout_v5_validate", HERE.parent / "refusal_holdout_v5" / "validate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # v5's problems() reads these module globals at call time.
    mod.ROWS, mod.PER_STYLE = ROWS, PER_STYLE
    return mod


def problems(path: Path) -> list[str]:
    v5 = _v5()
    out: list[str] = v5.problems(path)
    if out:
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        if row["style"].startswith("vlm-") and not row["prompt"].startswith("<image>"):
            out.append(f"line {n}: style {row['style']}: prompt must start with <image>")
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else HERE / "holdout.jsonl"
    found = problems(path) if path.is_file() else [f"no such file: {path}"]
    ok = f"ok: {path} ({ROWS} rows, labels 0/1, {PER_STYLE} per style, <image> prompts)"
    bad = f"error: {found[0]} ({len(found)} problem(s))" if found else ""
    print(bad or ok, file=sys.stderr if found else sys.stdout)
    return 2 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
