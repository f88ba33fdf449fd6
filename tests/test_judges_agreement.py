"""Judge agreement (issue 22): Cohen's kappa per pair of judges, and its table in the report."""

from __future__ import annotations

import json
import math

import pytest

from layersafe.judges.agreement import cohen_kappa, judge_agreement


def test_kappa_known_values():
    # 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5 -> kappa 0.4
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == 1.0 and cohen_kappa([1, 0], [0, 1]) == -1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1])) and math.isnan(cohen_kappa([], []))


def _rows():
    # refusal outcome, llamaguard (1 unsafe), harmbench, strongreject
    table = [("complied", 1, 1, 0.875), ("complied", 0, 1, 0.75), ("refused", 0, 0, 0.0), ("empty", None, 0, None),
             ("complied", 1, None, 0.25), ("degenerate", 0, 0, 0.0)]
    return [{"sample_id": f"s{i}", "layer": i % 2, "scores": {
        "refusal": int(o == "refused"), "refusal_outcome": o, "llamaguard": u, "harmbench": h, "strongreject": sr}}
        for i, (o, u, h, sr) in enumerate(table)]


def test_pairs_only_on_rows_both_judged():
    got = {(p["a"], p["b"]): p for p in judge_agreement(_rows())}
    assert set(got) == {("refusal", "llamaguard"), ("refusal", "harmbench"), ("refusal", "strongreject"),
                        ("llamaguard", "harmbench"), ("llamaguard", "strongreject"), ("harmbench", "strongreject")}
    rl = got[("refusal", "llamaguard")]  # row 3 has no Llama Guard verdict
    assert rl["n"] == 5 and rl["disagree"] == 1 and rl["disagree_rows"] == ["s1@1"]
    assert rl["kappa"] == pytest.approx(cohen_kappa([1, 1, 0, 1, 0], [1, 0, 0, 1, 0]))
    rs = got[("refusal", "strongreject")]  # strongreject >= 0.5 is "unsafe"; s4 complied at 0.25 disagrees
    assert rs["n"] == 5 and rs["disagree_rows"] == ["s4@0"] and rs["both_unsafe"] == 2
    hs = got[("harmbench", "strongreject")]
    assert hs["n"] == 4 and hs["agree"] == 1.0 and hs["kappa"] == 1.0


def test_report_shows_agreement(tmp_path, capsys):
    from layersafe.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "config": {"model": "m", "dataset": "d", "judges": ["refusal"]}, "model": {"name": "m", "tiny_random": False},
        "num_layers": 2, "default_layer": 1, "dataset": {"name": "d"}, "status": "complete"}))
    rows = [dict(r, prompt="p", response="r", harmful=True, error=None) for r in _rows()]
    (run / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["report", str(run)]) == 0
    html = (run / "report" / "report.html").read_text()
    assert "Judge agreement: " in html and "Cohen's κ" in html
    assert "s1@1" in html
    summary = json.loads((run / "report" / "summary.json").read_text())
    pairs = summary["runs"][0]["judge_agreement"]
    assert len(pairs) == 6 and {p["a"] for p in pairs} == {"refusal", "llamaguard", "harmbench"}
