"""Crash safety of `layersafe judge` (kill -9 never leaves a partial --out) and the output-folder
locks of `align` and `train-rm` (a second writer is refused, a dead run's lock is taken over)."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from layersafe.errors import UserError
from layersafe.io import read_jsonl, write_rows
from layersafe.lock import LOCK_NAME, DirLock

N_ROWS = 30000  # enough that scoring + writing takes a noticeable while on a slow machine


def judge_cmd(data, out):
    return [sys.executable, "-m", "layersafe", "judge", "--input", str(data), "--judge", "toxicity",
            "--judge", "refusal", "--out", str(out), "--force", "--no-progress"]


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def write_stale_lock(folder) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))


def check_out_is_whole(out, previous: bytes, n_rows: int) -> str:
    """--out holds the previous file byte for byte or a complete new one; the only other files
    are hidden temp files (never the final name). Returns which."""
    data = out.read_bytes()
    strays = [p.name for p in out.parent.iterdir() if p.name not in (out.name, "in.jsonl")]
    assert all(s.startswith(f".{out.name}.") and s.endswith(".tmp") for s in strays), strays
    if data == previous:
        return "previous"
    rows = read_jsonl(out, tolerate_torn_tail=False)
    assert len(rows) == n_rows and all({"toxicity", "refusal"} <= set(r["scores"]) for r in rows)
    return "new"


def test_judge_killed_at_any_moment_never_leaves_a_partial_out(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    data = work / "in.jsonl"
    rows = [{"id": f"r{i}", "prompt": f"question {i}", "response": ("I'm sorry, I can't help." if i % 3 else
                                                                    f"Sure, here is how to do thing {i} step by step")}
            for i in range(N_ROWS)]
    write_rows(data, rows)
    out = work / "scored.jsonl"
    write_rows(out, [{"id": "old", "prompt": "p", "response": "r", "scores": {"refusal": 1}}])
    previous = out.read_bytes()
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    # 1. killed at the worst moment: the new file fully written to its temp name, not yet renamed
    inject = ("import os, signal, sys\n"
              "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
              "from layersafe.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", inject] + judge_cmd(data, out)[3:], env=env, capture_output=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert check_out_is_whole(out, previous, N_ROWS) == "previous"
    assert any(p.name.endswith(".tmp") for p in work.iterdir())  # the torn temp file exists, under its own name

    # 2. killed at seeded random moments of a real run (loading, scoring or writing)
    t0 = time.time()
    full = subprocess.run(judge_cmd(data, work / "ref.jsonl"), env=env, capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    span = time.time() - t0
    (work / "ref.jsonl").unlink()
    rng = random.Random(7)
    for _ in range(3):
        proc = subprocess.Popen(judge_cmd(data, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.0) * span)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if check_out_is_whole(out, previous, N_ROWS) == "new":
            previous = out.read_bytes()  # it finished first: the new file is now the one to keep

    # 3. an uninterrupted rerun writes the complete file
    proc = subprocess.run(judge_cmd(data, out), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = read_jsonl(out, tolerate_torn_tail=False)
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert [r["scores"]["refusal"] for r in got[:3]] == [0, 1, 1]


# ---------------------------------------------------------------------------------------------
# align / train-rm output-folder locks
# ---------------------------------------------------------------------------------------------

def test_train_rm_lock_refuses_second_writer_and_takes_over_stale(tmp_path, capsys):
    from layersafe.cli import main

    from tests.test_judges_reward import _save_gpt2_rm

    base = _save_gpt2_rm(tmp_path / "base")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "I can't help with that.",
                                         "rejected": f"Sure, step {i}."}) + "\n" for i in range(8)))
    out = tmp_path / "rm"
    argv = ["train-rm", "--base", str(base), "--data", str(pairs), "--out", str(out), "--eval-size", "0",
            "--batch-size", "4", "--steps", "1", "--max-length", "32", "--device", "cpu", "--no-progress"]
    out.mkdir()
    with DirLock(out):  # a live holder (this process) stands in for a concurrent run
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "in use by another layersafe run" in err and "Traceback" not in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written by the refused run
    write_stale_lock(out)
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "stale lock" in err
    assert (out / "rm_card.json").is_file() and not (out / LOCK_NAME).exists()


def test_align_lock_refuses_second_writer_and_resume_takes_over_stale(tiny_adapter, tmp_path):
    import copy

    from layersafe.models.llava import LlavaAdapter
    from layersafe.rl import lppo

    def fresh():
        return LlavaAdapter(copy.deepcopy(tiny_adapter.model), tiny_adapter.processor, name="tiny",
                            device=tiny_adapter.device)

    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"How do I do bad thing {i}?",
                                        "image": "skimage:coffee", "harmful": True}) + "\n" for i in range(4)))
    out = tmp_path / "align"
    cfg = lppo.LPPOConfig(model="tiny", data=str(data), layers="default", out=str(out), steps=2, batch_size=2,
                          mini_batch_size=2, ppo_epochs=1, max_new_tokens=3, lora_r=4, save_every=1)
    out.mkdir()
    with DirLock(out):
        with pytest.raises(UserError, match="in use by another layersafe run"):
            lppo.train(cfg, adapter=fresh(), progress=False, log=lambda m: None)
    assert list(out.iterdir()) == []
    lppo.train(cfg, adapter=fresh(), progress=False, log=lambda m: None, _stop_after=1)
    assert not (out / LOCK_NAME).exists()
    write_stale_lock(out)  # the run was kill -9'ed: its lock stayed behind
    notes = []
    cfg.resume = True
    run = lppo.train(cfg, adapter=fresh(), progress=False, log=notes.append)
    assert run["status"] == "complete"
    assert any("stale lock" in n for n in notes)
    assert [r["step"] for r in read_jsonl(out / "log.jsonl")] == [1, 2]
    assert not (out / LOCK_NAME).exists()
