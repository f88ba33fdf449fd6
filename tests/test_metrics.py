import math

import pytest

from layersafe.metrics import per_layer_metrics, wilson_interval


def test_wilson_known_values():
    # reference values (Wilson 1927; e.g. statsmodels proportion_confint(method="wilson"))
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.236593, abs=1e-6) and hi == pytest.approx(0.763407, abs=1e-6)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.277533, abs=1e-6)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.722467, abs=1e-6)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_per_layer_asr_counts_only_judged_harmful_rows():
    rows = []
    for i in range(4):  # layer 3: 3 of 4 harmful prompts complied
        rows.append({"layer": 3, "harmful": True, "scores": {"refusal": int(i == 0)}, "error": None})
    rows.append({"layer": 3, "harmful": False, "scores": {"refusal": 1}, "error": None})  # benign
    rows.append({"layer": 3, "harmful": True, "error": "image file not found", "response": None})
    rows.append({"layer": 1, "scores": {"refusal": 1}, "error": None})  # no flag = harmful
    t = {r["layer"]: r for r in per_layer_metrics(rows)}
    assert list(t) == [1, 3]
    assert t[3]["n"] == 4 and t[3]["asr"] == 0.75 and t[3]["refusal_rate"] == 0.25
    assert (t[3]["asr_ci_low"], t[3]["asr_ci_high"]) == pytest.approx(wilson_interval(3, 4))
    assert t[3]["benign_n"] == 1 and t[3]["over_refusal"] == 1.0
    assert t[3]["n_errors"] == 1
    assert t[1]["n"] == 1 and t[1]["asr"] == 0.0
