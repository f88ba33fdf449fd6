"""The scan's generate-call timing in run.json (median seconds per row + warm-up excess), which the
paper-sweep benchmark extrapolates from without scaling a subset's compile and graph capture."""

import pytest

from layersafe.timing import call_timing


def test_call_timing_splits_rate_and_warmup():
    # 4 full calls at 0.1 s/row, the first with 5 s of compile, a partial last one with 1 s of capture
    calls = [(10, 6.0), (10, 1.0), (10, 1.0), (10, 1.0), (4, 1.4)]
    t = call_timing(calls)
    assert t["generate_calls"] == 5 and t["generate_seconds"] == pytest.approx(10.4)
    assert t["median_row_seconds"] == pytest.approx(0.1)
    assert t["warmup_seconds"] == pytest.approx(5.0 + 1.0)
    # rows x median + warm-up gives back the measured time (no call faster than the median here)
    assert 44 * t["median_row_seconds"] + t["warmup_seconds"] == pytest.approx(t["generate_seconds"])
    assert call_timing([]) == {"generate_calls": 0, "generate_seconds": 0.0, "median_row_seconds": None,
                               "warmup_seconds": 0.0}


def test_scan_records_call_timing(tiny_adapter, tmp_path):
    from layersafe.scan.engine import ScanConfig, run_scan

    cfg = ScanConfig(model="tiny", dataset="custom-prompts", limit=3, layers="1,2", out=str(tmp_path / "s"),
                     max_new_tokens=4, batch_size=4, judges=[])
    st = run_scan(cfg, adapter=tiny_adapter, progress=False, log=lambda m: None)["stats"]
    assert st["generate_calls"] == 2  # 6 pairs in calls of 4 and 2
    assert 0 < st["generate_seconds"] <= st["seconds"]
    assert st["median_row_seconds"] > 0 and st["warmup_seconds"] >= 0


def test_judge_rows_records_call_timing():
    from layersafe.judges.runner import judge_rows

    rows = [{"prompt": "p", "response": r} for r in ["I cannot help with that.", "Sure, here it is.", "No.",
                                                       "Here are the steps.", "I'm sorry, but I can't."]]
    counts = judge_rows(rows, ["refusal"], batch_size=2, progress=False, log=None)
    t = counts["timing"]["refusal"]
    assert t["judge_calls"] == 3 and t["judge_seconds"] >= 0 and t["median_row_seconds"] >= 0
    assert all("refusal" in r["scores"] for r in rows)
