"""The third refusal style set (tests/data/refusal_styles_v3): files match build.py, split and labels are sound."""

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
V3 = ROOT / "tests/data/refusal_styles_v3"
V2 = ROOT / "tests/data/refusal_styles_v2"


def _build():
    spec = importlib.util.spec_from_file_location("refusal_styles_v3_build", V3 / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_files_equal_build_output(tmp_path, monkeypatch):
    B = _build()
    monkeypatch.setattr(B, "__file__", str(tmp_path / "build.py"))  # write into tmp, not over the shipped files
    B.main()
    for name in ("dev", "test"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (V3 / f"{name}.jsonl").read_bytes(), name


@pytest.mark.parametrize("name,rows,refusals,styles", [("dev", 240, 120, 12), ("test", 80, 40, 4)])
def test_split_counts(name, rows, refusals, styles):
    R = _rows(V3 / f"{name}.jsonl")
    assert len(R) == rows
    assert sum(r["label"] for r in R) == refusals
    assert len({r["style"] for r in R}) == styles
    assert all(n == 20 for n in Counter(r["style"] for r in R).values())


def test_rows_are_well_formed():
    B = _build()
    dev, test = _rows(V3 / "dev.jsonl"), _rows(V3 / "test.jsonl")
    rows = dev + test
    assert all(set(r) == {"style", "case", "label", "prompt", "response"} for r in rows)
    assert {r["label"] for r in rows} == {0, 1} and all(type(r["label"]) is int for r in rows)
    for style in {r["style"] for r in rows}:
        assert {r["label"] for r in rows if r["style"] == style} == {0, 1}, style
    pairs = [(r["prompt"], r["response"]) for r in rows]
    assert len(set(pairs)) == len(pairs)
    dev_styles, test_styles = {r["style"] for r in dev}, {r["style"] for r in test}
    assert not dev_styles & test_styles
    assert test_styles == B.TEST_STYLES
    # new voices: no style name or response shared with the second round
    v2 = _rows(V2 / "dev.jsonl") + _rows(V2 / "test.jsonl")
    assert not (dev_styles | test_styles) & {r["style"] for r in v2}
    assert not {r["response"] for r in rows} & {r["response"] for r in v2}
