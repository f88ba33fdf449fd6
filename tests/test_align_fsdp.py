"""``layersafe align --shard-model``: the language model's decoder layers sharded over 2 processes
(torchrun, gloo on CPU, torch FSDP2) train the run one process trains with the same global batch,
for L-PPO and distillation, with rollouts decoded on the sharded model (synchronized: the
processes' rows stop at different lengths); a resumed sharded run equals the uninterrupted one."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from test_lppo_multiprocess import _align, _data, _often_stopping_model

# As tests/test_lppo_multiprocess.py (data parallel) and tests/test_sft_fsdp.py: batch-shape-dependent
# matmul rounding (each process decodes and learns on its own rows, padded to its own longest) and
# the reduce order of the sharded gradients; measured values are in the docstrings below.
RTOL, ATOL = 1e-4, 2e-6
W_MAX, W_MEAN = 1e-4, 1e-6
COUNTS = ("response_length", "stop_rate", "refusal_rate_harmful", "refusal_rate_benign")


def _log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _compare_logs(one, two, floats):
    """Counts equal exactly (the same sampled responses), losses within RTOL; returns the worst relative gap."""
    assert [r["step"] for r in one] == [r["step"] for r in two] and one
    for r1, r2 in zip(one, two):
        for k in COUNTS:
            assert r1[k] == r2[k], (r1["step"], k, r1[k], r2[k])
        for k in floats:
            assert r1[k] == pytest.approx(r2[k], rel=RTOL, abs=ATOL), (r1["step"], k, r1[k], r2[k])
    return max(abs(r1[k] - r2[k]) / abs(r1[k]) for r1, r2 in zip(one, two) for k in r1
               if k not in ("seconds", "lr") and isinstance(r1[k], float) and r1[k] != 0)


def _weights_gap(a, b):
    assert a.keys() == b.keys() and a
    assert all(a[n].shape == b[n].shape for n in a)  # gathered: full-size tensors, as one process writes them
    diff = torch.cat([(a[n] - b[n]).abs().flatten() for n in a])
    return float(diff.max()), float(diff.mean())


def _decode_steps_per_rank(model, data, out, extra_cfg):
    """Step 1's rollout rebuilt in this process (the LoRA starts at zero, so it is the base model's
    draw): how many decode steps each of the 2 processes needs for its rows (its longest row)."""
    from layersafe.rl import lppo

    cfg = lppo.LPPOConfig(model=str(model), data=str(data), out=str(out), device="cpu", dtype="float32", **extra_cfg)
    tr = lppo.LPPOTrainer(cfg, log=lambda m: None)
    n_tok = tr.rollout(1).response_mask.sum(1).tolist()  # generated tokens, the stop token included
    return [max(n_tok[j] for j in lppo.shard(len(n_tok), r, 2)) for r in (0, 1)]


def test_sharded_lppo_equals_one_process_and_resumes(tiny_llava_dir, tmp_path):
    """2 sharded processes × (batch 2, minibatch 1) = 1 process × (4, 2): the same sampled responses,
    losses, KL, scores and weights (LoRA + value head after each step, final adapter and value
    head). Step 1's rows stop at different lengths and one process's rows all stop before the
    other's, so the processes decode different numbers of steps: without synchronized decoding the
    shorter one would leave generate and the layers' all-gathers would no longer pair up.
    Then a sharded run stopped after step 1 and resumed equals the uninterrupted sharded run.

    Measured on CPU (float32, gloo, 2026-11-30): logged values within 1.1e-5 relative, weights within
    9.5e-7 (mean 6.1e-9); the resumed run equals the uninterrupted one exactly. With stock generate
    not synchronized the sharded run aborts at step 1 (gloo: connection reset by peer)."""
    data = _data(tmp_path)
    model = _often_stopping_model(tiny_llava_dir, tmp_path / "model", data)
    # seed 11: at step 1 process 1's rows both stop at their first token, one of process 0's runs to 6
    common = ["--layers", "2,3,4", "--steps", "2", "--ppo-epochs", "2", "--max-new-tokens", "6", "--seed", "11",
              "--learning-rate", "0.001", "--save-every", "1", "--temperature", "1.3", "--dtype", "float32"]
    steps = _decode_steps_per_rank(model, data, tmp_path / "probe", dict(
        layers="2,3,4", batch_size=4, mini_batch_size=2, max_new_tokens=6, temperature=1.3, seed=11))
    assert steps == [6, 1], steps  # synchronized decoding is needed at step 1
    _align(model, data, tmp_path / "one", procs=1, port=0, extra=common + ["--batch-size", "4", "--mini-batch-size", "2"])
    sharded = common + ["--batch-size", "2", "--mini-batch-size", "1", "--shard-model"]
    proc = _align(model, data, tmp_path / "two", procs=2, port=29551, extra=sharded)
    assert proc.stdout.count("align complete") == 1  # rank 0 reports
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "complete" and run["config"]["shard_model"] is True
    fsdp = run["fsdp"]  # rank 0 holds half of the decoder layers' weights; the rest stays whole
    assert fsdp["sharded_params"] > 0 and fsdp["whole_params"] > 0 and fsdp["rollout_cache"] == "dynamic"
    assert fsdp["sharded_params_here"] * 2 == pytest.approx(fsdp["sharded_params"], rel=0.01)

    one, two = _log(tmp_path / "one"), _log(tmp_path / "two")
    worst = _compare_logs(one, two, ("policy_loss", "value_loss", "kl", "approx_kl", "clipfrac", "entropy",
                                     "reward_total", "explained_variance", "grad_norm", "score"))
    assert one[0]["stop_rate"] == 0.75  # responses of different lengths
    assert one[0]["policy_loss"] != 0 and one[0]["value_loss"] > 0 and one[0]["grad_norm"] > 0  # not trivial
    assert one[0]["kl"] == 0 and one[1]["kl"] != 0  # the LoRA starts at the reference (adapter off), then moves
    gaps = []
    for step in (1, 2):
        w1, w2 = (torch.load(tmp_path / k / "checkpoints" / f"step-{step:07d}" / "trainable.pt", weights_only=True)
                  for k in ("one", "two"))
        gaps.append(_weights_gap(w1, w2))
        assert w1["value_head.weight"].abs().max() > 1e-3  # the value head moved (it starts at 0)
    for f in ("adapter/adapter_model.safetensors", "value_head.safetensors"):
        a1, a2 = (load_file(tmp_path / k / f) for k in ("one", "two"))
        gaps.append(_weights_gap(a1, a2))
    print(f"logged values within {worst:.1e} relative; weights within {max(g[0] for g in gaps):.1e} "
          f"(mean {max(g[1] for g in gaps):.1e})")
    assert all(mx <= W_MAX and mean <= W_MEAN for mx, mean in gaps)
    # the checkpoint's adapter folder (written from the gathered weights) is the final adapter of step 2
    a_ck = load_file(tmp_path / "two" / "checkpoints" / "step-0000002" / "adapter" / "adapter_model.safetensors")
    a_fin = load_file(tmp_path / "two" / "adapter" / "adapter_model.safetensors")
    assert a_ck.keys() == a_fin.keys() and all(torch.equal(a_ck[n], a_fin[n]) for n in a_ck)

    # resume: stop after step 1 (a run of 1 step), then --resume to step 2 from its checkpoint
    res = tmp_path / "resumed"
    _align(model, data, res, procs=2, port=29553, extra=[*sharded, "--steps", "1"])
    _align(model, data, res, procs=2, port=29555, extra=[*sharded, "--steps", "2", "--resume"])
    r_log = _log(res)
    assert [r["step"] for r in r_log] == [1, 2]
    for r1, r2 in zip(two, r_log):
        assert {k: v for k, v in r1.items() if k != "seconds"} == {k: v for k, v in r2.items() if k != "seconds"}
    w1, w2 = (torch.load(tmp_path / k / "checkpoints" / "step-0000002" / f, weights_only=True)
              for k in ("two", "resumed") for f in ("trainable.pt",))
    assert all(torch.equal(w1[n], w2[n]) for n in w1)
    o1, o2 = (torch.load(tmp_path / k / "checkpoints" / "step-0000002" / "optimizer.pt", weights_only=True)
              for k in ("two", "resumed"))
    assert o1["state"].keys() == o2["state"].keys()
    assert all(torch.equal(o1["state"][n]["exp_avg_sq"], o2["state"][n]["exp_avg_sq"]) for n in o1["state"])


def test_sharded_distill_equals_one_process(tiny_llava_dir, tmp_path):
    """Distillation (student = LoRA at layers 2-3, teacher = adapter off at layer 4): 2 sharded
    processes × (4, 2) = 1 process × (8, 4), rows of different lengths.

    Measured on CPU (float32, gloo, 2026-11-30): logged values within 2.5e-5 relative, weights within
    3.7e-6."""
    data = _data(tmp_path)
    model = _often_stopping_model(tiny_llava_dir, tmp_path / "model", data)
    common = ["--method", "distill", "--layers", "2,3", "--teacher-layer", "4", "--steps", "2", "--ppo-epochs", "2",
              "--max-new-tokens", "6", "--learning-rate", "0.001", "--save-every", "1", "--temperature", "1.3",
              "--dtype", "float32"]
    _align(model, data, tmp_path / "one", procs=1, port=0, extra=common + ["--batch-size", "8", "--mini-batch-size", "4"])
    proc = _align(model, data, tmp_path / "two", procs=2, port=29557,
                  extra=common + ["--batch-size", "4", "--mini-batch-size", "2", "--shard-model"])
    assert proc.stdout.count("align (distill) complete") == 1
    assert "fsdp" in json.loads((tmp_path / "two" / "run.json").read_text())
    one, two = _log(tmp_path / "one"), _log(tmp_path / "two")
    worst = _compare_logs(one, two, ("distill_loss", "distill_kl", "kl_per_sequence", "grad_norm"))
    assert one[0]["distill_kl"] > 0.01 and one[0]["grad_norm"] > 0  # the student differs from the teacher
    assert 0.2 <= one[0]["stop_rate"] <= 0.8, one[0]["stop_rate"]
    gaps = [_weights_gap(*(torch.load(tmp_path / k / "checkpoints" / f"step-{s:07d}" / "trainable.pt",
                                      weights_only=True) for k in ("one", "two"))) for s in (1, 2)]
    gaps.append(_weights_gap(*(load_file(tmp_path / k / "adapter" / "adapter_model.safetensors")
                               for k in ("one", "two"))))
    print(f"logged values within {worst:.1e} relative; weights within {max(g[0] for g in gaps):.1e}")
    assert all(mx <= W_MAX and mean <= W_MEAN for mx, mean in gaps)
    assert not (tmp_path / "two" / "value_head.safetensors").exists()  # distillation has no critic


@pytest.mark.parametrize("args, match", [
    (["--shard-model"], "this is one process"),
    (["--shard-model", "--merge"], "cannot be combined with --merge"),
    (["--shard-model", "--cache", "static", "--full-finetune"], "cannot be combined with --full-finetune, --cache static"),
])
def test_shard_model_refusals(args, match, tmp_path, capsys, monkeypatch):
    """One line and exit 2, before any model loads or any folder is written."""
    from layersafe.cli import main

    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    out = tmp_path / "o"
    assert main(["align", "--out", str(out), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err
    assert not out.exists()


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_sharded_align_on_two_gpus(tiny_llava_dir, tmp_path):
    """The L-PPO comparison on 2 GPUs (nccl): benchmarks/check_align_sharded.py on the tiny model."""
    proc = subprocess.run([sys.executable, "benchmarks/check_align_sharded.py", "--gpus", "2", "--preset", "tiny",
                           "--json", str(tmp_path / "a.json")], capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads((tmp_path / "a.json").read_text())["ok"] is True
