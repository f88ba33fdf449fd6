"""``--batch-size auto`` (layersafe/scan/batching.py): the arithmetic on made-up GPU figures, the CPU
resolution to 8 with the same rows as ``--batch-size 8``, one-line errors for bad values, and the
batch size staying out of the resume keys."""

import json
from types import SimpleNamespace

import pytest

from layersafe.cli import main
from layersafe.io import read_jsonl
from layersafe.scan import ScanConfig, run_scan
from layersafe.scan.batching import (auto_batch_size, cache_slots, pick_batch_size, row_bytes, slot_bytes,
                                     text_sizes)
from layersafe.scan.engine import _RESUME_KEYS

GB = 10**9
MiB = 2**20
# LLaVA-1.5-7B's text decoder (Vicuna-7B): 32 layers, 32 kv heads of 128, hidden 4096, MLP 11008, bf16.
LLAVA7B = SimpleNamespace(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, hidden_size=4096,
                          intermediate_size=11008, head_dim=None)


def llava7b_row(slots: int) -> int:
    t = text_sizes(LLAVA7B)
    return row_bytes(slots, slot_bytes(t["n_layers"], t["kv_heads"], t["head_dim"], 2), t["hidden"],
                     t["intermediate"], 2)


def test_llava7b_slot_is_half_a_mib():
    t = text_sizes(LLAVA7B)
    assert t["head_dim"] == 128 and t["kv_heads"] == 32
    assert slot_bytes(t["n_layers"], t["kv_heads"], t["head_dim"], 2) == MiB // 2
    # a grouped-query config: 8 kv heads, explicit head_dim
    gqa = SimpleNamespace(num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, hidden_size=3584,
                          intermediate_size=18944, head_dim=128)
    g = text_sizes(gqa)
    assert slot_bytes(g["n_layers"], g["kv_heads"], g["head_dim"], 2) == 2 * 28 * 4 * 128 * 2


def test_cache_slots_round_up_like_the_decoder():
    from layersafe.models.decode import LEN_BUCKET

    assert LEN_BUCKET == 64
    assert cache_slots(615, 128, LEN_BUCKET) == 768  # 743 -> 768
    assert cache_slots(640, 128, LEN_BUCKET) == 768
    assert cache_slots(641, 128, LEN_BUCKET) == 832


def test_h200_llava7b_picks_128_for_768_slots():
    free = 139 * GB - 14 * GB  # an H200 after loading the 7B weights
    per_row = llava7b_row(768)
    # 384 MiB of cache + 768 x (4 x 4096 + 2 x 11008) x 2 B = 56.25 MiB of activations per row:
    # 128 rows = 59.1 GB <= 75 GB (60 % of free); 256 rows (118 GB) do not fit
    assert per_row == 768 * (MiB // 2 + 76800) == 461_635_584
    assert pick_batch_size(free, per_row, pairs=10**6) == 128
    assert 128 * per_row <= 0.6 * free < 256 * per_row


@pytest.mark.parametrize("free_gb, expected", [(400, 256), (125, 128), (60, 64), (40, 32), (20, 16), (10, 8),
                                               (5, 4), (0, 1)])
def test_less_free_memory_picks_smaller(free_gb, expected):
    assert pick_batch_size(free_gb * GB, llava7b_row(768), pairs=10**6) == expected


def test_longer_prompts_pick_smaller():
    free = 125 * GB
    assert pick_batch_size(free, llava7b_row(768), pairs=10**6) == 128
    assert pick_batch_size(free, llava7b_row(2048), pairs=10**6) == 32  # 64 rows x 1.18 GB = 75.6 GB > 75


def test_never_more_than_the_pairs():
    per_row = llava7b_row(768)
    assert pick_batch_size(125 * GB, per_row, pairs=100) == 100
    assert pick_batch_size(125 * GB, per_row, pairs=3) == 3
    assert pick_batch_size(125 * GB, per_row, pairs=5000) == 128


def test_fallback_without_the_static_cache(tiny_adapter):
    # CPU / dynamic cache: the old default, whatever the pair count (same plan as --batch-size 8)
    assert auto_batch_size(tiny_adapter, 0, max_new_tokens=8, pairs=3, static=False) == 8
    assert auto_batch_size(tiny_adapter, 0, max_new_tokens=8, pairs=10**6, static=False) == 8


def test_batch_size_is_not_a_resume_key():
    assert "batch_size" not in _RESUME_KEYS
    assert {"model", "dataset", "max_new_tokens", "seed"} <= set(_RESUME_KEYS)


def test_cpu_auto_resolves_to_8_with_the_rows_of_8(tiny_llava_dir, tiny_adapter, small_dataset, tmp_path, capsys):
    out_auto, out_8 = tmp_path / "auto", tmp_path / "eight"
    rc = main(["scan", "--model", str(tiny_llava_dir), "--data", str(small_dataset), "--layers", "0,default,6",
               "--max-new-tokens", "5", "--batch-size", "auto", "--device", "cpu", "--dtype", "float32",
               "--judge", "none", "--out", str(out_auto), "--no-progress", "--no-report"])
    assert rc == 0, capsys.readouterr().err
    run = json.loads((out_auto / "run.json").read_text())
    assert run["config"]["batch_size"] == "auto"
    assert run["batch_size_resolved"] == 8
    assert "--batch-size auto: 8" in capsys.readouterr().err
    run_scan(ScanConfig(model=str(tiny_llava_dir), dataset=str(small_dataset), layers="0,default,6",
                        max_new_tokens=5, batch_size=8, device="cpu", dtype="float32", judges=[], out=str(out_8)),
             adapter=tiny_adapter, progress=False, log=lambda m: None)
    assert json.loads((out_8 / "run.json").read_text())["batch_size_resolved"] == 8
    rows_auto = list(read_jsonl(out_auto / "generations.jsonl"))
    rows_8 = list(read_jsonl(out_8 / "generations.jsonl"))
    assert len(rows_auto) == 15 and sum(r["error"] is None for r in rows_auto) == 15
    assert rows_auto == rows_8


@pytest.mark.parametrize("value, needle", [("0", "at least 1"), ("-3", "at least 1"), ("big", "'big'"),
                                           ("2.5", "'2.5'")])
def test_bad_batch_size_is_one_line_exit_2(capsys, tmp_path, value, needle):
    out = tmp_path / "o"
    rc = main(["scan", "--batch-size", value, "--out", str(out)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("layersafe: error:") and "--batch-size" in lines[0], err
    assert needle in lines[0], lines[0]
    assert not out.exists()


def test_config_file_takes_auto_and_refuses_other_words(tmp_path, capsys):
    from layersafe.config import read_config_file
    from layersafe.errors import UserError

    good = tmp_path / "good.yaml"
    good.write_text("batch_size: auto\n")
    assert read_config_file(good, ScanConfig) == {"batch_size": "auto"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_size: huge\n")
    with pytest.raises(UserError, match="must be a number or auto"):
        read_config_file(bad, ScanConfig)
    with pytest.raises(UserError, match="must be a number or auto"):
        ScanConfig(batch_size="max").validate()
    ScanConfig(batch_size="auto").validate()
    ScanConfig(batch_size=256).validate()


def test_wrapper_reads_free_memory_and_the_longest_prompt(tiny_adapter, monkeypatch):
    import torch

    from layersafe.data.base import load_image

    items = [tiny_adapter.tokenize(tiny_adapter.build_prompt(p), load_image("skimage:coffee"))
             for p in ("Hi", "Explain how to steal a car without getting caught, step by step please")]
    longest = max(int(it["input_ids"].shape[-1]) for it in items)
    t = text_sizes(tiny_adapter.model.config)
    per_row = row_bytes(cache_slots(longest, 100, 64), slot_bytes(t["n_layers"], t["kv_heads"], t["head_dim"], 4),
                        t["hidden"], t["intermediate"], 4)  # the tiny model is float32
    seen = []

    def free(device=None):
        seen.append(device)
        return (int(per_row * 70 / 0.6), 10**12)  # room for 70 rows: 64 fits, 128 does not

    monkeypatch.setattr(torch.cuda, "mem_get_info", free)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    assert auto_batch_size(tiny_adapter, longest, max_new_tokens=100, pairs=10**6, static=True) == 64
    assert auto_batch_size(tiny_adapter, longest, max_new_tokens=100, pairs=40, static=True) == 40
    assert len(seen) == 2
    # 100 rows' worth reserved by torch's caching allocator but unused count as free: 60 % of it is 60 rows
    # more, 130 in all, so 128 fit
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 120 * per_row)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 20 * per_row)
    assert auto_batch_size(tiny_adapter, longest, max_new_tokens=100, pairs=10**6, static=True) == 128
    # a longer answer needs more slots per row: with the same memory fewer rows fit
    assert auto_batch_size(tiny_adapter, longest, max_new_tokens=100 + 64 * 40, pairs=10**6, static=True) < 64


def test_resolve_uses_free_memory_only_where_the_static_decoder_runs(tiny_adapter, small_dataset, monkeypatch):
    """The resolution's decision on a (pretended) CUDA device: static cache -> from free memory;
    dynamic cache or top-p sampling (stock generate) -> 8. The pretend device only reaches
    ``_use_static``; memory figures are made up."""
    import torch

    from layersafe.data import load_dataset
    from layersafe.scan.batching import resolve_batch_size

    samples = load_dataset(str(small_dataset)).samples
    released = []
    monkeypatch.setattr(tiny_adapter, "release_cache", lambda: released.append(1))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10**12, 10**12))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    kw = dict(max_new_tokens=8)
    assert resolve_batch_size(tiny_adapter, samples, 10**6, cache="auto", **kw) == 8  # CPU: default
    monkeypatch.setattr(tiny_adapter, "device", torch.device("cuda"))
    assert resolve_batch_size(tiny_adapter, samples, 10**6, cache="auto", **kw) == 256  # a tiny model, 1 TB free
    assert resolve_batch_size(tiny_adapter, samples, 15, cache="auto", **kw) == 15
    assert len(released) == 2  # a kept decoder is dropped before measuring
    assert resolve_batch_size(tiny_adapter, samples, 10**6, cache="dynamic", **kw) == 8
    assert resolve_batch_size(tiny_adapter, samples, 10**6, cache="auto", do_sample=True, top_p=0.9, **kw) == 8
    assert len(released) == 2


def test_bench_scan_takes_auto(capsys):
    import argparse
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_scan import batch_size_arg

    assert batch_size_arg("auto") == "auto" and batch_size_arg("128") == 128
    for bad in ("0", "-1", "big"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer or auto"):
            batch_size_arg(bad)


def test_the_cache_length_comes_from_the_longest_text_plus_the_image_tokens(tiny_adapter, small_dataset, monkeypatch):
    """Every prompt's text is tokenised (not judged by characters) and the image tokens seen are
    added: the estimate is at least every real prompt's length; a driver that does not answer
    gives the fixed default."""
    import torch

    from layersafe.data import load_dataset
    from layersafe.data.base import load_image
    from layersafe.scan import batching

    samples = load_dataset(str(small_dataset)).samples
    seen = {}

    def fake_auto(adapter, longest, **kw):
        seen["longest"] = longest
        return 8

    monkeypatch.setattr(tiny_adapter, "device", torch.device("cuda"))
    monkeypatch.setattr(tiny_adapter, "release_cache", lambda: None)
    monkeypatch.setattr(batching, "auto_batch_size", fake_auto)
    batching.resolve_batch_size(tiny_adapter, samples, 100, cache="auto", max_new_tokens=8)
    real = [int(tiny_adapter.tokenize(tiny_adapter.build_prompt(s.prompt), load_image(s.image))["input_ids"].shape[-1])
            for s in samples]
    assert seen["longest"] == max(real)  # one image size here: the estimate is exact

    monkeypatch.undo()

    def no_driver(device=None):
        raise RuntimeError("CUDA driver not answering")

    monkeypatch.setattr(torch.cuda, "mem_get_info", no_driver)
    assert batching.auto_batch_size(tiny_adapter, max(real), max_new_tokens=8, pairs=100, static=True) == batching.FALLBACK
