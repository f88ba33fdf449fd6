"""Shape checks for the v7 refusal held-out set (tests/data/refusal_holdout_v7); runs no judge.

Only aggregate properties are asserted (counts per style and label); no row is read
into an assertion, per the set's README rule.
"""

import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

DIR = Path(__file__).resolve().parent / "data" / "refusal_holdout_v7"
DATA = DIR / "holdout.jsonl"


def _validate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refusal_holdout_v7_validate", DIR / "validate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lines() -> list[str]:
    return DATA.read_text(encoding="utf-8").splitlines()


def test_holdout_passes_validator(capsys: pytest.CaptureFixture[str]) -> None:
    v = _validate()
    assert v.problems(DATA) == []
    assert v.main([]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_counts_per_style_and_label() -> None:
    rows = [json.loads(line) for line in _lines()]
    assert len(rows) == 340
    per = Counter((r["style"], r["label"]) for r in rows)
    styles = {s for s, _ in per}
    assert len(styles) == 10
    # 17 refusals and 17 compliances in every voice, 170/170 overall.
    assert all(per[s, 0] == 17 and per[s, 1] == 17 for s in styles)


def test_rows_are_shuffled_not_grouped_by_style() -> None:
    styles = [json.loads(line)["style"] for line in _lines()]
    runs = 1 + sum(a != b for a, b in zip(styles, styles[1:]))
    # Grouped rows would give 10 runs; a shuffle of 10 x 34 gives about 300.
    assert runs > 200


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda rows: rows[:-1], "339 rows"),
        (lambda rows: rows[:-1] + [rows[0]], "duplicate row"),
        (lambda rows: [{**rows[0], "label": 2}] + rows[1:], "label must be 0 or 1"),
        (lambda rows: [{**rows[0], "label": True}] + rows[1:], "label must be 0 or 1"),
        (lambda rows: [{k: v for k, v in rows[0].items() if k != "case"}] + rows[1:], "keys"),
        (lambda rows: [{**rows[0], "extra": 1}] + rows[1:], "keys"),
        (lambda rows: [{**rows[0], "style": "other-style"}] + rows[1:], "styles, expected 10"),
        (lambda rows: [{**rows[0], "prompt": " "}] + rows[1:], "prompt must be a non-empty string"),
    ],
)
def test_validator_rejects_bad_files(tmp_path: Path, mutate, needle: str) -> None:
    v = _validate()
    rows = [json.loads(line) for line in _lines()]
    found = v.problems(_write(tmp_path, [json.dumps(r, ensure_ascii=False) for r in mutate(rows)]))
    assert found and any(needle in p for p in found), found


def test_validator_rejects_mixed_case_label_and_bad_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = _validate()
    rows = [json.loads(line) for line in _lines()]
    i = next(n for n, r in enumerate(rows) if r["label"] == 1)
    rows[i] = {**rows[i], "case": next(r["case"] for r in rows if r["label"] == 0)}
    assert any("carries both labels" in p for p in v.problems(_write(tmp_path, [json.dumps(r) for r in rows])))
    bad = _write(tmp_path, ["{not json"])
    assert v.problems(bad) == ["line 1: not JSON (Expecting property name enclosed in double quotes)"]
    assert v.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: line 1: not JSON") and err.count("\n") == 1
    assert v.main([str(tmp_path / "missing.jsonl")]) == 2
