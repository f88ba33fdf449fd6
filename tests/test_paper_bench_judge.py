"""benchmarks/bench_judge.py plumbing on the CPU with a tiny Llama of Llama Guard 3's structure:
both ways of reading P(unsafe) agree, the FLOP count is the formula's, the JSON has its fields."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_judge.py"
    spec = importlib.util.spec_from_file_location("bench_judge", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lengths_follow_the_sweep(bench):
    ls = bench.lengths(500, seed=0)
    assert min(ls) >= bench.TEMPLATE_TOKENS + 11 and max(ls) <= bench.TEMPLATE_TOKENS + 124
    assert bench.lengths(5, seed=3) == bench.lengths(5, seed=3)


def test_tiny_run_forward_equals_generate(bench, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert bench.main(["--shape", "tiny", "--device", "cpu", "--dtype", "float32", "--n", "6", "--generate-n", "4",
                       "--batch-size", "2", "--max-new-tokens", "2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == res
    assert res["max_abs_diff"] < 1e-5 and res["max_rel_diff"] < 1e-3  # one forward = generate's first step
    assert res["generate"]["generated_tokens"] == 4 * 2
    assert res["forward"]["responses_per_s"] > 0 and 0 <= res["forward"]["padding_share"] < 1
    assert res["gemm_tflops"] is None and res["forward"]["fraction_of_gemm"] is None  # CPU: no GPU limit
    assert res["sweep_minutes_forward"] == pytest.approx(72500 / res["forward"]["responses_per_s"] / 60, rel=0.02)


def test_flop_count(bench):
    model = bench.build_model("tiny", "cpu", "float32")
    blocks, head = bench.count_params(model)
    c = model.config
    assert head == c.vocab_size * c.hidden_size
    # 2 sequences of 10 and 20 real tokens, the lm_head on one position each
    expect = 2 * blocks * 30 + 2 * (100 + 400) * c.hidden_size * c.num_hidden_layers + 2 * head * 2
    assert bench.forward_flops(model, [10, 20], 1) == expect


def test_bad_options_exit_2(bench):
    with pytest.raises(SystemExit) as e:
        bench.main(["--shape", "tiny", "--n", "2", "--generate-n", "5"])
    assert e.value.code == 2
