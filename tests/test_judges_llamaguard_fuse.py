"""Llama Guard ``fuse=on`` (docs/judges.md; layersafe/models/fuse.py): the judge's forward passes
through the compiled RMSNorm / rotary / silu*up give fuse=off's verdicts and P(unsafe) (fp32,
within 1e-5) with prefix=auto and prefix=off; nothing stays patched; a decoder fuse.py does not
target runs unfused with one warning; a bad value is one line. On CUDA (``pytest -m gpu``) the
same with the GPU's kernels."""

from __future__ import annotations

import json
import warnings

import pytest

from layersafe.errors import UserError
from layersafe.judges.base import get_judge
from layersafe.models import fuse

from test_fuse import _counting  # spies on fuse.compiled: (name, dynamic) -> calls
from test_judges_llamaguard import ROWS, _save_llama, _tokenizer


def _verdict_head(model, tok):
    """Weight surgery: every logit but "unsafe"'s and "safe"'s is 0 and those two are +-x for a
    random x of the row's last hidden state, so the greedy first token is always a verdict (no row
    falls back to decoding) while P(unsafe) depends on the whole forward pass, MLP and rotary included."""
    head = model.lm_head.weight
    u, s = tok.convert_tokens_to_ids("unsafe"), tok.convert_tokens_to_ids("safe")
    row = head[u].clone() * 8
    head.zero_()
    head[u], head[s] = row, -row


@pytest.fixture(scope="module")
def lg_verdict(tmp_path_factory):
    return _save_llama(tmp_path_factory.mktemp("lg") / "verdict", _tokenizer(), _verdict_head, seed=1)


def _compare(path, device, monkeypatch, rows=ROWS):
    """Scores of fuse=off and fuse=on for prefix auto and off; asserts they agree."""
    from transformers.models.llama import modeling_llama

    rope = modeling_llama.apply_rotary_pos_emb
    for prefix in ("auto", "off"):
        spec = f"llamaguard:{path},device={device},dtype=float32,mode=forward,batch_size=2,prefix={prefix}"
        calls = _counting(monkeypatch)
        off = get_judge(spec).score(rows)
        assert calls == {}
        on_judge = get_judge(spec + ",fuse=on")
        on = on_judge.score(rows)
        # the fused kernels ran, shape-polymorphic: per batch the first layer's input norm, then 2
        # norms a layer (the last one the final norm) fused with the residual add before each
        assert calls[("rms_norm", True)] >= 1 and calls[("add_rms_norm", True)] >= 4
        assert calls[("silu_mul", True)] >= 2 and calls[("rotary", True)] >= 2
        assert set(calls) == {("rms_norm", True), ("add_rms_norm", True), ("silu_mul", True), ("rotary", True)}
        assert on_judge.summary() == {"parse_errors": 0, "decoded": 0, "prefix_rows": len(rows) * (prefix == "auto")}
        for a, b in zip(on, off):
            assert (a["llamaguard"], a["llamaguard_parse_error"]) == (b["llamaguard"], b["llamaguard_parse_error"])
            assert abs(a["llamaguard_prob"] - b["llamaguard_prob"]) < 1e-5, (prefix, a, b)
        # nothing outlives the forward: modules and the modeling module's function are the class's again
        assert modeling_llama.apply_rotary_pos_emb is rope
        assert not any("forward" in m.__dict__ for m in on_judge.model.modules())
        probs = [s["llamaguard_prob"] for s in off]
        assert max(probs) - min(probs) > 0.5  # rows differ: the comparison can fail
    return on, off


def test_fuse_on_equals_off(lg_verdict, monkeypatch):
    import torch

    torch.set_num_threads(1)  # 2 shared cores
    _compare(lg_verdict, "cpu", monkeypatch)


def test_unsupported_decoder_runs_unfused_with_one_warning(lg_verdict, monkeypatch):
    """A guard decoder outside fuse.FAMILIES (here: Llama taken off the list) is scored unfused."""
    monkeypatch.setattr(fuse, "FAMILIES", ("mistral",))
    calls = _counting(monkeypatch)
    spec = f"llamaguard:{lg_verdict},device=cpu,dtype=float32,mode=forward,batch_size=2"
    off = get_judge(spec).score(ROWS)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        on = get_judge(spec + ",fuse=on").score(ROWS)
    assert [str(x.message) for x in w] == ["kernel fusion off: LlamaModel is not a mistral decoder; running unfused"]
    assert calls == {} and on == off


def test_bad_fuse_option_is_one_line(lg_verdict, tmp_path, capsys):
    with pytest.raises(UserError, match="unknown fuse 'yes'; use on or off"):
        get_judge(f"llamaguard:{lg_verdict},mode=forward,fuse=yes")
    with pytest.raises(UserError, match="fuse=on needs mode=forward"):
        get_judge(f"llamaguard:{lg_verdict},fuse=on")  # mode=generate (the default)
    assert get_judge(f"llamaguard:{lg_verdict}").opts["fuse"] == "off"
    from layersafe.cli import main

    inp = tmp_path / "gen.jsonl"
    inp.write_text(json.dumps(ROWS[0]) + "\n")
    assert main(["judge", "--input", str(inp), "--out", str(tmp_path / "o.jsonl"), "--no-progress",
                 "--judge", f"llamaguard:{lg_verdict},mode=forward,fuse=maybe"]) == 2
    err = capsys.readouterr().err
    assert err == "layersafe: error: llamaguard: unknown fuse 'maybe'; use on or off\n"


@pytest.mark.gpu
def test_fuse_on_equals_off_on_cuda(lg_verdict, monkeypatch):
    """The same on CUDA in fp32: inductor's Triton kernels (and the GPU's attention) against eager,
    with rows long enough for the real prefix (the template's policy text) and several batches."""
    rows = ROWS + [{"prompt": f"question {i} " * (i + 1), "response": "answer " * (3 * i)} for i in range(7)]
    _compare(lg_verdict, "cuda", monkeypatch, rows)
