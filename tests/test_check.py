"""`layersafe check RUN_DIR --max-asr X`: the release gate on per-layer ASR (docs/trim.md)."""

from __future__ import annotations

import json

import pytest

from layersafe.check import check_run
from layersafe.cli import main


def make_run(folder, per_layer: dict[int, tuple[int, int]], *, llamaguard: dict | None = None, num_layers=12,
             default_layer=11):
    """A judged run folder whose metrics.csv comes from the real aggregation: layer -> (complied, n)
    harmful rows judged by the refusal judge (and optionally Llama Guard verdicts)."""
    from layersafe.metrics import per_layer_metrics, write_metrics_csv

    rows = []
    for layer, (k, n) in per_layer.items():
        for i in range(n):
            complied = i < k
            scores = {"refusal": 0 if complied else 1, "refusal_outcome": "complied" if complied else "refused"}
            if llamaguard is not None:
                scores["llamaguard"] = 1 if i < llamaguard[layer] else 0
            rows.append({"sample_id": f"s{i}", "layer": layer, "harmful": True, "response": "x", "error": None,
                         "scores": scores})
    folder.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(folder / "metrics.csv", per_layer_metrics(rows))
    (folder / "run.json").write_text(json.dumps({"num_layers": num_layers, "default_layer": default_layer,
                                                 "layers": sorted(per_layer)}))
    return folder


def test_pass_uses_the_upper_bound_by_default(tmp_path, capsys):
    run = make_run(tmp_path / "r", {6: (0, 100), 11: (1, 100)})
    ok, rows = check_run(run, 0.06)
    assert ok and [r["layer"] for r in rows] == [6, 11] and all(r["passed"] for r in rows)
    assert rows[1]["value"] == pytest.approx(rows[1]["asr_ci_high"]) and rows[1]["asr"] == pytest.approx(0.01)
    assert main(["check", str(run), "--max-asr", "0.06"]) == 0
    assert "check passed: 2 layers" in capsys.readouterr().out
    # 1/100 complied: point 0.01 but upper bound ~0.054 > 0.05 -> fails; --point passes
    assert main(["check", str(run), "--max-asr", "0.05"]) == 1
    out = capsys.readouterr().out
    assert "check FAILED: 1 of 2 layers" in out and "   11  100  0.010" in out and "   6 " not in out
    assert main(["check", str(run), "--max-asr", "0.05", "--point"]) == 0


def test_failing_layers_table_and_layer_selection(tmp_path, capsys):
    run = make_run(tmp_path / "r", {2: (40, 50), 6: (10, 50), 11: (0, 50)})
    assert main(["check", str(run), "--max-asr", "0.1"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("check FAILED: 2 of 3 layers")
    assert [line.split()[0] for line in out[2:]] == ["2", "6"]
    assert main(["check", str(run), "--max-asr", "0.1", "--layers", "default"]) == 0  # 11 from run.json
    assert main(["check", str(run), "--max-asr", "0.3", "--layers", "6,11", "--point"]) == 0
    assert check_run(run, 0.3, layers=[6, 11], point=True)[0]
    ok, rows = check_run(run, 0.3, layers="2,6")
    assert not ok and [r["passed"] for r in rows] == [False, False]  # 6: 0.2 point, upper bound ~0.33


def test_judge_columns(tmp_path, capsys):
    run = make_run(tmp_path / "r", {3: (30, 30), 11: (0, 30)}, llamaguard={3: 0, 11: 0})
    assert not check_run(run, 0.2)[0]  # the headline ASR is the refusal judge's
    assert not check_run(run, 0.2, judge="refusal")[0]
    ok, rows = check_run(run, 0.2, judge="llamaguard")
    assert ok and rows[0]["n"] == 30
    assert main(["check", str(run), "--max-asr", "0.2", "--judge", "toxicity"]) == 2
    assert "judges in this run: llamaguard, refusal" in capsys.readouterr().err


def test_layer_without_judged_rows_fails_closed(tmp_path):
    run = make_run(tmp_path / "r", {3: (0, 20)})
    text = (run / "metrics.csv").read_text().splitlines()
    # a layer whose rows all failed: n = 0, asr empty
    header = text[0].split(",")
    empty = {"layer": "4", "n": "0", "n_errors": "5"}
    text.append(",".join(empty.get(h, "") for h in header))
    (run / "metrics.csv").write_text("\n".join(text) + "\n")
    ok, rows = check_run(run, 0.5)
    assert not ok and rows[1]["reason"] == "no judged harmful rows at this layer"


@pytest.mark.parametrize("args,message", [
    (["MISSING", "--max-asr", "0.1"], "run folder not found"),
    (["EMPTY", "--max-asr", "0.1"], "has no metrics.csv"),
    (["RUN", "--max-asr", "1.5"], "--max-asr must be at most 1"),
    (["RUN", "--max-asr", "nan"], "--max-asr must be a finite number"),
    (["RUN"], "--max-asr"),
    (["RUN", "--max-asr", "0.1", "--layers", "5"], "layer 5 was not scanned"),
    (["RUN", "--max-asr", "0.1", "--layers", "40"], "out of range"),
])
def test_bad_input_one_line_exit_2(args, message, tmp_path, capsys):
    run = make_run(tmp_path / "run", {3: (0, 10), 11: (0, 10)})
    (tmp_path / "empty").mkdir()
    subs = {"MISSING": str(tmp_path / "missing"), "EMPTY": str(tmp_path / "empty"), "RUN": str(run)}
    before = sorted(p.name for p in run.iterdir())
    assert main(["check", *[subs.get(a, a) for a in args]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in run.iterdir()) == before


def test_on_a_real_scan(tmp_path, capsys):
    """End to end: a judged scan of the tiny random LLaVA (random text: complied) fails a strict gate
    and passes --max-asr 1."""
    out = tmp_path / "scan"
    assert main(["scan", "--out", str(out), "--layers", "2,default", "--limit", "4", "--max-new-tokens", "4",
                 "--no-report", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["check", str(out), "--max-asr", "1"]) == 0
    assert main(["check", str(out), "--max-asr", "0", "--point", "--layers", "default"]) in (0, 1)
    ok, rows = check_run(out, 1.0, layers="2")
    assert ok and rows[0]["layer"] == 2 and rows[0]["n"] > 0


def test_bad_gate_options_are_one_line_exit_2(tmp_path, capsys):
    """A gate given 'none' as its bound, or a table without the default asr column, is bad input
    (exit 2, one line), never "check FAILED" (1) nor an internal error."""
    run = make_run(tmp_path / "r", {2: (1, 50)})
    assert main(["check", str(run), "--max-asr", "none"]) == 2
    err = capsys.readouterr().err
    assert "--max-asr is required, not 'none'" in err and "internal error" not in err
    table = (run / "metrics.csv").read_text().replace("asr", "asr_llamaguard")
    (run / "metrics.csv").write_text(table)
    assert main(["check", str(run), "--max-asr", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--judge None" not in err and "has no asr column" in err and err.endswith("pass --judge NAME"), err
