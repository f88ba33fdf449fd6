"""The scan's image prefetch (issue 21): the next group's images are loaded and tokenised in a
background thread while this group generates. The rows must be those of an unprefetched scan,
bad images still become failed rows in place, and the thread uses its own processor."""

import json
import threading

import pytest

from layersafe.scan import engine
from layersafe.scan.engine import ScanConfig, run_scan


def _data(tmp_path, bad_at=None):
    path = tmp_path / "data.jsonl"
    photos = ["coffee", "astronaut", "moon", "rocket", "camera", "coins", "clock"]
    with path.open("w") as f:
        for i, ph in enumerate(photos):
            img = str(tmp_path / "missing.png") if i == bad_at else "skimage:" + ph
            f.write(json.dumps({"id": f"r{i}", "prompt": "Describe it " + "very " * i, "image": img}) + "\n")
    return str(path)


def _scan(adapter, data, out, prefetch, monkeypatch):
    monkeypatch.setattr(engine, "PREFETCH", prefetch)
    cfg = ScanConfig(model="tiny", dataset=data, layers="1,2", out=str(out), max_new_tokens=6, batch_size=2, judges=[])
    run = run_scan(cfg, adapter=adapter, progress=False, log=lambda m: None)
    rows = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines()]
    return run, [{k: r.get(k) for k in ("sample_id", "layer", "response", "input_text", "error")} for r in rows]


def test_prefetched_scan_writes_the_same_rows_in_the_same_order(tiny_adapter, tmp_path, monkeypatch):
    data = _data(tmp_path, bad_at=3)  # the bad image sits in the second group of 2 samples
    seen = []
    real = engine.prepare

    def spy(adapter, *a):
        seen.append((threading.current_thread().name, adapter is tiny_adapter,
                     adapter.processor is tiny_adapter.processor))
        return real(adapter, *a)

    monkeypatch.setattr(engine, "prepare", spy)
    run_on, on = _scan(tiny_adapter, data, tmp_path / "on", True, monkeypatch)
    assert len(seen) == 4  # 7 samples in groups of 2, each prepared once
    assert all(n.startswith("layersafe-scan-prefetch") and not same_a and not same_p for n, same_a, same_p in seen)
    seen.clear()
    run_off, off = _scan(tiny_adapter, data, tmp_path / "off", False, monkeypatch)
    assert len(seen) == 4 and all(n == threading.current_thread().name and same_a for n, same_a, _ in seen)
    assert on == off and len(on) == 14
    assert run_on["stats"]["failed"] == run_off["stats"]["failed"] == 2  # r3 at both layers
    assert [r["sample_id"] for r in on if r["error"]] == ["r3", "r3"]


def test_prefetch_copy_holds_no_decoder(tiny_adapter):
    tiny_adapter._static = object()  # as if a decoder were kept
    try:
        other = tiny_adapter.preprocessing_copy()
        assert other._static is None and other.model is tiny_adapter.model
        assert other.processor is not tiny_adapter.processor and other.tokenizer is other.processor.tokenizer
        assert other.build_prompt("hi") == tiny_adapter.build_prompt("hi")
    finally:
        tiny_adapter._static = None


def test_a_bug_while_preparing_stops_the_scan_keeping_written_rows(tiny_adapter, tmp_path, monkeypatch):
    data = _data(tmp_path)
    real = engine.prepare
    calls = []

    def boom(adapter, need, *a):
        calls.append(len(need))
        if len(calls) == 2:
            raise RuntimeError("bug in preparing")
        return real(adapter, need, *a)

    monkeypatch.setattr(engine, "prepare", boom)
    with pytest.raises(RuntimeError, match="bug in preparing"):
        _scan(tiny_adapter, data, tmp_path / "s", True, monkeypatch)
    rows = (tmp_path / "s" / "generations.jsonl").read_text().splitlines()
    assert len(rows) == 4  # the first group's 2 samples x 2 layers were written before the failure
