"""Data-parallel scan and judging (docs/scale.md): two processes under torch.distributed.run (gloo
on CPU) write exactly the rows and scores of one process; a launch killed mid-scan resumes to the
same file; a second launch into a busy folder is refused in one line, writing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from layersafe import distributed as dist
from layersafe.errors import UserError
from layersafe.io import read_jsonl
from layersafe.lock import DirLock

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins"]


def _data(tmp_path: Path, n: int) -> Path:
    rows = [{"id": f"s{i:02d}", "prompt": f"Tell me about picture {i}" + " please" * (i % 4),
             "image": f"skimage:{PHOTOS[i % len(PHOTOS)]}", "harmful": i % 3 != 0} for i in range(n)]
    rows.insert(3, {"id": "broken", "prompt": "What is this?", "image": "missing.png"})  # a failed row per layer
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])}


def _scan_cmd(model, data, out, port, *extra):
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
            "-m", "layersafe", "scan", "--model", str(model), "--data", str(data), "--out", str(out),
            "--max-new-tokens", "6", "--batch-size", "3", "--no-report", "--no-progress", *extra]


def _reference(adapter, model, data, out, layers):
    from layersafe.scan import ScanConfig, run_scan

    run_scan(ScanConfig(model=str(model), dataset=str(data), layers=layers, out=str(out), max_new_tokens=6,
                        batch_size=3, judges=[]), adapter=adapter, progress=False, log=lambda m: None)
    return (out / "generations.jsonl").read_bytes()


def _save_rm(path):
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from layersafe.models.tiny import build_tokenizer

    tok = build_tokenizer()
    tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=256, num_labels=1,
                     initializer_range=0.2, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    GPT2ForSequenceClassification(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of worker ``rank`` started by the torchrun process ``launcher`` (from /proc)."""
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == launcher and f"\0RANK={rank}\0".encode() in b"\0" + (p / "environ").read_bytes():
                return int(p.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's pid through /proc")
def test_killed_rank_then_resume_equals_uninterrupted(tiny_llava_dir, tiny_adapter, tmp_path):
    """Two ranks scan, rank 1 is killed; two ranks resume and judge (refusal + a reward model):
    generations.jsonl is the uninterrupted one-process file byte for byte, scores are one process's.
    (A fresh two-process scan against one process: tests/test_distributed_bench.py.)"""
    from layersafe.evaluate import judge_run

    data = _data(tmp_path, 20)
    ref = tmp_path / "ref"
    expected = _reference(tiny_adapter, tiny_llava_dir, data, ref, "all")
    total = expected.count(b"\n")
    judges = ["refusal", f"reward:{_save_rm(tmp_path / 'rm')},device=cpu,batch_size=4"]
    judge_run(ref, judges, progress=False, log=lambda m: None)
    out = tmp_path / "dp"
    part1 = dist.part_path(out / "generations.jsonl", 1)
    proc = subprocess.Popen(_scan_cmd(tiny_llava_dir, data, out, 29643, "--layers", "all", "--judge", "none"),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    killed = None
    while proc.poll() is None and time.time() < deadline:
        n = part1.read_bytes().count(b"\n") if part1.exists() else 0
        if n >= 15:
            killed = _rank_pid(proc.pid, 1)
            if killed:
                os.kill(killed, signal.SIGKILL)  # rank 1 dies mid-scan; torchrun stops rank 0
                break
        time.sleep(0.02)
    proc.communicate(timeout=120)
    assert killed and proc.returncode != 0
    assert part1.exists() and not (out / "generations.jsonl").exists()
    written = sum(p.read_bytes().count(b"\n") for p in dist.part_files(out / "generations.jsonl"))
    assert 15 <= written < total
    # --resume with two processes: the parts are merged, the rest is generated, nothing twice.
    proc = subprocess.run(_scan_cmd(tiny_llava_dir, data, out, 29645, "--layers", "all", "--resume",
                                    *[x for j in judges for x in ("--judge", j)]),
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "merged" in proc.stderr and proc.stdout.count("scan complete") == 1  # rank 0 reports
    assert (out / "generations.jsonl").read_bytes() == expected  # the uninterrupted one-process file
    rows = read_jsonl(out / "generations.jsonl")
    assert len(rows) == 21 * 7 and sum(r["error"] is not None for r in rows) == 7  # the broken image: 7 failed rows
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["world_size"] == 2
    st = run["stats"]
    assert st["skipped_done"] == written and st["generated"] + st["failed"] == total - written
    assert sum(st["per_rank_generated"]) == st["generated"] and min(st["per_rank_generated"]) > 0
    # Judged together, batches shared round robin: the scores of one process judging alone.
    got, want = read_jsonl(out / "scores.jsonl"), read_jsonl(ref / "scores.jsonl")
    assert [(r["sample_id"], r["layer"]) for r in got] == [(r["sample_id"], r["layer"]) for r in want]
    for g, w in zip(got, want):
        assert (g.get("scores") or {}).keys() == (w.get("scores") or {}).keys()
        for k, v in (w.get("scores") or {}).items():
            assert g["scores"][k] == pytest.approx(v, abs=1e-6), (g["sample_id"], g["layer"], k)
    assert sum("reward" in (r.get("scores") or {}) for r in got) == 20 * 7
    assert (out / "metrics.csv").read_text() == (ref / "metrics.csv").read_text()
    # no part files, journals or lock left behind
    assert sorted(p.name for p in out.iterdir()) == ["generations.jsonl", "metrics.csv", "run.json", "scores.jsonl"]


def test_second_launch_into_a_busy_folder_fails_in_one_line(tiny_llava_dir, tmp_path):
    data = _data(tmp_path, 2)
    out = tmp_path / "busy"
    out.mkdir()
    (out / "generations.jsonl").write_text('{"sample_id": "s00", "layer": 0, "response": "x"}\n')
    before = (out / "generations.jsonl").read_bytes()
    with DirLock(out):  # stands in for another run writing there
        proc = subprocess.run(_scan_cmd(tiny_llava_dir, data, out, 29647, "--layers", "0", "--resume"),
                              env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    # One line from each process that got to print it (torchrun then adds its own failure report, and
    # on a loaded machine it may stop the second process first); no traceback of ours.
    ours = [l for l in proc.stderr.splitlines() if l.startswith("layersafe: error:")]
    assert len(ours) in (1, 2) and all("in use by another layersafe run" in l for l in ours), proc.stderr[-2000:]
    assert "layersafe/" not in proc.stderr
    assert (out / "generations.jsonl").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["generations.jsonl"]  # no part file, no run.json


# ---- helpers, in one process ------------------------------------------------------------------

def test_merge_parts_sorts_dedupes_and_cuts_torn_tails(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"k": 2}\n')
    dist.part_path(path, 0).write_text('{"k": 1}\n{"k": 2, "dup": true}\n')
    dist.part_path(path, 3).write_text('{"k": 0}\n{"k": 5, "torn')  # a rank killed mid-line
    assert [p.name for p in dist.part_files(path)] == ["g.part-0.jsonl", "g.part-3.jsonl"]
    assert dist.merge_parts(path, identity=lambda r: r["k"], order=lambda r: r["k"]) == 2
    assert read_jsonl(path, tolerate_torn_tail=False) == [{"k": 0}, {"k": 1}, {"k": 2}]
    assert not dist.part_files(path)
    assert dist.merge_parts(path, identity=lambda r: r["k"], order=lambda r: r["k"]) == 0  # nothing to do


def test_row_order_is_the_one_process_order():
    from types import SimpleNamespace

    from layersafe.scan.engine import row_order

    samples = [SimpleNamespace(id=x) for x in "abcde"]
    key = row_order(samples, [0, 5], batch_size=2)
    rows = [{"sample_id": s, "layer": l, "error": "bad" if s == "b" else None} for s in "edcba" for l in (5, 0)]
    got = [(r["sample_id"], r["layer"]) for r in sorted(rows, key=key)]
    # group a,b: b failed (its layers first), then a; group c,d layer-major; group e
    assert got == [("b", 0), ("b", 5), ("a", 0), ("a", 5), ("c", 0), ("d", 0), ("c", 5), ("d", 5), ("e", 0), ("e", 5)]


def test_rank_device_and_environment_checks(monkeypatch):
    from layersafe.scan import ScanConfig
    from layersafe.scan.engine import _rank_device

    info = dist.RankInfo(1, 2, 1)
    with pytest.raises(UserError, match="--device-map spreads one model"):
        _rank_device(ScanConfig(device_map="auto"), info)
    with pytest.raises(UserError, match="every process on one device"):
        _rank_device(ScanConfig(device="cuda:0"), info)
    assert _rank_device(ScanConfig(device="cpu"), info) == "cpu"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(UserError, match="RANK=2 with WORLD_SIZE=2"):
        dist.rank_info()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(UserError, match="MASTER_ADDR/MASTER_PORT are unset"):
        dist.setup(use_cuda=False)


def test_holder_error_names_the_problem(tmp_path):
    from layersafe.lock import holder_error, read_holder

    assert "does not exist" in holder_error(tmp_path, {"pid": 1, "host": "h"})
    with DirLock(tmp_path):
        me = read_holder(tmp_path)
        assert me["pid"] == os.getpid()
        assert holder_error(tmp_path, me) is None
        assert "not by rank 0 of this launch" in holder_error(tmp_path, {**me, "pid": me["pid"] + 1})


def test_sampled_rows_do_not_depend_on_batch_or_process(tiny_adapter, small_dataset, tmp_path):
    """--sample draws each row with its own seed (seed, sample, layer): another --batch-size, hence
    another split over processes, samples the same rows; another --seed samples others."""
    from layersafe.scan import ScanConfig, run_scan

    def rows(name, **kw):
        cfg = dict(model="tiny", dataset=str(small_dataset), layers="0-3", out=str(tmp_path / name), max_new_tokens=8,
                   do_sample=True, temperature=1.5, judges=[])
        run_scan(ScanConfig(**{**cfg, **kw}), adapter=tiny_adapter, progress=False, log=lambda m: None)
        return {(r["sample_id"], r["layer"]): r["response"] for r in read_jsonl(tmp_path / name / "generations.jsonl")}

    a, b, c = rows("a", batch_size=2), rows("b", batch_size=5), rows("c", batch_size=2, seed=1)
    assert len(a) == 20 and a == b
    assert sum(a[k] != c[k] for k in a) >= 10
