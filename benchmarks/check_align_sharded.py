"""Sharded `layersafe align --shard-model` on N GPUs (issue 20, docs/scale.md "align on a model bigger
than one GPU"). Two phases, one JSON object:

1. ``equal``: L-PPO on the tiny random LLaVA in float32 (its EOS raised so rows stop at different
   lengths, as tests/test_align_fsdp.py): one process (batch 2N, minibatch N, stock generate:
   ``--cache dynamic``, the sharded rollout's decoder) against ``torchrun --nproc_per_node N ...
   --shard-model`` (batch 2, minibatch 1 each); compares the logged values and the saved adapter and
   value head with the test's tolerances.
2. ``big``: 2 L-PPO steps of the same command on a random model of real size (``--preset
   llava-1.5-7b``: CLIP ViT-L/14-336 + a 32-layer 4096-wide Llama, bf16, built and saved once),
   sharded over the N GPUs: each process's peak GPU memory next to the model's size, the step
   times (run.json's timing: generate / score / learn), the fsdp summary, finite losses, the
   checkpoint written.

    python benchmarks/check_align_sharded.py --gpus 2 --json $OUT/align_sharded.json    # 2 GPUs, nccl
    python benchmarks/check_align_sharded.py --device cpu --gpus 2 --preset tiny          # CPU plumbing, gloo

Exits 1 when a phase fails or the equal phase differs by more than the test allows.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_scale import launcher, phase_env  # noqa: E402  (same folder: launch helpers)

RTOL, ATOL, W_MAX, W_MEAN = 1e-4, 2e-6, 1e-4, 1e-6  # as tests/test_align_fsdp.py
FLOATS = ("policy_loss", "value_loss", "kl", "approx_kl", "entropy", "reward_total", "grad_norm", "score")
COUNTS = ("response_length", "stop_rate")


def _run(a, cmd: list[str], procs: int, port: int, limit: float) -> tuple[float, str | None]:
    t = time.perf_counter()
    try:
        p = subprocess.run(launcher(procs, port) + cmd, env=phase_env(procs, a.device == "cuda"), capture_output=True,
                           text=True, timeout=max(limit, 1))
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t, f"timed out after {limit:.0f} s"
    if p.returncode:
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        cause = [l for l in lines if any(w in l for w in ("error", "Error", "abort", "Signal"))]
        return time.perf_counter() - t, f"exit {p.returncode}: " + " | ".join((cause or lines[-8:])[:8])[-3000:]
    return time.perf_counter() - t, None


def _log(out: Path) -> list[dict]:
    return [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]


def equal_phase(a, work: Path, left) -> dict:
    import torch
    from safetensors.torch import load_file

    sys.path.insert(0, str(ROOT / "tests"))
    from test_lppo_multiprocess import _data, _often_stopping_model  # the test's data and model, not a copy

    from layersafe.models.tiny import build_tiny_llava

    data = _data(work)
    model = _often_stopping_model(build_tiny_llava(work / "tiny", seed=0), work / "stopping", data)
    n = a.gpus
    common = ["-m", "layersafe", "align", "--model", str(model), "--data", str(data), "--layers", "2,3,4",
              "--steps", "2", "--ppo-epochs", "2", "--max-new-tokens", "6", "--seed", "11", "--learning-rate", "0.001",
              "--save-every", "2", "--temperature", "1.3", "--dtype", "float32", "--device", a.device, "--no-progress"]
    res: dict = {}
    for name, procs, extra in (("one", 1, ["--batch-size", str(2 * n), "--mini-batch-size", str(n), "--cache", "dynamic"]),
                               ("sharded", n, ["--batch-size", "2", "--mini-batch-size", "1", "--shard-model"])):
        wall, err = _run(a, common + extra + ["--out", str(work / f"eq_{name}")], procs, 29591, left())
        res[f"wall_s_{name}"] = round(wall, 1)
        if err:
            return {**res, "error": f"{name}: {err}", "ok": False}
    one, two = _log(work / "eq_one"), _log(work / "eq_sharded")
    counts_equal = all(r1[k] == r2[k] for r1, r2 in zip(one, two) for k in COUNTS) and len(one) == len(two)
    rel = max(abs(r1[k] - r2[k]) / max(abs(r1[k]), 1e-12) for r1, r2 in zip(one, two) for k in FLOATS)
    close = all(abs(r1[k] - r2[k]) <= ATOL + RTOL * abs(r1[k]) for r1, r2 in zip(one, two) for k in FLOATS)
    gaps = []
    for f in ("adapter/adapter_model.safetensors", "value_head.safetensors"):
        w1, w2 = (load_file(work / k / f) for k in ("eq_one", "eq_sharded"))
        d = torch.cat([(w1[k] - w2[k]).abs().flatten() for k in w1])
        gaps.append((float(d.max()), float(d.mean())))
    res.update(stop_rate=[r["stop_rate"] for r in one], losses_one=[r["policy_loss"] for r in one],
               losses_sharded=[r["policy_loss"] for r in two], counts_equal=counts_equal, max_rel_diff_logged=rel,
               weights_max_abs_diff=max(g[0] for g in gaps), weights_mean_abs_diff=max(g[1] for g in gaps))
    res["ok"] = bool(counts_equal and close and all(mx <= W_MAX and mean <= W_MEAN for mx, mean in gaps))
    return res


def big_phase(a, work: Path, left) -> dict:
    """The model is built by benchmarks/bench_scale.py in its own process (this one holds no GPU)."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--preset", a.preset,
                        "--device", a.device, "--build-to", str(work / "model")], env=phase_env(1, a.device == "cuda"),
                       capture_output=True, text=True, timeout=max(left(), 1))
    if p.returncode:
        return {"error": "model build failed: " + p.stderr[-2000:], "ok": False}
    facts = json.loads(p.stdout.strip().splitlines()[-1])
    res: dict = {"preset": a.preset, "params": facts["params"], "dtype": facts["dtype"],
                 "build_and_save_s": round(time.perf_counter() - t, 1)}
    data = work / "big.jsonl"
    rows = [{"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}", "image": "skimage:coffee",
             "harmful": True} for i in range(8)]
    rows += [{"id": f"b{i}", "prompt": f"What is shown in picture {i}?", "image": "skimage:rocket", "harmful": False}
             for i in range(8)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = dict(model=str(work / "model"), data=str(data), layers="8,16,24" if a.preset != "tiny" else "2,3,4", steps=2, batch_size=a.batch_size,
               mini_batch_size=a.batch_size // 2, ppo_epochs=1, max_new_tokens=a.new_tokens, dtype=facts["dtype"],
               device=a.device, save_every=2, learning_rate=1e-5, shard_model=True, out=str(work / "big"))
    (work / "big_cfg.json").write_text(json.dumps(cfg))
    wall, err = _run(a, [__file__, "--worker", str(work / "big_cfg.json")], a.gpus, 29593, left())
    res["wall_s"] = round(wall, 1)
    if err:
        return {**res, "error": err, "ok": False}
    import math

    log = _log(work / "big")
    run = json.loads((work / "big" / "run.json").read_text())
    ranks = [json.loads((work / "big" / f"peak-{r}.json").read_text()) for r in range(a.gpus)]
    bytes_per = 2 if facts["dtype"] in ("bfloat16", "float16") else 4
    res.update(fsdp=run.get("fsdp"), timing=run.get("timing"), model_gb=round(facts["params"] * bytes_per / 1e9, 2),
               peak_gb_per_rank=[r["peak_gb"] for r in ranks], step_s=[r["seconds"] for r in log],
               losses=[r["policy_loss"] for r in log], response_length=[r["response_length"] for r in log],
               checkpoint=(work / "big" / "checkpoints" / "step-0000002" / "trainable.pt").is_file())
    res["ok"] = bool(run.get("status") == "complete" and res["checkpoint"]
                     and all(math.isfinite(r[k]) for r in log for k in ("policy_loss", "value_loss", "grad_norm")))
    return res


def worker(path: str) -> int:
    """One process of the big phase (launched by torchrun): ``align`` as the command runs it, then
    this process's peak GPU memory."""
    import torch

    from layersafe.rl.lppo import LPPOConfig, train

    cfg = LPPOConfig(**json.loads(Path(path).read_text()))
    train(cfg, progress=False, log=lambda m: None)
    peak = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None
    Path(cfg.out, f"peak-{os.environ.get('RANK', '0')}.json").write_text(json.dumps({"peak_gb": peak}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=2, help="processes of the sharded runs")
    ap.add_argument("--device", default="cuda", help="cuda (process i on GPU i) or cpu")
    ap.add_argument("--preset", choices=["llava-1.5-7b", "tiny"], default="llava-1.5-7b", help="the big phase's model")
    ap.add_argument("--batch-size", type=int, default=4, help="big phase: rollouts per process and step")
    ap.add_argument("--new-tokens", type=int, default=16, help="big phase: --max-new-tokens")
    ap.add_argument("--budget", type=float, default=230, help="seconds for both phases")
    ap.add_argument("--json", default=None, help="also write the result here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one process of the big phase
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker)
    import torch

    deadline = time.monotonic() + a.budget
    left = lambda: deadline - time.monotonic()  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix="align_sharded_"))
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": a.device, "processes": a.gpus,
                 "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None, "torch": torch.__version__,
                 "transformers": __import__("transformers").__version__}
    out["equal"] = equal_phase(a, work, left)
    print(json.dumps({"equal": out["equal"]}), file=sys.stderr, flush=True)  # in case the big phase dies
    out["big"] = big_phase(a, work, left) if left() > 30 else {"error": "skipped: --budget spent", "ok": False}
    out["ok"] = bool(out["equal"].get("ok") and out["big"].get("ok"))
    text = json.dumps(out, indent=1) + "\n"
    sys.stdout.write(text)
    if a.json:
        Path(a.json).write_text(text)
    return int(not out["ok"])


if __name__ == "__main__":
    sys.exit(main())
