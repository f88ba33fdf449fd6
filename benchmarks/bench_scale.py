"""Scan throughput on several GPUs (issue 20, docs/scale.md): the same `layersafe scan` command on
one GPU, data parallel on N GPUs (``torchrun --nproc_per_node N``), and on one process with the
model spread over N GPUs (``--device-map auto``). Prints one JSON object.

The model is a random LLaVA of the chosen shape (``llava-1.5-7b``: CLIP ViT-L/14-336 + a 32-layer
4096-wide Llama, bf16), built once and saved with ``save_pretrained`` into a work folder, so every
phase loads it as a user's scan loads a checkpoint. Each phase runs the real command in its own
process(es) and reads its own clock from ``run.json`` (``stats.seconds``: the generation loop,
for N processes up to the merged file; model loading is not in it, and is reported apart as the
phase's wall time). Rows are compared between phases: data-parallel rows are the one-GPU rows
(same generate calls), the device-map rows may differ in bf16.

    # 2 GPUs, random LLaVA-1.5-7B, bf16 (issue 20's target: data parallel >= 1.9x one GPU); the
    # defaults: 96 samples x layers 1-24, 32 new tokens, batch 64 (36 generate calls: 18 per GPU)
    python benchmarks/bench_scale.py --preset llava-1.5-7b --gpus 2
    # CPU plumbing check (tiny model, gloo; tests/test_distributed_bench.py runs it on a saved --model)
    python benchmarks/bench_scale.py --preset tiny --device cpu --samples 5 --layers 0-2 --new-tokens 3 \\
        --batch-size 2 --dm-layers 0

Records go in docs/benchmarks.md with the exact command, date and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "cat", "moon"]
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def build(preset: str, device: str, out: Path) -> dict:
    """Build the random model on ``device``, save it to ``out`` (model + processor); returns facts."""
    import torch

    from layersafe.models.tiny import LLAVA15_7B, make_random_llava

    if preset == "llava-1.5-7b":
        sizes, dtype = dict(LLAVA15_7B), torch.bfloat16
    else:
        sizes, dtype = {}, torch.float32
    t = time.perf_counter()
    model, processor = make_random_llava(seed=0, dtype=dtype, device=device, **sizes)
    model.generation_config.eos_token_id = None  # no EOS: every pair generates exactly --new-tokens
    built = time.perf_counter() - t
    model.save_pretrained(out)
    processor.save_pretrained(out)
    facts = {"params": sum(p.numel() for p in model.parameters()), "dtype": str(dtype).replace("torch.", ""),
             "build_s": round(built, 1), "save_s": round(time.perf_counter() - t - built, 1),
             "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    return facts


def machine() -> str:
    """The machine the benchmark ran on: every GPU nvidia-smi lists (the model-building process sees
    only GPU 0, so it cannot say) and the CPU cores."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
        names = [n.strip() for n in out.splitlines() if n.strip()]
    except (OSError, subprocess.SubprocessError):
        names = []
    gpus = [f"{names.count(n)}x {n}" for n in dict.fromkeys(names)]
    return ", ".join([*gpus, f"{os.cpu_count()} CPU cores ({platform.machine()})"])


def write_dataset(path: Path, n: int) -> Path:
    rows = [{"id": f"s{i:03d}", "prompt": f"Describe step by step what is shown in picture number {i}"
             + " in detail" * (i % 3), "image": f"skimage:{PHOTOS[i % len(PHOTOS)]}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def phase_env(gpus: int, cuda: bool) -> dict:
    """A phase's environment: no inherited launcher variables, this checkout importable, GPUs 0..gpus-1."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if cuda:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(gpus)))
    return env


def launcher(procs: int, port: int) -> list[str]:
    """python, or torchrun with ``procs`` processes."""
    return ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs), "--master_port",
             str(port)] if procs > 1 else [sys.executable])


def run_phase(cmd: list[str], env: dict, limit: int, res: dict, cause) -> subprocess.CompletedProcess | None:
    """Run one phase's command within ``limit`` seconds; records ``wall_s`` in ``res``, or ``error``
    (skipped under 30 s, timed out, or the exit code with ``cause(stderr lines)``) and returns None."""
    if limit < 30:
        res["error"] = "skipped: --budget spent"
        return None
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        res["error"] = f"timed out after {limit} s"
        return None
    res["wall_s"] = round(time.perf_counter() - t, 1)
    if proc.returncode != 0:
        res["error"] = f"exit {proc.returncode}: " + " | ".join(cause([l for l in proc.stderr.splitlines() if l.strip()]))
        return None
    return proc


def scan(a, model: Path, data: Path, out: Path, *, procs: int, device_map: bool, layers: str, port: int) -> dict:
    """One phase: the `layersafe scan` command in its own process(es); its run.json's figures."""
    gpus = procs if not device_map else a.gpus
    cmd = launcher(procs, port) + ["-m", "layersafe", "scan", "--model", str(model), "--data", str(data), "--layers",
                                   layers, "--max-new-tokens", str(a.new_tokens), "--batch-size", str(a.batch_size),
                                   "--dtype", a.dtype, "--judge", "none", "--no-report", "--no-progress", "--out",
                                   str(out)]
    cmd += ["--device-map", "auto"] if device_map else ["--device", a.device]
    shown = " ".join(cmd[cmd.index("layersafe") - 1:]).replace(str(model), "MODEL").replace(str(data), "DATA")
    res: dict = {"command": (f"torchrun --nproc_per_node {procs} " if procs > 1 else "python ") + shown,
                 "processes": procs, "gpus": gpus if a.device == "cuda" else 0}
    limit = a.phase_timeout if a.deadline is None else min(a.phase_timeout, int(a.deadline - time.monotonic()))
    errors = lambda lines: ([l for l in lines if any(w in l for w in ("error", "Error", "terminate", "abort", "Signal"))]  # noqa: E731
                            or lines)[:8]
    if run_phase(cmd, phase_env(gpus, a.device == "cuda"), limit, res, errors) is None:
        return res
    run = json.loads((out / "run.json").read_text())
    st = run["stats"]
    res.update(pairs=st["generated"], new_tokens=st["new_tokens"], scan_s=st["seconds"],
               pairs_per_s=st["generations_per_s"], tokens_per_s=round(st["new_tokens"] / st["seconds"], 1),
               load_and_start_s=round(res["wall_s"] - st["seconds"], 1), kv_cache=run.get("kv_cache"))
    if "per_rank_generated" in st:
        res["per_rank_generated"] = st["per_rank_generated"]
    return res


def same_rows(a: Path, b: Path) -> str:
    """How many (sample, layer) pairs the two runs answered identically, of those both have."""
    def load(p):
        rows = [json.loads(l) for l in (p / "generations.jsonl").read_text().splitlines() if l.strip()]
        return {(r["sample_id"], r["layer"]): r["response"] for r in rows}

    x, y = load(a), load(b)
    common = set(x) & set(y)
    return f"{sum(x[k] == y[k] for k in common)}/{len(common)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=["llava-1.5-7b", "tiny"], default="llava-1.5-7b")
    ap.add_argument("--gpus", type=int, default=2, help="processes (data parallel) and GPUs (device map)")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: plumbing check with gloo")
    ap.add_argument("--dtype", default=None, help="default: bfloat16 for llava-1.5-7b, float32 for tiny")
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--layers", default="1-24", help="layers of the one-GPU and data-parallel phases")
    ap.add_argument("--dm-layers", default="1-4",
                    help="layers of the --device-map phase (pairs/s is compared; 'none' skips it)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--phase-timeout", type=int, default=300, help="seconds per phase")
    ap.add_argument("--budget", type=int, default=None,
                    help="seconds for the whole benchmark: a phase gets at most what is left (skipped under 30 s)")
    ap.add_argument("--model", help="scan this saved model folder instead of building a random one (--preset)")
    ap.add_argument("--work", help="work folder (default: a temporary one, removed at the end)")
    ap.add_argument("--json", help="write the result here too")
    ap.add_argument("--build-to", help=argparse.SUPPRESS)  # internal: build + save the model, print facts
    a = ap.parse_args()
    a.dtype = a.dtype or ("bfloat16" if a.preset == "llava-1.5-7b" else "float32")
    a.deadline = None if a.budget is None else time.monotonic() + a.budget
    if a.build_to:
        print(json.dumps(build(a.preset, a.device, Path(a.build_to))))
        return 0

    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        if a.model:
            model, facts = Path(a.model), {"model": a.model}
        else:
            env = phase_env(1, a.device == "cuda")
            # Built in its own process: this one never holds a GPU while the phases run.
            proc = subprocess.run([sys.executable, __file__, "--preset", a.preset, "--device", a.device,
                                   "--build-to", str(work / "model")], env=env, capture_output=True, text=True,
                                  timeout=a.phase_timeout)
            if proc.returncode != 0:
                print(json.dumps({"error": "model build failed: " + proc.stderr[-2000:]}))
                return 1
            model, facts = work / "model", json.loads(proc.stdout.strip().splitlines()[-1])
            facts["build_and_save_wall_s"] = round(time.perf_counter() - t, 1)
        facts["machine"] = machine()  # every GPU of the machine: the build process saw only GPU 0
        data = write_dataset(work / "data.jsonl", a.samples)
        res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "preset": a.preset, **facts,
                     "samples": a.samples, "layers": a.layers, "new_tokens": a.new_tokens, "batch_size": a.batch_size}
        one = scan(a, model, data, work / "one", procs=1, device_map=False, layers=a.layers, port=0)
        print(json.dumps({"one": one}), file=sys.stderr, flush=True)  # in case a later phase dies
        dp = scan(a, model, data, work / "dp", procs=a.gpus, device_map=False, layers=a.layers, port=29577)
        print(json.dumps({"data_parallel": dp}), file=sys.stderr, flush=True)
        res["one"], res["data_parallel"] = one, dp
        if "error" not in one and "error" not in dp:
            res["data_parallel"]["speedup_vs_one"] = round(dp["pairs_per_s"] / one["pairs_per_s"], 3)
            res["data_parallel"]["identical_rows_vs_one"] = same_rows(work / "one", work / "dp")
        if a.dm_layers != "none":
            dm = scan(a, model, data, work / "dm", procs=1, device_map=True, layers=a.dm_layers, port=0)
            res["device_map_auto"] = dm
            if "error" not in one and "error" not in dm:
                dm["pairs_per_s_vs_one"] = round(dm["pairs_per_s"] / one["pairs_per_s"], 3)
                dm["identical_rows_vs_one"] = same_rows(work / "one", work / "dm")
        res["total_wall_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps(res, indent=2))
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        return 0 if all("error" not in res.get(k, {}) for k in ("one", "data_parallel", "device_map_auto")) else 1
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
