"""``layersafe sft`` with the language model sharded over 2 processes (torchrun, gloo on CPU, torch
FSDP2) trains the same run as one process: the same logged losses and gradient norms and the same
saved adapter."""

import json
import os
import subprocess
import sys

import pytest
import torch

# Measured on CPU (float32, gloo, 2026-11-30), 2 steps at batch 4, lr 1e-3: logged losses and gradient
# norms within 1.4e-7 relative, adapter weights within 2.2e-6 (mean 6.9e-10): batch-shape-dependent
# matmul rounding (each process runs half the rows, padded to its own longest) and the reduce order of
# the sharded gradients. At lr 1e-2 (batch 8, benchmarks/check_sft_sharded.py) one LoRA element
# differed by 1.2e-4: AdamW's first steps move each element by about lr * sign(g), and a gradient
# element at rounding level can flip its sign (the L-PPO data-parallel test saw the same). The
# tolerances are those of that test (tests/test_lppo_multiprocess.py).
RTOL, ATOL = 1e-4, 2e-6
W_MAX, W_MEAN = 1e-4, 1e-6


ARGS = ["--layers", "2,3", "--steps", "2", "--batch-size", "4", "--learning-rate", "0.001", "--lora-r", "4",
        "--dtype", "float32", "--device", "cpu", "--save-every", "2", "--no-progress"]


def _sft_two_processes(model, data, out, port):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "layersafe", "sft", "--model", str(model), "--data", str(data), "--out", str(out), *ARGS]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_sharded_sft_equals_one_process(tiny_llava_dir, tmp_path):
    """Harmful rows learn the refusal and benign rows their own answers (1 to 9 words), so the two
    processes' shares of a batch's target tokens differ and the token-share weighting matters."""
    from safetensors.torch import load_file

    rows = [{"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}", "image": "skimage:coffee",
             "harmful": True} for i in range(4)]
    answers = ["Blue.", "It is a red rocket standing on a launch pad today.", "Two.", "A cup of coffee on a saucer."]
    rows += [{"id": f"b{i}", "prompt": f"What is object {i}?", "image": "skimage:rocket", "harmful": False,
              "response": a} for i, a in enumerate(answers)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from layersafe.cli import main

    # one process: in this process (the same command line)
    assert main(["sft", "--model", str(tiny_llava_dir), "--data", str(data), "--out", str(tmp_path / "one"), *ARGS]) == 0
    proc = _sft_two_processes(tiny_llava_dir, data, tmp_path / "two", 29541)
    assert proc.stdout.count("sft complete") == 1  # rank 0 reports
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "complete"
    fsdp = run["fsdp"]  # rank 0 holds half of the decoder layers' weights; the rest stays whole
    assert fsdp["sharded_params"] > 0 and fsdp["whole_params"] > 0
    assert fsdp["sharded_params_here"] * 2 == pytest.approx(fsdp["sharded_params"], rel=0.01)
    logs = {k: [json.loads(l) for l in (tmp_path / k / "log.jsonl").read_text().splitlines()] for k in ("one", "two")}
    assert [r["step"] for r in logs["two"]] == [1, 2]
    for r1, r2 in zip(logs["one"], logs["two"]):
        assert r1["layers"] == r2["layers"] and r1["harmful_fraction"] == r2["harmful_fraction"]
        for k in ("loss", "grad_norm"):
            assert r1[k] == pytest.approx(r2[k], rel=RTOL, abs=ATOL), (r1["step"], k, r1[k], r2[k])
    assert logs["one"][0]["loss"] > 1 and logs["one"][0]["grad_norm"] > 0.1  # not a trivial match
    worst = max(abs(r1[k] - r2[k]) / abs(r1[k]) for r1, r2 in zip(logs["one"], logs["two"]) for k in ("loss", "grad_norm"))
    a1, a2 = (load_file(tmp_path / k / "adapter" / "adapter_model.safetensors") for k in ("one", "two"))
    assert a1.keys() == a2.keys() and a1
    diff = torch.cat([(a1[n] - a2[n]).abs().flatten() for n in a1])
    print(f"logged values within {worst:.1e} relative; adapter within {diff.max():.1e} (mean {diff.mean():.1e})")
    assert diff.max() <= W_MAX and diff.mean() <= W_MEAN
    assert max(v.abs().max() for n, v in a1.items() if "lora_B" in n) > 5e-4  # the adapter moved (about lr per AdamW step)
    # the checkpoint holds the gathered (full-size) LoRA weights, as one process writes them
    c1, c2 = (torch.load(tmp_path / k / "checkpoints" / "step-0000002" / "trainable.pt", weights_only=True)
              for k in ("one", "two"))
    assert c1.keys() == c2.keys() and all(c1[n].shape == c2[n].shape for n in c1)


def test_sharded_launch_refusals(monkeypatch, tmp_path):
    """One line, before any process group is joined: align under accelerate's FSDP, and --resume of
    a sharded sft run."""
    from layersafe.errors import UserError
    from layersafe.rl.configs import SFTConfig
    from layersafe.rl.onpolicy import _make_accelerator
    from layersafe.rl.sft import train_sft

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(UserError, match="accelerate's FSDP is not supported"):
        _make_accelerator()
    with pytest.raises(UserError, match="--resume of a sharded"):
        train_sft(SFTConfig(out=str(tmp_path / "s"), resume=True))
    assert not (tmp_path / "s").exists()
