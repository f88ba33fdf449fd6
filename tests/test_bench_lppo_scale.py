"""benchmarks/bench_lppo_scale.py's plumbing on CPU (the GPU figures come from the same script on 2
H200s, docs/benchmarks.md): the real `layersafe align` on one process and on two gloo processes with
the same global batch; the JSON carries each phase's samples/s and phase times, and the two runs'
logged values agree (fp32: the same run, as tests/test_lppo_multiprocess.py checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_lppo_scale.py"


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_bench_lppo_scale_runs_one_and_two_processes_on_cpu(tiny_llava_dir, tmp_path):
    out, work = tmp_path / "bench.json", tmp_path / "work"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_llava_dir), "--preset", "tiny", "--device", "cpu",
                           "--batch-size", "4", "--mini-batch-size", "2", "--new-tokens", "3", "--steps", "2",
                           "--ppo-epochs", "1", "--prompts", "6", "--json", str(out), "--work", str(work),
                           "--budget", "400"], env=_env(), capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    one, dp = res["one"], res["data_parallel"]
    assert (one["world_size"], dp["world_size"]) == (1, 2)
    assert one["global_batch"] == dp["global_batch"] == res["global_batch"] == 4
    # align's batch sizes are per process: the global 4 / 2 split over the two processes
    assert "--batch-size 4 --mini-batch-size 2 " in one["command"] and one["command"].startswith("python -m layersafe")
    assert "--batch-size 2 --mini-batch-size 1 " in dp["command"]
    assert dp["command"].startswith("torchrun --nproc_per_node 2 -m layersafe align --model MODEL --data DATA")
    for ph in (one, dp):
        assert ph["steps_timed"] == [2] and [s["step"] for s in ph["per_step"]] == [1, 2]  # step 1 = warm-up
        last = ph["per_step"][-1]
        assert ph["step_s"] == last["seconds"] > 0
        assert ph["samples_per_s"] == round(4 / last["seconds"], 3)
        parts = last["generate"] + last["score"] + last["learn"]
        assert 0 < parts <= last["seconds"] + 1e-3  # the phases are inside the step's wall time
        rollout = sum(last[f"rollout_{k}"] for k in ("tokenize", "encode", "decode", "gather"))
        assert 0 < rollout <= last["generate"] + 1e-3
        assert ph["outside_steps_s"] > 0  # loading, start-up, checkpoint and adapter writing
    assert res["speedup"] == round(dp["samples_per_s"] / one["samples_per_s"], 3)
    assert res["meets_target"] == (res["speedup"] >= 1.8)
    assert set(res["phase_speedup"]) >= {"generate", "score", "learn"}
    logs = res["one_vs_data_parallel_logs"]
    assert logs["steps"] == 2 and logs["within_tolerance"], logs  # fp32: the same run
    assert logs["max_abs_diff"]["response_length"] == 0 and logs["max_abs_diff"]["score"] == 0


def test_bench_lppo_scale_refuses_a_batch_the_gpus_do_not_divide(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--batch-size", "5", "--work",
                           str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "bench_lppo_scale: error: --batch-size 5 is not a multiple of --gpus 2"


def test_a_resumed_run_drops_the_timing_rows_of_the_steps_it_redoes(tmp_path):
    from layersafe.rl.onpolicy import TIMING_JSONL, _timing_file

    (tmp_path / TIMING_JSONL).write_text("".join(json.dumps({"step": s, "seconds": 1.0}) + "\n" for s in (1, 2, 3)))
    f = _timing_file(tmp_path, 2)  # resumed from the step-2 checkpoint: step 3 is redone
    f.write({"step": 3, "seconds": 2.0})
    f.close()
    rows = [json.loads(l) for l in (tmp_path / TIMING_JSONL).read_text().splitlines()]
    assert [(r["step"], r["seconds"]) for r in rows] == [(1, 1.0), (2, 1.0), (3, 2.0)]


def test_profile_step_times_each_part_of_learning_per_process(tiny_llava_dir, tmp_path):
    """--profile-step runs align through benchmarks/profiled_align.py: every process writes the
    profiled step's learning phase cut into forward / loss / backward / optimizer per minibatch
    (on the CPU the host clock only)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_llava_dir), "--preset", "tiny", "--device", "cpu",
                           "--batch-size", "4", "--mini-batch-size", "2", "--new-tokens", "3", "--steps", "2",
                           "--ppo-epochs", "2", "--prompts", "6", "--json", str(out), "--work", str(tmp_path / "w"),
                           "--budget", "400", "--profile-step", "2"], env=_env(), capture_output=True, text=True,
                          timeout=420)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert "profiled_align.py align --model MODEL" in res["one"]["command"]
    # global batch 4, global minibatch 2, 2 epochs: 4 minibatches of 2 rows (one process) or 1 row (each of two)
    for ph, ranks, rows in ((res["one"], [0], 2), (res["data_parallel"], [0, 1], 1)):
        assert [p["rank"] for p in ph["profile"]] == ranks
        learn_ms = 1000 * ph["per_step"][-1]["learn"]
        for prof in ph["profile"]:
            assert prof["step"] == 2 and prof["minibatches"] == 4 and prof["gpu_ms"] is None
            assert len(prof["padded_tokens"]) == 4 and all(t % rows == 0 and t > rows * 3 for t in prof["padded_tokens"])
            parts = prof["host_ms"]
            assert set(parts) == {"forward", "loss", "backward", "optimizer"} and min(parts.values()) > 0
            assert sum(parts.values()) <= prof["span_host_ms"] <= learn_ms + 1
    assert res["speedup"] > 0


def test_bench_lppo_scale_refuses_a_profile_step_outside_the_run(tmp_path):
    for step in ("-1", "4"):
        proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--steps", "3", "--profile-step", step,
                               "--work", str(tmp_path)], env=_env(), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip() == f"bench_lppo_scale: error: --profile-step {step} must be a step from 1 to --steps 3 (0: off)"
