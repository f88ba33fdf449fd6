"""benchmarks/bench_paper_sweep.py on the CPU with tiny models (the plumbing of the H200 run): the real
`layersafe paper` runs on a subset, paper.json records each stage's wall time, and the JSON's
extrapolation adds up."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_paper_sweep.py"


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    work = tmp_path_factory.mktemp("sweep")
    out = work / "sweep.json"
    r = _run("--preset", "tiny", "--device", "cpu", "--limit", "1", "--layers", "0,6", "--work", str(work / "w"),
             "--json", str(out))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text()), work / "w"


def test_paper_records_stage_times(sweep):
    _, work = sweep
    state = json.loads((work / "run" / "paper.json").read_text())
    assert state["status"] == "complete" and state["load_model_seconds"] > 0 and state["tables_seconds"] > 0
    stages = state["stages"]
    assert len(stages) == 4 * 3  # scan + Llama Guard + reward model, per set
    assert all(s["seconds"] > 0 for s in stages.values())
    assert [stages[f"scan:{s}"]["generated"] for s in ("RT", "MR", "AC", "CP")] == [2] * 4  # 1 prompt x 2 layers


def test_sweep_json_is_sane(sweep):
    res, _ = sweep
    assert "error" not in res
    n_layers = 7  # the tiny LLaVA's 6 blocks + embeddings: what --layers all scans
    assert res["full_sweep"]["layers"] == n_layers
    assert res["full_sweep"]["rows"] == {"RT": 2000 * 7, "MR": 280 * 7, "AC": 520 * 7, "CP": 100 * 7}
    assert res["subset"]["max_new_tokens"] == {"RT": 64, "MR": 64, "AC": 64, "CP": 64}  # the Task registry's
    st = res["stages"]
    for name in ("scan", "llamaguard", "reward"):
        s = st[name]
        assert s["rows"] == 8 and s["full_rows"] == res["full_sweep"]["total_rows"] == 20300
        for k in ("measured_s", "rows_per_s", "extrapolated_min"):
            assert math.isfinite(s[k]) and s[k] > 0, (name, k, s[k])
        assert set(s["per_set"]) == {"RT", "MR", "AC", "CP"}
    # random answers run to the full length; the guard is built to answer with a verdict token,
    # so mode=forward decodes nothing (otherwise the figure would be generation's)
    assert all(v["new_tokens_per_row"] == 64.0 for v in st["scan"]["per_set"].values())
    assert st["llamaguard"]["rows_decoded"] == 0 and res["judge_fixed"]["guard_format"] == "lg3"
    # the extrapolation adds up: judge per set = time outside its calls + warm-up + full rows at the
    # calls' median per-row time (paper.json's split of the judge stage)
    spec = next(k for k in res["judge_fixed"] if k.startswith("llamaguard:"))
    jf = res["judge_fixed"][spec]
    assert jf["rows_per_call"] == 2 and jf["process_once_s"] >= 0
    for name in ("llamaguard", "reward"):
        for v in st[name]["per_set"].values():
            assert v["warmup_s"] >= 0 and v["outside_calls_s"] >= 0 and v["steady_rows_per_s"] > 0
            assert v["extrapolated_s"] == pytest.approx(
                v["outside_calls_s"] + v["warmup_s"] + v["full_rows"] / v["steady_rows_per_s"], rel=0.02, abs=0.3)
    # scan per set = its warm-up once + full rows at the steady per-row time of its generate calls
    # (run.json's stats) + the time outside generate scaled by prompts (per image, not per layer)
    per_set = st["scan"]["per_set"].values()
    assert all(v["warmup_s"] >= 0 and v["steady_rows_per_s"] > 0 and v["outside_generate_s"] >= 0 for v in per_set)
    assert [v["samples"] for v in per_set] == [1, 1, 1, 1]
    assert [v["full_samples"] for v in per_set] == [2000, 280, 520, 100]
    scan_s = sum(v["warmup_s"] + v["full_rows"] / v["steady_rows_per_s"]
                 + v["outside_generate_s"] * v["full_samples"] / v["samples"] for v in per_set)
    load = st["scan"]["measured_s"] - sum(v["seconds"] for v in per_set)
    assert st["scan"]["extrapolated_min"] == pytest.approx((scan_s + load) / 60, rel=0.02)
    total = sum(st[k]["extrapolated_min"] for k in ("scan", "llamaguard", "reward"))
    assert res["total_extrapolated_min"] == pytest.approx(total, abs=0.02)
    assert res["within_goal"] == (res["total_extrapolated_min"] <= res["goal_min"] == 30.0)
    assert len(res["assumptions"]) >= 5 and "WORK/" in res["command"] and "--toxicity none" in res["command"]


def test_budget_spent_is_an_error_json():
    r = _run("--preset", "tiny", "--device", "cpu", "--budget", "1", timeout=120)
    assert r.returncode == 1
    res = json.loads(r.stdout)
    assert res["error"] == "model build failed: skipped: --budget spent"
