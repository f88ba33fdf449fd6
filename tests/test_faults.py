"""Crash safety of the scan: kill -9 a real subprocess scan at random points, resume, compare."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from layersafe.errors import UserError
from layersafe.io import read_jsonl
from layersafe.lock import LOCK_NAME, DirLock
from layersafe.scan import ScanConfig, run_scan

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "cat"]


def make_dataset(tmp_path, n=36):
    rows = [{"id": f"s{i:02d}", "prompt": f"Question number {i}: what do you see here?" + " really" * (i % 5),
             "image": f"skimage:{PHOTOS[i % len(PHOTOS)]}"} for i in range(n)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def scan_cmd(model, data, out, resume):
    cmd = [sys.executable, "-m", "layersafe", "scan", "--model", str(model), "--data", str(data),
           "--layers", "all", "--out", str(out), "--max-new-tokens", "8", "--batch-size", "2",
           "--judge", "none", "--no-report", "--no-progress"]
    return cmd + (["--resume"] if resume else [])


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def key(rows):
    return sorted((r["sample_id"], r["layer"], r["response"], r["response_tokens"]) for r in rows)


def test_kill9_at_random_points_then_resume_equals_uninterrupted(tiny_llava_dir, tiny_adapter, tmp_path):
    data = make_dataset(tmp_path)
    total = 36 * 7
    ref_out = tmp_path / "ref"
    run_scan(ScanConfig(model=str(tiny_llava_dir), dataset=str(data), layers="all", out=str(ref_out),
                        max_new_tokens=8, batch_size=2, judges=[]),
             adapter=tiny_adapter, progress=False, log=lambda m: None)
    expected = read_jsonl(ref_out / "generations.jsonl")
    assert len(expected) == total

    out = tmp_path / "killed"
    gen = out / "generations.jsonl"
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kills = 0
    for attempt in range(3):
        done = count_lines(gen)
        target = rng.randint(done + 1, done + (total - done) // 2)
        proc = subprocess.Popen(scan_cmd(tiny_llava_dir, data, out, resume=attempt > 0), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while proc.poll() is None and count_lines(gen) < target and time.time() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert (out / LOCK_NAME).exists() or proc.returncode == 0  # a killed run leaves its lock behind
    assert kills >= 2
    partial = count_lines(gen)
    assert 0 < partial < total
    # resume after the kills: the stale lock is taken over, nothing lost, nothing duplicated
    proc = subprocess.run(scan_cmd(tiny_llava_dir, data, out, resume=True), env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = read_jsonl(gen, tolerate_torn_tail=False)
    assert len(got) == total
    assert len({(r["sample_id"], r["layer"]) for r in got}) == total
    assert key(got) == key(expected)
    assert not (out / LOCK_NAME).exists()


def test_second_writer_is_refused(tiny_adapter, tmp_path):
    data = make_dataset(tmp_path, n=2)
    out = tmp_path / "o"
    out.mkdir()
    # a live lock held by this very process stands in for another run writing to the folder
    with DirLock(out):
        with pytest.raises(UserError, match="in use by another layersafe run"):
            run_scan(ScanConfig(model="x", dataset=str(data), out=str(out), resume=True, judges=[]),
                     adapter=tiny_adapter, progress=False, log=lambda m: None)
    assert not (out / LOCK_NAME).exists()


def test_stale_lock_is_taken_over(tiny_adapter, tmp_path):
    data = make_dataset(tmp_path, n=2)
    out = tmp_path / "o"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (out / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    notes = []
    run = run_scan(ScanConfig(model="x", dataset=str(data), layers="default", out=str(out), max_new_tokens=3,
                              judges=[]), adapter=tiny_adapter, progress=False, log=notes.append)
    assert run["stats"]["generated"] == 2
    assert any("stale lock" in n for n in notes)
    assert not (out / LOCK_NAME).exists()
