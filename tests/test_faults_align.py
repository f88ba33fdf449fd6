"""Crash safety of `align`: kill -9 a real subprocess at random points, resume, compare."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import torch

STEPS = 8


def align_cmd(model, data, out, resume):
    cmd = [sys.executable, "-m", "layersafe", "align", "--model", str(model), "--data", str(data), "--layers", "3,4",
           "--steps", str(STEPS), "--batch-size", "4", "--mini-batch-size", "2", "--ppo-epochs", "1",
           "--max-new-tokens", "3", "--save-every", "1", "--device", "cpu", "--dtype", "float32",
           "--out", str(out), "--no-progress"]
    return cmd + (["--resume"] if resume else [])


def latest_step(out):
    try:
        return int((out / "checkpoints" / "latest").read_text().strip().split("-")[-1])
    except (OSError, ValueError):
        return 0


def log_rows(out):
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines() if l.strip()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_kill9_during_align_then_resume_equals_uninterrupted(tiny_llava_dir, tmp_path):
    rows = [{"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}", "image": "skimage:coffee",
             "harmful": True} for i in range(8)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    ref = tmp_path / "ref"
    proc = subprocess.run(align_cmd(tiny_llava_dir, data, ref, False), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

    out = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    for attempt in range(2):
        if latest_step(out) >= STEPS - 3:  # the first run got far before the kill landed: one kill is enough
            break
        target = rng.randint(latest_step(out) + 1, STEPS - 3)
        p = subprocess.Popen(align_cmd(tiny_llava_dir, data, out, attempt > 0), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 200
        while p.poll() is None and latest_step(out) < target and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(rng.random() * 0.1)  # somewhere inside the next step (or its checkpoint write)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 1 and latest_step(out) < STEPS  # each kill landed before the run could finish
    proc = subprocess.run(align_cmd(tiny_llava_dir, data, out, True), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert log_rows(out) == log_rows(ref)  # every step logged once, same numbers
    final = f"step-{STEPS:07d}"
    wa = torch.load(ref / "checkpoints" / final / "trainable.pt")
    wb = torch.load(out / "checkpoints" / final / "trainable.pt")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
