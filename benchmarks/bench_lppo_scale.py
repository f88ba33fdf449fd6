"""L-PPO on several GPUs (issue 20, docs/lppo.md "Multi-GPU"): the real `layersafe align` command on
one GPU and data parallel under ``torchrun --nproc_per_node N`` with the SAME global batch, a few
steps each; rollouts per second, the speed-up and each phase's time. Prints one JSON object.

The model is a random LLaVA of the chosen shape (``llava-1.5-7b``: bf16), built once and saved by
``benchmarks/bench_scale.py --build-to`` (no EOS in its generation config, so every rollout decodes
exactly ``--new-tokens`` tokens and the two phases decode the same work). The reward is align's
default, the rule-based ``refusal`` reward (no reward model to load). Prompts: ``--data`` of
bench_scale's synthetic picture questions plus the same number as ``--benign-data`` (half of each
batch). Each phase reads its own figures from the run folder: ``run.json`` ``timing`` (mean seconds
per step and per phase, the first step left out as warm-up) and ``timing.jsonl`` (every step:
generate / score / learn, and the rollout's tokenize / encode / decode / gather). Both phases run
``--decode-cache keep`` by default (docs/lppo.md "Decode cache"): every timed step replays the
static decoder built in step 1 instead of re-allocating its cache and re-capturing its graph.
The JSON's ``machine`` lists every GPU of the machine (nvidia-smi), not what one phase sees.

    # 2 GPUs, random LLaVA-1.5-7B, bf16: 64 rollouts x 128 new tokens, global minibatch 16, 4 PPO
    # epochs, 3 steps (issue 20's target: samples/s on 2 GPUs >= 1.8x one GPU)
    python benchmarks/bench_lppo_scale.py --preset llava-1.5-7b --gpus 2 --budget 330
    # CPU plumbing check (tiny model, fp32, gloo; tests/test_bench_lppo_scale.py)
    python benchmarks/bench_lppo_scale.py --preset tiny --device cpu --batch-size 4 --mini-batch-size 2 \\
        --new-tokens 4 --steps 2 --ppo-epochs 1

Beside the speed, it compares the two runs' logged values step by step (``max_rel_diff``): in fp32 on
the CPU they agree within 1e-4 (the same run, tests/test_lppo_multiprocess.py); in bf16 on GPUs they
differ by rounding (a flipped sampled token changes a whole row).

``--profile-step N`` runs both phases through ``benchmarks/profiled_align.py``: step N's learning
phase is timed part by part (forward, loss, backward with the all-reduce, optimizer step) on every
process with CUDA events, in the JSON's ``profile`` (what does not halve on N GPUs).

Records go in docs/benchmarks.md with the exact command, date and machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import ROOT, launcher, machine, phase_env, run_phase, write_dataset  # noqa: E402  (same folder: model build, prompts, phases)

TARGET = 1.8
RTOL, ATOL = 1e-4, 2e-6  # one vs N processes, as tests/test_lppo_multiprocess.py
# Logged values compared between the one- and N-process runs (counts equal exactly on the CPU).
COMPARED = ("score", "kl", "policy_loss", "value_loss", "approx_kl", "clipfrac", "entropy", "grad_norm",
            "explained_variance", "response_length")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(a, gpus: int) -> dict:
    env = phase_env(gpus, a.device == "cuda")
    if a.device != "cuda":  # torchrun gives each process one thread; the one-process phase gets the same
        env["OMP_NUM_THREADS"] = "1"
    return env


def remaining(a, share: float = 1.0) -> int:
    """Seconds a phase may take: ``--phase-timeout``, and at most ``share`` of what --budget has left."""
    return a.phase_timeout if a.deadline is None else min(a.phase_timeout,
                                                          int(share * (a.deadline - time.monotonic())))


def align(a, model: Path, data: Path, benign: Path, out: Path, procs: int, share: float = 1.0) -> dict:
    """One phase: `layersafe align` in its own process(es), the global batch split over ``procs``;
    its figures from run.json and timing.jsonl (``outside_steps_s``: the phase's wall time not in a
    step: loading, start-up, checkpoint and adapter writing). It may use ``share`` of the budget left."""
    launch = launcher(procs, free_port())
    # Batch sizes of align are per process: the global batch and minibatch divided by N.
    # --profile-step: the same command through benchmarks/profiled_align.py (one step under torch.profiler)
    entry = [str(ROOT / "benchmarks" / "profiled_align.py")] if a.profile_step else ["-m", "layersafe"]
    cmd = launch + entry + ["align", "--model", str(model), "--data", str(data), "--benign-data",
                    str(benign), "--batch-size", str(a.batch_size // procs), "--mini-batch-size",
                    str(a.mini_batch_size // procs), "--ppo-epochs", str(a.ppo_epochs), "--max-new-tokens",
                    str(a.new_tokens), "--steps", str(a.steps), "--save-every", str(a.steps), "--dtype", a.dtype,
                    "--device", a.device, "--layers", a.layers, "--decode-cache", a.decode_cache,
                    "--rollout-weights", a.rollout_weights, "--no-progress",
                    *(["--fuse-kernels"] if a.fuse_kernels else []),
                    *([] if a.prefix_reuse else ["--no-prefix-reuse"]),
                    "--out", str(out)]
    shown = " ".join(cmd[cmd.index("align") - len(entry):])
    for path, name in ((model, "MODEL"), (data, "DATA"), (benign, "BENIGN"), (out, "OUT")):
        shown = shown.replace(str(path), name)
    res: dict = {"command": (f"torchrun --nproc_per_node {procs} " if procs > 1 else "python ") + shown,
                 "processes": procs, "gpus": procs if a.device == "cuda" else 0}
    # align's own one-line errors first, else the end of the traceback
    errors = lambda lines: sorted({l.strip() for l in lines if l.strip().startswith("layersafe: error")}) or [  # noqa: E731
        l.strip() for l in lines[-6:]]
    env = env_for(a, procs)
    if a.profile_step:
        env.update(LAYERSAFE_PROFILE_STEP=str(a.profile_step), LAYERSAFE_PROFILE_DIR=str(out / "profile"))
    if run_phase(cmd, env, remaining(a, share), res, errors) is None:
        return res
    if a.profile_step:
        res["profile"] = [json.loads(p.read_text()) for p in sorted((out / "profile").glob("rank*.json"))]
    run = json.loads((out / "run.json").read_text())
    steps = [json.loads(l) for l in (out / "timing.jsonl").read_text().splitlines() if l.strip()]
    timing = run["timing"]
    res.update(world_size=run["world_size"], global_batch=timing["global_batch"], samples_per_s=timing["samples_per_s"],
               step_s=timing["mean_s"]["seconds"], phase_s=timing["mean_s"], steps_timed=timing["steps_timed"],
               per_step=steps, outside_steps_s=round(res["wall_s"] - sum(s["seconds"] for s in steps), 1))
    return res


def build_model(a, dest: Path) -> tuple[Path | None, dict]:
    """The random model of ``--preset``, built and saved to ``dest`` by bench_scale.py's builder in
    its own process (so this one never holds a GPU); (folder, facts) or (None, {"error": ...})."""
    t = time.perf_counter()
    builder = [sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--preset", a.preset, "--device", a.device,
               "--build-to", str(dest)]
    proc = subprocess.run(builder, env=env_for(a, 1), capture_output=True, text=True, timeout=remaining(a))
    if proc.returncode != 0:
        return None, {"error": "model build failed: " + proc.stderr[-2000:]}
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    return dest, {**facts, "build_and_save_wall_s": round(time.perf_counter() - t, 1), "machine": machine()}


def compare_logs(one: Path, two: Path, rtol: float = RTOL, atol: float = ATOL) -> dict:
    """Largest absolute and relative difference of each compared logged value over the steps of
    both runs, and whether every one is within ``atol + rtol·|one-process value|`` (the tolerance of
    tests/test_lppo_multiprocess.py: values near 0, like the first epoch's approx-KL, differ by
    rounding far beyond 1e-4 of themselves)."""
    logs = [[json.loads(l) for l in (p / "log.jsonl").read_text().splitlines() if l.strip()] for p in (one, two)]
    absd: dict = {}
    reld: dict = {}
    within = True
    for r1, r2 in zip(*logs):
        for k in COMPARED:
            x, y = r1.get(k), r2.get(k)
            if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                d = abs(x - y)
                absd[k] = max(absd.get(k, 0.0), d)
                if x or not d:  # a relative difference to 0 has no value (JSON has no inf)
                    reld[k] = max(reld.get(k, 0.0), d / abs(x) if x else 0.0)
                within &= d <= atol + rtol * abs(x)
    g = lambda v: float(f"{v:.3g}")  # noqa: E731
    return {"steps": min(map(len, logs)), "max_abs_diff": {k: g(v) for k, v in absd.items()},
            "max_rel_diff": {k: g(v) for k, v in reld.items()}, "tolerance": {"rtol": rtol, "atol": atol},
            "within_tolerance": within}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=["llava-1.5-7b", "tiny"], default="llava-1.5-7b")
    ap.add_argument("--gpus", type=int, default=2, help="processes of the data-parallel phase")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: plumbing check with gloo")
    ap.add_argument("--dtype", default=None, help="default: bfloat16 for llava-1.5-7b, float32 for tiny")
    ap.add_argument("--batch-size", type=int, default=64, help="GLOBAL rollouts per step (both phases)")
    ap.add_argument("--mini-batch-size", type=int, default=16, help="GLOBAL sequences per gradient step")
    ap.add_argument("--new-tokens", type=int, default=128, help="decoded tokens per rollout (no EOS: all of them)")
    ap.add_argument("--ppo-epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="steps per phase; the first is warm-up, not timed")
    ap.add_argument("--layers", default=None, help="align --layers (default 8,12,16; tiny: 2,3,4)")
    ap.add_argument("--decode-cache", choices=["keep", "release", "auto"], default="keep",
                    help="align --decode-cache (default keep: every timed step replays the decoder built in "
                         "step 1; auto keeps it from step 2 on, so its step 2 still builds one)")
    ap.add_argument("--rollout-weights", choices=["auto", "merged", "adapter"], default="auto",
                    help="align --rollout-weights (auto: merged LoRA weights on a GPU when the copy fits)")
    ap.add_argument("--fuse-kernels", action="store_true",
                    help="align --fuse-kernels (rollouts' norms, rotary and SiLU-times-up compiled; step 1 compiles)")
    ap.add_argument("--no-prefix-reuse", dest="prefix_reuse", action="store_false",
                    help="align --no-prefix-reuse (every rollout row prefilled whole: the workload of the "
                         "figures measured before 2026-12-01 11:00 UTC; the prompts share 8 photos)")
    ap.add_argument("--prompts", type=int, default=128, help="synthetic harmful prompts (and as many benign)")
    ap.add_argument("--phase-timeout", type=int, default=300, help="seconds per phase")
    ap.add_argument("--budget", type=int, default=None,
                    help="seconds for the whole benchmark, model build included: a phase gets at most what is "
                         "left (skipped under 30 s)")
    ap.add_argument("--profile-step", type=int, default=0,
                    help="time this step's learning phase part by part (forward, loss, backward, optimizer) on "
                         "every process with CUDA events (benchmarks/profiled_align.py), in the JSON's 'profile'")
    ap.add_argument("--model", help="train this saved model folder instead of building a random one (--preset)")
    ap.add_argument("--work", help="work folder (default: a temporary one, removed at the end)")
    ap.add_argument("--json", help="write the result here too")
    a = ap.parse_args()
    a.dtype = a.dtype or ("bfloat16" if a.preset == "llava-1.5-7b" else "float32")
    a.layers = a.layers or ("8,12,16" if a.preset == "llava-1.5-7b" else "2,3,4")
    a.deadline = None if a.budget is None else time.monotonic() + a.budget
    bad = [f"--{n} {v} is not a multiple of --gpus {a.gpus}" for n, v in
           (("batch-size", a.batch_size), ("mini-batch-size", a.mini_batch_size)) if v % a.gpus]
    if not 0 <= a.profile_step <= a.steps:
        bad.append(f"--profile-step {a.profile_step} must be a step from 1 to --steps {a.steps} (0: off)")
    if a.gpus < 2 or a.batch_size % a.mini_batch_size:
        bad.append("--gpus must be at least 2 and --batch-size a multiple of --mini-batch-size")
    if bad:
        print(f"bench_lppo_scale: error: {bad[0]}", file=sys.stderr)
        return 2

    work = Path(a.work or tempfile.mkdtemp(prefix="bench_lppo_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    try:
        model, facts = (Path(a.model), {"model": a.model, "machine": machine()}) if a.model else \
            build_model(a, work / "model")
        if model is None:
            print(json.dumps({"error": facts["error"]}))
            return 1
        data = write_dataset(work / "data.jsonl", a.prompts)
        benign = write_dataset(work / "benign.jsonl", a.prompts)
        res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "preset": a.preset, **facts,
                     "global_batch": a.batch_size, "global_mini_batch": a.mini_batch_size, "new_tokens": a.new_tokens,
                     "ppo_epochs": a.ppo_epochs, "steps": a.steps, "layers": a.layers, "reward": "refusal",
                     "decode_cache": a.decode_cache, "rollout_weights": a.rollout_weights,
                     "fuse_kernels": a.fuse_kernels, "prefix_reuse": a.prefix_reuse}
        one = align(a, model, data, benign, work / "one", 1, share=0.6)  # the slower phase; leave the rest
        print(json.dumps({"one": one}), file=sys.stderr, flush=True)  # in case the next phase dies
        dp = align(a, model, data, benign, work / "dp", a.gpus)
        res["one"], res["data_parallel"] = one, dp
        if "error" not in one and "error" not in dp:
            speedup = dp["samples_per_s"] / one["samples_per_s"]
            res["speedup"] = round(speedup, 3)
            res["target"] = TARGET
            res["meets_target"] = speedup >= TARGET
            # Which phase limits the speed-up: each phase's one-GPU time over its N-GPU time.
            res["phase_speedup"] = {k: round(one["phase_s"][k] / dp["phase_s"][k], 3) for k in one["phase_s"]
                                    if k in dp["phase_s"] and dp["phase_s"][k] > 0 and k != "decode_cache_kept"}
            res["one_vs_data_parallel_logs"] = compare_logs(work / "one", work / "dp")
        res["total_wall_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps(res, indent=2))
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        return 0 if "error" not in one and "error" not in dp else 1
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
