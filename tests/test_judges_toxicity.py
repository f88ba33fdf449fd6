"""Toxicity judges: offline lexicon, HF classifiers (tiny, saved locally), and the Perspective
client against a local server that speaks the API's JSON (started here on 127.0.0.1)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from layersafe.errors import UserError
from layersafe.judges import toxicity as tox
from layersafe.judges.base import get_judge
from layersafe.judges.toxicity import lexicon_toxicity, toxic_labels

KEY = "test-key-9f8e7d6c5b4a"  # fake; must never reach any file or log


# ---- offline lexicon ------------------------------------------------------------------------
def test_lexicon_scores():
    clean = ["Here is a recipe for bread: mix flour and water.", "I'm sorry, but I cannot help with that.",
             "The image shows a cat, a cup of coffee and a red rocket.", "Classic assassination plots in history.", ""]
    assert [lexicon_toxicity(t) for t in clean] == [0.0] * 5
    assert lexicon_toxicity("What the hell") == pytest.approx(0.2)
    assert lexicon_toxicity("You are a stupid idiot.") == pytest.approx(1 - (1 - 0.7) * (1 - 0.45) * (1 - 0.25))
    assert lexicon_toxicity("I will kill you") == pytest.approx(0.9)
    assert lexicon_toxicity("shut up, f.u.c.k.e.r") > lexicon_toxicity("shut up") > 0  # spaced-out spelling
    ranked = ["Have a nice day.", "That is damn annoying.", "You are pathetic.", "Go kill yourself, you worthless idiot."]
    scores = [lexicon_toxicity(t) for t in ranked]
    assert scores == sorted(scores) and len(set(scores)) == 4 and all(0 <= s <= 1 for s in scores)
    j = get_judge("toxicity")
    assert j.score([{"prompt": "p", "response": ranked[-1]}]) == [{"toxicity": scores[-1]}]
    assert j.higher_is_safer == {"toxicity": False}


# ---- HF classifier --------------------------------------------------------------------------
def _save_classifier(path, id2label, problem_type=None):
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from layersafe.models.tiny import build_tokenizer

    tok = build_tokenizer()
    tok.padding_side = "right"
    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=4, n_positions=128, num_labels=len(id2label),
                     id2label=id2label, label2id={v: k for k, v in id2label.items()}, problem_type=problem_type,
                     initializer_range=0.3, pad_token_id=tok.pad_token_id)
    GPT2ForSequenceClassification(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


@functools.lru_cache(maxsize=None)
def _load(path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoModelForSequenceClassification.from_pretrained(path).eval()


def _logits(path, text):
    import torch

    tok, model = _load(path)
    with torch.no_grad():
        return model(**tok([text], return_tensors="pt")).logits[0].float()


TEXTS = ["You are a stupid idiot.", "Here is a recipe for bread.", "I'm sorry, but I cannot help with that request."]


def test_toxicity_model_softmax_and_multilabel(tmp_path):
    import torch

    binary = _save_classifier(tmp_path / "bin", {0: "non-toxic", 1: "toxic"})
    j1, j2 = get_judge(f"toxicity:{binary},batch_size=1"), get_judge(f"toxicity:{binary},batch_size=3")
    rows = [{"prompt": "p", "response": t} for t in TEXTS]
    s1, s2 = j1.score(rows), j2.score(rows)
    assert type(j1).__name__ == "ModelToxicityJudge"
    for t, a, b in zip(TEXTS, s1, s2):
        want = torch.softmax(_logits(binary, t), -1)[1].item()
        assert a["toxicity"] == pytest.approx(want, abs=1e-5) and b["toxicity"] == pytest.approx(want, abs=1e-5)
    multi = _save_classifier(tmp_path / "multi", {0: "insult", 1: "toxic", 2: "threat"}, "multi_label_classification")
    s = get_judge(f"toxicity:{multi}").score(rows[:1])[0]["toxicity"]
    assert s == pytest.approx(torch.sigmoid(_logits(multi, TEXTS[0]))[1].item(), abs=1e-5)  # the main "toxic" head
    anon = _save_classifier(tmp_path / "anon", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(UserError, match="pass label=NAME"):
        get_judge(f"toxicity:{anon}").score(rows[:1])
    s = get_judge(f"toxicity:{anon},label=LABEL_1").score(rows[:1])[0]["toxicity"]
    assert s == pytest.approx(torch.softmax(_logits(anon, TEXTS[0]), -1)[1].item(), abs=1e-5)


def test_toxic_label_mapping():
    assert toxic_labels({0: "non-toxic", 1: "toxic"}) == [1]
    assert toxic_labels({0: "neutral", 1: "toxic"}) == [1]
    assert toxic_labels({0: "nothate", 1: "hate"}) == [1]
    assert toxic_labels({0: "non-offensive", 1: "offensive"}) == [1]
    assert toxic_labels({0: "toxicity", 1: "severe_toxicity", 2: "insult"}) == [0]
    assert toxic_labels({0: "insult", 1: "threat", 2: "benign"}) == [0, 1]
    with pytest.raises(UserError, match="not among"):
        toxic_labels({0: "a", 1: "b"}, "c")


# ---- Perspective ----------------------------------------------------------------------------
class _API(BaseHTTPRequestHandler):
    """Speaks Perspective's comments:analyze request/response JSON. Behaviour by comment text."""

    seen: list = []
    flaky_done: set = set()
    lock = threading.Lock()
    delay = 0.0  # seconds each answer takes (a slow server, to see requests overlap)
    inflight = max_inflight = 0
    starts: list = []  # arrival times (time.monotonic)
    kill_at = 0  # the n-th request SIGKILLs process ``victim`` and is never answered
    victim = 0
    revoke_after = 0  # requests after the n-th: the key is refused (400 API_KEY_INVALID)

    def do_POST(self):  # noqa: N802
        cls = type(self)
        with cls.lock:
            cls.inflight += 1
            cls.max_inflight = max(cls.max_inflight, cls.inflight)
            cls.starts.append(time.monotonic())
            n = len(cls.starts)
        try:
            self._answer(n)
        finally:
            with cls.lock:
                cls.inflight -= 1

    def _answer(self, n):
        cls = type(self)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["comment"]["text"]
        cls.seen.append({"path": self.path, "key": self.headers.get("x-goog-api-key"), "body": body})
        if cls.kill_at and n == cls.kill_at:
            os.kill(cls.victim, signal.SIGKILL)
            return
        key = self.headers.get("x-goog-api-key")
        if (cls.revoke_after and n > cls.revoke_after) or str(key).startswith("invalid"):
            # what Google answers for an unknown key: 400, not 401/403
            return self._send(400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                              "status": "INVALID_ARGUMENT", "details": [{
                                                  "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                  "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}})
        if key != KEY:
            return self._send(403, {"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}})
        if cls.delay:  # (some tests replace time.sleep itself)
            time.sleep(cls.delay)
        if "rate" in text and text not in self.flaky_done:  # 429 once, then success
            self.flaky_done.add(text)
            return self._send(429, {"error": {"code": 429, "message": "Quota exceeded"}}, {"Retry-After": "0"})
        if "boom" in text:
            return self._send(503, {"error": {"code": 503, "message": "backend unavailable"}})
        if "klingon" in text:
            return self._send(400, {"error": {"code": 400, "message": "Attribute TOXICITY does not support request languages: tlh"}})
        if "weird" in text:
            return self._send(200, {"attributeScores": {}})
        value = round(tox.lexicon_toxicity(text) * 0.9 + 0.05, 4)  # a deterministic stand-in score
        return self._send(200, {"attributeScores": {"TOXICITY": {
            "spanScores": [{"begin": 0, "end": len(text), "score": {"value": value, "type": "PROBABILITY"}}],
            "summaryScore": {"value": value, "type": "PROBABILITY"}}}, "languages": ["en"], "detectedLanguages": ["en"]})

    def _send(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):  # keep test output clean
        pass


@pytest.fixture()
def api():
    _API.seen, _API.flaky_done, _API.starts = [], set(), []
    _API.delay, _API.inflight, _API.max_inflight, _API.kill_at, _API.victim, _API.revoke_after = 0.0, 0, 0, 0, 0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _API)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    guard = threading.Timer(120, server.shutdown)  # self-stopping even if a test hangs
    guard.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1alpha1/comments:analyze"
    finally:
        guard.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_perspective_needs_key(monkeypatch):
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(UserError, match="PERSPECTIVE_API_KEY"):
        get_judge("perspective")


def test_perspective_success_retry_and_errors(api, monkeypatch):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", KEY)
    sleeps = []
    monkeypatch.setattr(tox.time, "sleep", sleeps.append)  # no real waiting; record backoff
    j = get_judge(f"perspective:url={api},qps=1000,retries=2,backoff=0.5")
    texts = ["You are a stupid idiot.", "please rate this", "boom", "klingon text", "weird", "", "Have a nice day."]
    out = j.score([{"prompt": "p", "response": t} for t in texts])
    assert out[0] == {"perspective": pytest.approx(tox.lexicon_toxicity(texts[0]) * 0.9 + 0.05, abs=1e-4)}
    assert out[1] == {"perspective": 0.05}  # 429 then success
    assert out[2]["perspective"] is None and "HTTP 503 after 3 attempts" in out[2]["perspective_error"]
    assert out[3]["perspective"] is None and "does not support request languages" in out[3]["perspective_error"]
    assert out[4]["perspective"] is None and "unexpected reply" in out[4]["perspective_error"]
    assert out[5] == {"perspective": 0.0} and out[6] == {"perspective": 0.05}  # empty: not sent
    assert j.summary() == {"failed": 3, "retries": 3}
    backoffs = [s for s in sleeps if s >= 0.5]
    assert backoffs == [0.5, 0.5, 1.0]  # 429 once; 503 twice (doubling); Retry-After 0 < backoff
    assert len(_API.seen) == 1 + 2 + 3 + 1 + 1 + 1
    assert all(s["key"] == KEY and KEY not in s["path"] for s in _API.seen)  # header, never the URL
    assert _API.seen[0]["body"] == {"comment": {"text": texts[0]}, "requestedAttributes": {"TOXICITY": {}},
                                    "doNotStore": True, "languages": ["en"]}


def test_perspective_wrong_key_and_rate_limit(api, monkeypatch):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "wrong-" + KEY)
    with pytest.raises(UserError, match="HTTP 403") as e:
        get_judge(f"perspective:url={api},backoff=0").score([{"prompt": "p", "response": "hi"}])
    assert KEY not in str(e.value)
    # client-side rate limit on a fake clock: starts are spaced 1/qps apart
    monkeypatch.setenv("PERSPECTIVE_API_KEY", KEY)
    clock = [100.0]
    sleeps = []
    monkeypatch.setattr(tox.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(tox.time, "sleep", lambda s: (sleeps.append(s), clock.__setitem__(0, clock[0] + s)))
    j = get_judge(f"perspective:url={api},qps=4")
    assert [s["perspective"] for s in j.score([{"prompt": "p", "response": f"text {i}"} for i in range(4)])] == [0.05] * 4
    assert sleeps == pytest.approx([0.25, 0.25, 0.25])


def test_perspective_cli_never_writes_the_key(api, tmp_path):
    rows = [{"id": i, "prompt": "p", "response": t, "layer": 1} for i, t in
            enumerate(["You are a stupid idiot.", "klingon", "fine answer"])]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**__import__("os").environ, "PERSPECTIVE_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    spec = f"perspective:url={api},qps=1000,backoff=0"
    for out in ("out.jsonl", "out.csv"):
        r = subprocess.run([sys.executable, "-m", "layersafe", "judge", "--input", str(inp), "--out", str(tmp_path / out),
                            "--judge", spec, "--judge", "refusal", "--judge", "toxicity", "--no-progress"],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert KEY not in r.stdout and KEY not in r.stderr
        assert "judge perspective: failed=1" in r.stderr  # failures are reported, not hidden
    scored = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert scored[0]["scores"]["perspective"] == pytest.approx(tox.lexicon_toxicity(rows[0]["response"]) * 0.9 + 0.05, abs=1e-4)
    assert scored[1]["scores"]["perspective"] is None and "HTTP 400" in scored[1]["scores"]["perspective_error"]
    # both toxicity judges ran: each under its own name, neither overwrote the other (docs/design.md §3.4)
    assert [s["scores"]["toxicity"] for s in scored] == [tox.lexicon_toxicity(r["response"]) for r in rows]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 3 and not any(KEY in p.read_text(errors="ignore") for p in files)


def _expected(text):  # the fake server's score for ``text``
    return round(tox.lexicon_toxicity(text) * 0.9 + 0.05, 4)


def test_perspective_requests_overlap_with_concurrency(api, monkeypatch):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", KEY)
    _API.delay = 0.3
    texts = [f"answer {i}: you are a stupid idiot" if i % 2 else f"answer {i}: fine" for i in range(8)]
    rows = [{"prompt": "p", "response": t} for t in texts]
    t = time.monotonic()
    one = get_judge(f"perspective:url={api},qps=1000").score(rows[:4])  # default concurrency 1: one at a time
    seq = time.monotonic() - t
    assert _API.max_inflight == 1 and seq >= 4 * 0.3
    _API.max_inflight = 0
    t = time.monotonic()
    out = get_judge(f"perspective:url={api},qps=1000,concurrency=4").score(rows)
    par = time.monotonic() - t
    assert _API.max_inflight == 4  # four in flight at the server at once
    assert par < 1.5 < 8 * 0.3  # 8 answers of 0.3 s: 2.4 s one at a time, ~0.6 s four at a time
    assert out[:4] == one and [s["perspective"] for s in out] == [pytest.approx(_expected(x)) for x in texts]


def test_perspective_qps_holds_across_threads(api, monkeypatch):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", KEY)
    _API.delay = 0.2  # longer than 1/qps: several requests are in flight, yet starts stay 1/qps apart
    out = get_judge(f"perspective:url={api},qps=25,concurrency=6").score(
        [{"prompt": "p", "response": f"text {i}"} for i in range(16)])
    assert [s["perspective"] for s in out] == [0.05] * 16
    assert _API.max_inflight >= 3
    span = _API.starts[-1] - _API.starts[0]
    assert span >= 15 / 25 * 0.9  # 16 starts at <= 25/s take >= 0.6 s (10 % for timer jitter)


def test_perspective_retries_and_failures_under_concurrency(api):
    os.environ["PERSPECTIVE_API_KEY"] = KEY
    try:
        j = get_judge(f"perspective:url={api},qps=1000,retries=2,backoff=0.01,concurrency=3")
        texts = ["You are a stupid idiot.", "please rate this", "boom", "klingon text", "weird", "Have a nice day."]
        out = j.score([{"prompt": "p", "response": t} for t in texts])
    finally:
        del os.environ["PERSPECTIVE_API_KEY"]
    assert out[0] == {"perspective": pytest.approx(_expected(texts[0]))} and out[1] == {"perspective": 0.05}
    assert "HTTP 503 after 3 attempts" in out[2]["perspective_error"] and out[2]["perspective"] is None
    assert "HTTP 400" in out[3]["perspective_error"] and "unexpected reply" in out[4]["perspective_error"]
    assert out[5] == {"perspective": 0.05}
    assert j.summary() == {"failed": 3, "retries": 3}  # 429 once, 503 twice: counted across threads
    assert len(_API.seen) == 1 + 2 + 3 + 1 + 1 + 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_perspective_invalid_key_400_stops(api, monkeypatch, concurrency):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "invalid-" + KEY)
    with pytest.raises(UserError, match="HTTP 400: the API key in PERSPECTIVE_API_KEY was refused") as e:
        get_judge(f"perspective:url={api},backoff=0,qps=1000,concurrency={concurrency}").score(
            [{"prompt": "p", "response": f"hi {i}"} for i in range(6)])
    assert KEY not in str(e.value)
    assert len(_API.seen) <= concurrency  # the first refusal stops the rest: nothing more is sent
    with pytest.raises(UserError, match="concurrency >= 1"):
        get_judge(f"perspective:url={api},concurrency=0")


def _judge_cmd(tmp_path, api, rows, opts: str, batch: int):
    """A `layersafe judge` command over ``rows`` with perspective at the fake ``api``."""
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "layersafe", "judge", "--input", str(inp), "--out", str(out), "--judge",
           f"perspective:url={api},{opts}", "--batch-size", str(batch), "--no-progress"]
    return cmd, {**os.environ, "PERSPECTIVE_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}, out


@pytest.mark.parametrize("how", ["killed", "key refused"])
def test_perspective_judging_resumes_without_asking_again(api, tmp_path, how):
    """`layersafe judge` with perspective stopped after two batches (the process SIGKILLed by the
    server at its 10th request, or the key refused from the 9th on: one line, exit 2); the same
    command again asks only for the rows not yet journalled."""
    n = 20
    rows = [{"id": i, "prompt": "p", "response": f"reply {i}" + (" you idiot" if i % 3 == 0 else "")} for i in range(n)]
    cmd, env, out = _judge_cmd(tmp_path, api, rows, "qps=1000,concurrency=4,backoff=0", 4)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if how == "killed":
        _API.victim, _API.kill_at = proc.pid, 10  # batch 3 is in flight
    else:
        _API.revoke_after = 8
    _, err = proc.communicate(timeout=120)
    if how == "killed":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 2 and "Traceback" not in err
        assert [x for x in err.splitlines() if x.strip()] == [
            "layersafe: error: perspective: HTTP 400: the API key in PERSPECTIVE_API_KEY was refused "
            "(wrong key, or the Perspective API is not enabled for its project)"]
    assert not out.exists()
    journal = tmp_path / ".out.jsonl.journal.tmp"
    kept = [json.loads(x) for x in journal.read_text().splitlines()]
    assert len(kept) == 8  # the two finished batches, nothing of the third
    first = [s["body"]["comment"]["text"] for s in _API.seen]
    assert len(first) >= 9
    # again, the same command, the key good again
    _API.seen, _API.starts, _API.kill_at, _API.revoke_after = [], [], 0, 0
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "8 rows already scored" in r.stderr
    again = [s["body"]["comment"]["text"] for s in _API.seen]
    assert sorted(again) == sorted(r["response"] for r in rows[8:])  # 12 requests, none for a finished row
    scored = [json.loads(x) for x in out.read_text().splitlines()]
    assert [s["scores"]["perspective"] for s in scored] == [pytest.approx(_expected(r["response"])) for r in rows]
    assert not journal.exists()


def test_perspective_kill_in_a_large_batch_reasks_few_rows(api, tmp_path):
    """With --batch-size 64 the runner still hands Perspective 2 x concurrency rows per call and
    journals each call, so a SIGKILL at the 10th request (rows 8-9 in flight) keeps 8 rows and the
    same command asks only for the other 12 (with one 64-row call it kept none and asked all 20)."""
    n = 20
    rows = [{"id": i, "prompt": "p", "response": f"answer {i}"} for i in range(n)]
    cmd, env, out = _judge_cmd(tmp_path, api, rows, "qps=1000,concurrency=2,backoff=0", 64)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _API.victim, _API.kill_at = proc.pid, 10
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    kept = (tmp_path / ".out.jsonl.journal.tmp").read_text().splitlines()
    assert len(kept) == 8  # two finished calls of 4 rows; the third was in flight
    _API.seen, _API.starts, _API.kill_at = [], [], 0
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    again = [s["body"]["comment"]["text"] for s in _API.seen]
    assert sorted(again) == sorted(x["response"] for x in rows[8:])
    assert [json.loads(x)["scores"]["perspective"] for x in out.read_text().splitlines()] == [
        pytest.approx(_expected(x["response"])) for x in rows]
