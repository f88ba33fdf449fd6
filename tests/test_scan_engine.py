"""Scan engine behaviour: encode once, resume, failures, output contract."""

import json

import pytest

from layersafe.errors import UserError
from layersafe.io import read_jsonl
from layersafe.scan import ScanConfig, run_scan

QUIET = dict(progress=False, log=lambda m: None)


def cfg(dataset, out, **kw):
    base = dict(model="tiny", dataset=str(dataset), layers="all", out=str(out), max_new_tokens=6,
                batch_size=2, judges=[])
    base.update(kw)
    return ScanConfig(**base)


def key(rows):
    return sorted((r["sample_id"], r["layer"], r["response"], r["error"]) for r in rows)


def test_encoder_runs_once_per_image(tiny_adapter, small_dataset, tmp_path):
    seen = []
    h = tiny_adapter.vision_tower.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    try:
        run_scan(cfg(small_dataset, tmp_path / "o", batch_size=2), adapter=tiny_adapter, **QUIET)
    finally:
        h.remove()
    # 5 images, 7 layers: the encoder saw each image exactly once (3 calls: 2 + 2 + 1 images)
    assert sum(seen) == 5
    assert len(seen) == 3
    assert len(read_jsonl(tmp_path / "o" / "generations.jsonl")) == 5 * 7


def test_contract_fields_and_run_json(tiny_adapter, small_dataset, tmp_path):
    out = tmp_path / "o"
    run_scan(cfg(small_dataset, out, layers="0,default,6"), adapter=tiny_adapter, **QUIET)
    rows = read_jsonl(out / "generations.jsonl")
    assert {r["layer"] for r in rows} == {0, 5, 6}
    for r in rows:
        for f in ("sample_id", "layer", "prompt", "input_text", "response", "image", "prompt_tokens",
                  "response_tokens"):
            assert f in r
        assert r["input_text"].startswith("USER: <image>\n") and r["input_text"].endswith("ASSISTANT:")
        assert r["prompt"] in r["input_text"]
        assert r["is_default_layer"] == (r["layer"] == 5)
    a = next(r for r in rows if r["sample_id"] == "a")
    assert a["image"].endswith("imgs/noise.png") and a["image"].startswith("/")
    run = json.loads((out / "run.json").read_text())
    assert run["num_layers"] == 6 and run["default_layer"] == 5
    assert isinstance(run["num_layers"], int) and isinstance(run["default_layer"], int)
    assert run["config"]["max_new_tokens"] == 6 and run["config"]["layers"] == "0,default,6"
    assert run["layers"] == [0, 5, 6]
    assert run["versions"]["transformers"] and run["versions"]["torch"]
    assert run["model"]["architecture"] == "LlavaForConditionalGeneration"
    assert run["status"] == "complete" and run["stats"]["generated"] == 15


def test_nonempty_out_refused_without_resume(tiny_adapter, small_dataset, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(UserError, match="not empty"):
        run_scan(cfg(small_dataset, out), adapter=tiny_adapter, **QUIET)
    assert (out / "keep.txt").read_text() == "precious"


class Boom(Exception):
    pass


def test_resume_after_interrupt_equals_uninterrupted(tiny_adapter, small_dataset, tmp_path):
    full = tmp_path / "full"
    run_scan(cfg(small_dataset, full), adapter=tiny_adapter, **QUIET)
    expected = read_jsonl(full / "generations.jsonl")

    part = tmp_path / "part"
    real = tiny_adapter.generate
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Boom()
        return real(*a, **k)

    tiny_adapter.generate = flaky
    try:
        with pytest.raises(Boom):
            run_scan(cfg(small_dataset, part), adapter=tiny_adapter, **QUIET)
    finally:
        tiny_adapter.generate = real
    written = read_jsonl(part / "generations.jsonl")
    assert 0 < len(written) < len(expected)
    # a crash mid-write leaves a torn last line
    with open(part / "generations.jsonl", "a") as f:
        f.write('{"sample_id": "b", "layer": 3, "resp')
    run_scan(cfg(small_dataset, part, resume=True), adapter=tiny_adapter, **QUIET)
    got = read_jsonl(part / "generations.jsonl", tolerate_torn_tail=False)
    assert len(got) == len(expected)
    assert len({(r["sample_id"], r["layer"]) for r in got}) == len(got)  # no duplicates
    assert key(got) == key(expected)
    # resuming a finished scan generates nothing new
    run = run_scan(cfg(small_dataset, part, resume=True), adapter=tiny_adapter, **QUIET)
    assert run["stats"]["generated"] == 0 and run["stats"]["skipped_done"] == len(expected)


def test_resume_with_changed_settings_refused(tiny_adapter, small_dataset, tmp_path):
    out = tmp_path / "o"
    run_scan(cfg(small_dataset, out, layers="default"), adapter=tiny_adapter, **QUIET)
    with pytest.raises(UserError, match="max_new_tokens"):
        run_scan(cfg(small_dataset, out, layers="default", max_new_tokens=7, resume=True),
                 adapter=tiny_adapter, **QUIET)
    # adding layers on resume is allowed: only the new pairs are generated
    run = run_scan(cfg(small_dataset, out, layers="default,0", resume=True), adapter=tiny_adapter, **QUIET)
    assert run["stats"]["generated"] == 5 and run["stats"]["skipped_done"] == 5


def test_corrupt_and_missing_images_are_failed_rows(tiny_adapter, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    rows = [
        {"id": "ok", "prompt": "Describe it", "image": "skimage:coffee"},
        {"id": "corrupt", "prompt": "Describe it", "image": "bad.png"},
        {"id": "missing", "prompt": "Describe it", "image": "nope.jpg"},
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o"
    run = run_scan(cfg(data, out, layers="4-5"), adapter=tiny_adapter, **QUIET)
    got = read_jsonl(out / "generations.jsonl")
    assert len(got) == 6
    bad = {r["sample_id"]: r for r in got if r["error"]}
    assert set(bad) == {"corrupt", "missing"}
    assert "cannot decode" in bad["corrupt"]["error"] and "not found" in bad["missing"]["error"]
    assert all(r["response"] is None for r in bad.values())
    assert all(r["response"] is not None for r in got if r["sample_id"] == "ok")
    assert run["stats"]["failed"] == 4 and run["stats"]["generated"] == 2


def test_layer_out_of_range_is_user_error(tiny_adapter, small_dataset, tmp_path):
    with pytest.raises(UserError, match=r"0\.\.6"):
        run_scan(cfg(small_dataset, tmp_path / "o", layers="7"), adapter=tiny_adapter, **QUIET)


def test_fallback_prompt_without_chat_template(tmp_path, small_dataset):
    from layersafe.models import load_vlm
    from layersafe.models.tiny import build_tiny_llava

    path = build_tiny_llava(tmp_path / "nochat", chat_template=False, vision_layers=2)
    ad = load_vlm(str(path), device="cpu")
    assert ad.build_prompt("Hello there") == "USER: <image>\nHello there ASSISTANT:"
    out = tmp_path / "o"
    run_scan(cfg(small_dataset, out, layers="all", limit=2), adapter=ad, **QUIET)
    rows = read_jsonl(out / "generations.jsonl")
    assert len(rows) == 2 * 3
    assert all(r["input_text"] == f"USER: <image>\n{r['prompt']} ASSISTANT:" for r in rows)
