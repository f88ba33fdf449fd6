"""benchmarks/bench_scale.py's plumbing on CPU (the GPU figures come from the same script on 2
H200s, docs/benchmarks.md): one process, two gloo processes and --device-map auto scan the tiny
model; the JSON carries each phase's figures, and the two-process rows are the one-process rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_scale_runs_every_phase_on_cpu(tiny_llava_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out, work = tmp_path / "bench.json", tmp_path / "work"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--model", str(tiny_llava_dir),
                           "--device", "cpu", "--dtype", "float32", "--samples", "5", "--layers", "0-2",
                           "--new-tokens", "3", "--batch-size", "2", "--dm-layers", "0", "--json", str(out),
                           "--work", str(work), "--budget", "600"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # The bug of issue 20 was every row twice: two processes write exactly the one-process file.
    assert (work / "dp" / "generations.jsonl").read_bytes() == (work / "one" / "generations.jsonl").read_bytes()
    res = json.loads(out.read_text())
    one, dp, dm = res["one"], res["data_parallel"], res["device_map_auto"]
    assert one["pairs"] == dp["pairs"] == 15 and dm["pairs"] == 5
    assert 0 < one["new_tokens"] <= 45 and one["scan_s"] > 0 and one["load_and_start_s"] > 0
    # groups of 2 samples (2, 2, 1) x 3 layers: generate calls of 2,2,2 | 2,2,2 | 2,1 pairs, round robin
    assert sorted(dp["per_rank_generated"]) == [7, 8]
    assert dp["identical_rows_vs_one"] == "15/15" and dm["identical_rows_vs_one"] == "5/5"
    assert dp["speedup_vs_one"] > 0 and dm["pairs_per_s_vs_one"] > 0
    assert dp["command"].startswith("torchrun --nproc_per_node 2 -m layersafe scan --model MODEL --data DATA")
    assert "--device-map auto" in dm["command"] and dm["processes"] == 1
