"""L-PPO data parallel: two processes (torch.distributed.run, gloo on CPU) train one run together."""

import json
import os
import subprocess
import sys

import torch


def test_two_process_align_trains_one_run(tiny_llava_dir, tmp_path):
    rows = [{"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}", "image": "skimage:coffee",
             "harmful": True} for i in range(8)]
    rows += [{"id": f"b{i}", "prompt": f"What colour is object {i}?", "image": "skimage:rocket",
              "harmful": False} for i in range(8)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "al"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "layersafe", "align", "--model", str(tiny_llava_dir), "--data", str(data), "--layers", "3,4",
           "--steps", "2", "--batch-size", "4", "--mini-batch-size", "2", "--ppo-epochs", "1",
           "--max-new-tokens", "3", "--out", str(out), "--no-progress", "--save-every", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("align complete") == 1  # only rank 0 reports
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "complete"
    ckpt = out / "checkpoints" / "step-0000002"
    assert (ckpt / "rng-0.pt").exists() and (ckpt / "rng-1.pt").exists()  # each rank saved its RNG
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    state = torch.load(ckpt / "trainable.pt")
    assert state and all(torch.isfinite(v).all() for v in state.values())
