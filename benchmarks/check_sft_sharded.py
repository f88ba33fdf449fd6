"""Sharded `layersafe sft` against one process (issue 20, docs/scale.md "LoRA training bigger than
one GPU"): the same command on one process and under ``torchrun --nproc_per_node N`` (the language
model's decoder layers sharded over the N processes), on the tiny random LLaVA in float32; compares
the logged losses and gradient norms and the saved adapters, prints one JSON object and exits 1
when they differ by more than tests/test_sft_fsdp.py allows.

    python benchmarks/check_sft_sharded.py --gpus 2 --json $OUT/sft_sharded.json       # 2 GPUs, nccl
    python benchmarks/check_sft_sharded.py --device cpu --gpus 2                        # CPU, gloo
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RTOL, W_MAX, W_MEAN = 1e-4, 1e-4, 1e-6  # as tests/test_sft_fsdp.py


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=2, help="processes of the sharded run")
    ap.add_argument("--device", default="cuda", help="cuda (process i on GPU i) or cpu")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--json", default=None, help="also write the result here")
    a = ap.parse_args()
    import torch
    from safetensors.torch import load_file

    from layersafe.models.tiny import build_tiny_llava

    work = Path(tempfile.mkdtemp(prefix="sft_sharded_"))
    model = build_tiny_llava(work / "llava", seed=0)
    rows = [{"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}", "image": "skimage:coffee",
             "harmful": True} for i in range(8)]
    answers = ["Blue.", "It is a red rocket standing on a launch pad today.", "Two.", "A cup of coffee on a saucer."]
    rows += [{"id": f"b{i}", "prompt": f"What is object {i}?", "image": "skimage:rocket", "harmful": False,
              "response": answers[i % 4]} for i in range(8)]
    data = work / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["-m", "layersafe", "sft", "--model", str(model), "--data", str(data), "--layers", "2,3",
            "--steps", str(a.steps), "--batch-size", "8", "--learning-rate", "0.001", "--lora-r", "4",
            "--dtype", "float32", "--device", a.device, "--save-every", str(a.steps), "--no-progress"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    seconds = {}
    for name, launch in (("one", [sys.executable]),
                         ("sharded", [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(a.gpus)])):
        t0 = time.time()
        p = subprocess.run(launch + args + ["--out", str(work / name)], env=env, capture_output=True, text=True)
        seconds[name] = round(time.time() - t0, 1)
        if p.returncode:
            print(json.dumps({"phase": name, "error": p.stderr[-3000:]}))
            return 1
    logs = {k: [json.loads(l) for l in (work / k / "log.jsonl").read_text().splitlines()] for k in ("one", "sharded")}
    rel = max(abs(r1[k] - r2[k]) / max(abs(r1[k]), 1e-12) for r1, r2 in zip(logs["one"], logs["sharded"])
              for k in ("loss", "grad_norm"))
    a1, a2 = (load_file(work / k / "adapter" / "adapter_model.safetensors") for k in ("one", "sharded"))
    diff = torch.cat([(a1[n] - a2[n]).abs().flatten() for n in a1])
    run = json.loads((work / "sharded" / "run.json").read_text())
    out = {"device": a.device, "processes": a.gpus, "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None,
           "torch": torch.__version__, "steps": a.steps, "losses_one": [r["loss"] for r in logs["one"]],
           "losses_sharded": [r["loss"] for r in logs["sharded"]], "max_rel_diff_logged": rel,
           "adapter_max_abs_diff": float(diff.max()), "adapter_mean_abs_diff": float(diff.mean()),
           "fsdp": run.get("fsdp"), "wall_seconds": seconds,
           "ok": bool(rel <= RTOL and diff.max() <= W_MAX and diff.mean() <= W_MEAN and a1.keys() == a2.keys())}
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
