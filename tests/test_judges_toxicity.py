"""Toxicity judges: offline lexicon, HF classifiers (tiny, saved locally), and the Perspective
client against a local server that speaks the API's JSON (started here on 127.0.0.1)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
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

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["comment"]["text"]
        type(self).seen.append({"path": self.path, "key": self.headers.get("x-goog-api-key"), "body": body})
        if self.headers.get("x-goog-api-key") != KEY:
            return self._send(403, {"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}})
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
    _API.seen, _API.flaky_done = [], set()
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
