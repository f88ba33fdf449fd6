"""benchmarks/bench_judge.py plumbing on the CPU with a tiny Llama of Llama Guard 3's structure:
all ways of reading P(unsafe) agree (whole rows, shared prefix reused, generate), the FLOP count is
the formula's, the JSON has its fields."""

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


def test_rows_share_the_template(bench):
    rows = bench.make_rows(5, 512, seed=1, template=60, prefix=40)
    assert [len(r) for r in rows] == bench.lengths(5, seed=1, template=60)
    assert all(r[:40] == rows[0][:40] and r[-20:] == rows[0][-20:] for r in rows)
    assert len({r[40] for r in rows}) > 1  # the rows part right after the shared prefix


def test_tiny_run_forward_equals_generate(bench, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert bench.main(["--shape", "tiny", "--device", "cpu", "--dtype", "float32", "--n", "6", "--generate-n", "4",
                       "--batch-size", "2", "--prefix-batch-sizes", "1,4", "--max-new-tokens", "2",
                       "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == res
    assert res["max_abs_diff"] < 1e-5 and res["max_rel_diff"] < 1e-3  # one forward = generate's first step
    assert res["generate"]["generated_tokens"] == 4 * 2
    assert res["forward"]["responses_per_s"] > 0 and 0 <= res["forward"]["padding_share"] < 1
    assert res["gemm_tflops"] is None and res["forward"]["fraction_of_gemm"] is None  # CPU: no GPU limit
    assert res["sweep_minutes_forward"] == pytest.approx(72500 / res["forward"]["responses_per_s"] / 60, rel=0.02)
    # prefix=auto: the 40 shared tokens run once; each row's rest gives the same P(unsafe) and top token
    assert [e["batch_size"] for e in res["forward_prefix"]] == [1, 4]
    for e in res["forward_prefix"]:
        assert e["prefix_tokens"] == bench.TINY_PREFIX and e["max_abs_diff_vs_off"] < 1e-5 and e["same_top_token_share"] == 1
        assert e["computed_tokens_per_row_mean"] == pytest.approx(res["tokens_per_row_mean"] - bench.TINY_PREFIX, abs=0.1)
        assert e["kv_copy_ms_per_batch"] > 0 and e["fraction_of_gemm"] is None and e["equivalent_fraction_of_gemm"] is None
        assert e["sweep_minutes"] == pytest.approx(72500 / e["responses_per_s"] / 60, rel=0.02)
    assert res["forward_prefix"][0]["padding_share"] == 0  # batch 1: no padding
    assert res["sweep_minutes_forward_prefix"] == min(e["sweep_minutes"] for e in res["forward_prefix"])


def test_flop_count(bench):
    model = bench.build_model("tiny", "cpu", "float32")
    blocks, head = bench.count_params(model)
    c = model.config
    assert head == c.vocab_size * c.hidden_size
    # 2 sequences of 10 and 20 real tokens, the lm_head on one position each
    expect = 2 * blocks * 30 + 2 * (100 + 400) * c.hidden_size * c.num_hidden_layers + 2 * head * 2
    assert bench.forward_flops(model, [10, 20], 1) == expect
    # 4 tokens already cached: 6 + 16 tokens run, attention of those queries over all earlier keys
    cached = 2 * blocks * 22 + 2 * (100 - 16 + 400 - 16) * c.hidden_size * c.num_hidden_layers + 2 * head * 2
    assert bench.forward_flops(model, [10, 20], 1, cached=4) == cached
    # one row: its prefix run alone plus its rest against the cache = the whole row
    assert bench.forward_flops(model, [8], 0) + bench.forward_flops(model, [20], 1, cached=8) == bench.forward_flops(model, [20], 1)


def test_bad_options_exit_2(bench):
    with pytest.raises(SystemExit) as e:
        bench.main(["--shape", "tiny", "--n", "2", "--generate-n", "5"])
    assert e.value.code == 2
    for bad in ("64,x", "0"):
        with pytest.raises(SystemExit) as e:
            bench.main(["--shape", "tiny", "--n", "2", "--prefix-batch-sizes", bad])
        assert e.value.code == 2


def test_tiny_run_fuse_both(bench, tmp_path, monkeypatch):
    """--fuse both: the forward paths again through fuse.py's compiled kernels (fp32: the same
    P(unsafe) within 1e-5), reported beside the unfused ones with their speed ratios."""
    import torch
    from test_fuse import _counting

    torch.set_num_threads(1)  # 2 shared cores
    calls = _counting(monkeypatch)  # the fused run really runs the compiled functions
    out = tmp_path / "f.json"
    assert bench.main(["--shape", "tiny", "--device", "cpu", "--dtype", "float32", "--n", "6", "--generate-n", "2",
                       "--batch-size", "3", "--prefix-batch-sizes", "2", "--max-new-tokens", "2", "--fuse", "both",
                       "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    L = 2  # tiny: 2 layers; each forward runs the first input norm alone, then 2 norms a layer (the
    # last one the final norm) fused with the residual add before each, one MLP and rotary a layer
    # whole rows: warm-up 1 batch + 2 timed; prefix: warm-up (prefix pass + 1 batch) + prefix pass + 3 batches
    forwards = 1 + 2 + 2 + 1 + 3
    assert calls == {("rms_norm", True): forwards, ("add_rms_norm", True): forwards * 2 * L,
                     ("silu_mul", True): forwards * L, ("rotary", True): forwards * L}
    assert res["forward"]["fuse"] == "off" and res["forward_fused"]["fuse"] == "on"
    assert [e["fuse"] for e in res["forward_prefix"] + res["forward_prefix_fused"]] == ["off", "on"]
    on = res["forward_prefix_fused"][0]
    assert on["batch_size"] == 2 and on["prefix_tokens"] == bench.TINY_PREFIX and on["max_abs_diff_vs_off"] < 1e-5
    assert on["fraction_of_gemm"] is None and "kv_copy_ms_per_batch" not in on  # CPU; copies timed unfused only
    assert 0 <= res["max_abs_diff_fused_vs_unfused"] < 1e-5
    assert set(res["max_abs_diff_fused_vs_unfused_by_path"]) == set(res["fused_speedup"]) == {"whole", "prefix_bs2"}
    assert res["fused_speedup"]["whole"] == pytest.approx(
        res["forward_fused"]["responses_per_s"] / res["forward"]["responses_per_s"], rel=0.01)
    assert res["max_abs_diff"] < 1e-5  # generate (unfused) against the unfused whole rows


def test_bad_fuse_exits_2(bench, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--shape", "tiny", "--n", "2", "--fuse", "yes"])
    assert e.value.code == 2 and "invalid choice: 'yes'" in capsys.readouterr().err
