"""`layersafe trim`: the trimmed checkpoint, loaded with plain transformers, generates token for token
what `layersafe scan --layers L` (same adapter) generated; tiny random models of every family and the
organism; savings (parameters, analytic FLOPs = counted FLOPs); bad input (docs/trim.md)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

from family_builders import build_tiny_llava_next, build_tiny_mllama, write_dataset
from family_builders_b import (build_tiny_gemma3, build_tiny_idefics3, build_tiny_qwen2_5_vl,
                               qwen_processor_without_torchvision)

MAX_NEW = 8


def _quiet(m):
    return None


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("trimdata"))


def make_lora(model_dir, out, *, targets=("q_proj", "v_proj"), seed=0, ctx=contextlib.nullcontext):
    """A peft LoRA adapter with random non-zero A and B (init_lora_weights=False), saved like
    `layersafe align` saves one."""
    import transformers
    from peft import LoraConfig, get_peft_model

    arch = json.loads((Path(model_dir) / "config.json").read_text())["architectures"][0]
    torch.manual_seed(seed)
    base = getattr(transformers, arch).from_pretrained(model_dir, dtype=torch.float32)
    from layersafe.models.peft_quiet import peft_wrap

    with peft_wrap():
        pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), init_lora_weights=False))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)
    pm.save_pretrained(out)
    return Path(out)


def stock_generate(folder, rows, *, max_new=MAX_NEW, ctx=contextlib.nullcontext):
    """Plain transformers, nothing of layersafe: AutoModelForImageTextToText + AutoProcessor on the
    folder, greedy generate per row on the row's exact input text and image."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from layersafe.data.base import load_image

    with ctx():
        processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    tok = processor.tokenizer
    out = []
    for r in rows:
        inputs = processor(images=[load_image(r["image"])], text=[r["input_text"]], return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(**inputs, max_new_tokens=max_new, do_sample=False,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        ids = gen[0, inputs["input_ids"].shape[1]:].tolist()
        cut = next((i for i, t in enumerate(ids) if t in eos), None)
        toks = ids if cut is None else ids[:cut]
        out.append({"tokens": toks, "text": tok.decode(toks, skip_special_tokens=True).strip(),
                    "finish_reason": "length" if cut is None else "stop"})
    return out, model


def scan_rows(model, dataset, layers, out, adapter=None, *, max_new=MAX_NEW, limit=None):
    from layersafe.io import read_jsonl
    from layersafe.scan import ScanConfig, run_scan

    run_scan(ScanConfig(model=str(model), dataset=str(dataset), layers=str(layers), out=str(out), max_new_tokens=max_new,
                        batch_size=5, judges=[], adapter=str(adapter) if adapter else None, device="cpu",
                        dtype="float32", limit=limit), progress=False, log=_quiet)
    rows = read_jsonl(Path(out) / "generations.jsonl")
    assert rows and not any(r["error"] for r in rows)
    return rows


def assert_same(rows, stock):
    for r, s in zip(rows, stock):
        assert r["response"] == s["text"], (r["sample_id"], r["response"], s["text"])
        assert r["response_tokens"] == len(s["tokens"]) and r["finish_reason"] == s["finish_reason"], r["sample_id"]


def vision_block_indices(folder) -> set[int]:
    """Encoder block indices present in the saved safetensors (vision tower only)."""
    import re

    from safetensors import safe_open

    idx = set()
    with safe_open(str(Path(folder) / "model.safetensors"), "pt") as f:
        for k in f.keys():
            if re.search(r"(vision|visual)", k) and "global_transformer" not in k:
                m = re.search(r"\.(?:layers|blocks)\.(\d+)\.", k)
                if m:
                    idx.add(int(m.group(1)))
    return idx


def trim_and_prove(model_dir, dataset, L, tmp_path, *, adapter=None, ctx=contextlib.nullcontext, depth_key,
                   full_depth):
    """The proof: scan --layers L (adapter merged) == the trimmed folder under plain transformers."""
    from layersafe.trim import trim_model

    with ctx():
        rows = scan_rows(model_dir, dataset, L, tmp_path / "scan", adapter)
        info = trim_model(str(model_dir), L, tmp_path / "trim", adapter=str(adapter) if adapter else None,
                          latency_repeats=1, log=_quiet)
    folder = tmp_path / "trim"
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["vision_config"][depth_key] == L and cfg["layersafe_trim"]["layer"] == L
    assert vision_block_indices(folder) == set(range(L))  # the dropped blocks' weights are absent
    assert info["check"]["passed"] and info["layer"] == L and info["num_layers"] == full_depth
    assert json.loads((folder / "trim.json").read_text())["savings"] == info["savings"]
    s = info["savings"]
    assert s["encoder_params"]["trimmed"] < s["encoder_params"]["full"]
    assert s["encoder_flops"]["trimmed"] < s["encoder_flops"]["full"]
    assert set(s["encoder_latency_ms"]) >= {"full", "trimmed", "full_min", "trimmed_min", "device"}
    stock, model = stock_generate(folder, rows, ctx=ctx)
    assert_same(rows, stock)
    return rows, info, model


def test_llava_trim_with_adapter_equals_scan(tiny_llava_dir, dataset, tmp_path):
    """LLaVA + a LoRA on q/v of the language model AND the vision blocks (some of them dropped):
    vision_feature_layer=-1, num_hidden_layers=L; the merged, trimmed folder generates what the scan
    with --adapter generated, and the adapter mattered."""
    adapter = make_lora(tiny_llava_dir, tmp_path / "lora")
    rows, info, model = trim_and_prove(tiny_llava_dir, dataset, 3, tmp_path, adapter=adapter,
                                       depth_key="num_hidden_layers", full_depth=6)
    assert model.config.vision_feature_layer == -1 and type(model).__name__ == "LlavaForConditionalGeneration"
    assert info["config_changes"] == {"vision_feature_layer": [-2, -1], "vision_config.num_hidden_layers": [6, 3]}
    plain = scan_rows(tiny_llava_dir, dataset, 3, tmp_path / "scan-noadapter")
    assert [r["response"] for r in plain] != [r["response"] for r in rows]  # the merge changed the answers
    # the processor and its chat template travel with the checkpoint
    from transformers import AutoProcessor

    assert AutoProcessor.from_pretrained(tmp_path / "trim").chat_template == \
        AutoProcessor.from_pretrained(tiny_llava_dir).chat_template


def test_align_distill_adapter_trim_equals_scan(dataset, tmp_path, capsys):
    """The adapter `layersafe align --method distill` writes (2 steps on tiny-random-llava) merges and
    trims like any peft adapter: plain transformers on the folder = scan --layers 2 --adapter."""
    from layersafe.cli import main

    out = tmp_path / "d"
    assert main(["align", "--method", "distill", "--model", "tiny-random-llava", "--limit", "4", "--layers", "2,4",
                 "--steps", "2", "--batch-size", "4", "--mini-batch-size", "2", "--max-new-tokens", "3",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    trim_and_prove("tiny-random-llava", dataset, 2, tmp_path, adapter=out / "adapter", depth_key="num_hidden_layers",
                   full_depth=6)


FAMILIES = {
    # name: (builder, exit layer, vision depth key, full depth, context for loading the processor)
    "llava_next": (build_tiny_llava_next, 2, "num_hidden_layers", 6, contextlib.nullcontext),
    "mllama": (build_tiny_mllama, 2, "num_hidden_layers", 6, contextlib.nullcontext),
    "qwen2_5_vl": (build_tiny_qwen2_5_vl, 2, "depth", 4, qwen_processor_without_torchvision),
    "gemma3": (build_tiny_gemma3, 2, "num_hidden_layers", 4, contextlib.nullcontext),
    "idefics3": (build_tiny_idefics3, 3, "num_hidden_layers", 4, contextlib.nullcontext),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_trim_equals_scan(family, dataset, tmp_path):
    build, L, key, depth, ctx = FAMILIES[family]
    model_dir = build(tmp_path / "m")
    rows, info, model = trim_and_prove(model_dir, dataset, L, tmp_path, ctx=ctx, depth_key=key, full_depth=depth)
    assert info["family"] == family
    # layer L is not the stock layer here: the trimmed model really answers differently from the full one
    full, _ = stock_generate(model_dir, rows, ctx=ctx)
    assert [s["text"] for s in full] != [r["response"] for r in rows]
    vc = model.config.vision_config
    if family == "mllama":  # taps (1, 3) = outputs of blocks 2 and 4; 4 > L = 2, so that tap reads block 2
        assert list(vc.intermediate_layers_indices) == [1, 1]
    if family == "qwen2_5_vl":  # full-attention blocks 1 and 3 (0-based); only block 1 is kept
        assert list(vc.fullatt_block_indexes) == [1]
    if family == "llava_next":
        assert model.config.vision_feature_layer == -1


def test_organism_trim_with_adapter_equals_scan(dataset, tmp_path):
    """The shipped organism (whatever its current weights): trimmed at the middle of its encoder with
    a LoRA merged, plain transformers = scan --layers L --adapter."""
    from layersafe.models import ORGANISM_WEIGHTS

    n = json.loads((ORGANISM_WEIGHTS / "config.json").read_text())["vision_config"]["num_hidden_layers"]

    adapter = make_lora(ORGANISM_WEIGHTS, tmp_path / "lora", targets=("q_proj", "v_proj", "o_proj"))
    trim_and_prove("organism", dataset, n // 2, tmp_path, adapter=adapter, depth_key="num_hidden_layers",
                   full_depth=n)


def test_organism_trim_at_default_layer_is_the_stock_model(dataset, tmp_path):
    """Trimmed at its default layer (vision_feature_layer -2 -> 11 of 12) the organism answers exactly as
    the full stock model does, with one block less."""
    from layersafe.models import ORGANISM_WEIGHTS
    from layersafe.trim import trim_model

    info = trim_model("organism", "default", tmp_path / "t", latency_repeats=0, log=_quiet)
    assert info["layer"] == info["num_layers"] - 1 and "encoder_latency_ms" not in info["savings"]
    rows = scan_rows("organism", dataset, "default", tmp_path / "scan", limit=3)
    trimmed, _ = stock_generate(tmp_path / "t", rows)
    full, _ = stock_generate(ORGANISM_WEIGHTS, rows)
    assert trimmed == full
    assert_same(rows, trimmed)


@pytest.mark.parametrize("family", ["llava", "gemma3", "idefics3"])
def test_analytic_flops_equal_counted_flops(family, tmp_path, tiny_llava_dir):
    """encoder_flops (from the config) = torch's FlopCounterMode on the vision tower, full and trimmed."""
    from torch.utils.flop_counter import FlopCounterMode

    from layersafe.trim import EncoderCut, _vision_root, encoder_flops

    import transformers

    folder = tiny_llava_dir if family == "llava" else {"gemma3": build_tiny_gemma3,
                                                         "idefics3": build_tiny_idefics3}[family](tmp_path / "m")
    arch = json.loads((Path(folder) / "config.json").read_text())["architectures"][0]
    # eager attention: the counter sees QKᵀ and AV as matmuls (CPU sdpa kernels are not counted)
    model = getattr(transformers, arch).from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    vc = model.config.vision_config
    L = 2
    want = encoder_flops(model.config, family, L)
    x = torch.randn(1, 3, vc.image_size, vc.image_size)

    def counted():
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            _vision_root(model, family)(pixel_values=x)
        return fc.get_total_flops()

    full = counted()
    EncoderCut(model, family, L)
    assert (full, counted()) == (want["full"], want["trimmed"])


@pytest.mark.parametrize("extra,message", [
    (["--layer", "0"], "keeps no encoder block"),
    (["--layer", "13"], "beyond the encoder (12 blocks)"),
    (["--layer", "all"], "give one exit layer"),
    (["--adapter", "WRONG_SHAPES"], "does not fit organism"),
    (["--adapter", "WRONG_MODULES"], "does not fit organism"),
    (["--adapter", "NOT_AN_ADAPTER"], "no adapter_config.json"),
])
def test_bad_input_one_line_exit_2_nothing_written(extra, message, tmp_path, capsys, tiny_llava_dir):
    from layersafe.cli import main

    subs = {"NOT_AN_ADAPTER": tmp_path}
    if "WRONG_SHAPES" in extra:  # a LoRA of the tiny random LLaVA (other widths) on the organism
        subs["WRONG_SHAPES"] = make_lora(tiny_llava_dir, tmp_path / "lora-tiny")
    if "WRONG_MODULES" in extra:  # a LoRA of Mllama's cross-attention: no such modules in a LLaVA
        m = build_tiny_mllama(tmp_path / "mllama")
        subs["WRONG_MODULES"] = make_lora(m, tmp_path / "lora-mllama", targets=("cross_attn.q_proj",))
    extra = [str(subs.get(x, x)) for x in extra]
    args = ["trim", "--model", "organism", "--layer", "6", "--out", str(tmp_path / "out"), *extra]
    capsys.readouterr()  # the fixtures' own output
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.trim-tmp*"))


def test_non_empty_out_is_refused(tmp_path, capsys):
    from layersafe.cli import main

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert main(["trim", "--model", "organism", "--layer", "6", "--out", str(tmp_path / "out")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_cli_prints_savings_and_writes_trim_json(tmp_path, capsys):
    from layersafe.cli import main

    out = tmp_path / "organism-l4"
    (out).mkdir()  # an existing empty folder is fine
    assert main(["trim", "--model", "organism", "--layer", "4", "--out", str(out), "--latency-repeats", "2"]) == 0
    text = capsys.readouterr().out
    for words in ("llava trimmed at layer 4 of 12", "encoder parameters", "encoder GFLOPs per image",
                  "encoder latency ms (cpu, median)", "encoder latency ms (cpu, min)", "(passed)"):
        assert words in text
    info = json.loads((out / "trim.json").read_text())
    assert info["savings"]["encoder_flops"]["trimmed"] < info["savings"]["encoder_flops"]["full"] / 2


def test_scanning_the_trimmed_folder_at_its_default_layer_is_layer_L(dataset, tmp_path):
    """layersafe itself reads the trimmed folder: its depth is L, its default layer L, and a scan there
    answers as the full model's scan at layer L (what a CI gate on the shipped model checks)."""
    from layersafe.models import load_vlm
    from layersafe.trim import trim_model

    trim_model("organism", 4, tmp_path / "t", latency_repeats=0, log=_quiet)
    ad = load_vlm(str(tmp_path / "t"), device="cpu", dtype="float32")
    assert (ad.num_layers, ad.default_layer) == (4, 4)
    trimmed = scan_rows(tmp_path / "t", dataset, "default", tmp_path / "s1", limit=3)
    full = scan_rows("organism", dataset, 4, tmp_path / "s2", limit=3)
    assert [r["response"] for r in trimmed] == [r["response"] for r in full]


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from layersafe.cli import main\n"
            "try:\n main(['trim', '--help'])\nexcept SystemExit: pass\n"
            "try:\n main(['check', '--help'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_bench_trim_tiny_cpu(tmp_path):
    """benchmarks/bench_trim.py's CPU path (--tiny) runs and prints one JSON line: full vs trimmed per
    layer and batch, with the parameters and FLOPs that trim reports."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_trim.py"
    r = subprocess.run([sys.executable, str(script), "--device", "cpu", "--tiny", "--layers", "2,4",
                        "--batch-sizes", "1,3", "--warmup", "1", "--repeats", "2", "--json", str(tmp_path / "b.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])
    assert res == json.loads((tmp_path / "b.json").read_text())
    assert [row["layer"] for row in res["results"]] == [2, 4] and res["num_layers"] == 6
    for row in res["results"]:
        assert row["encoder_params_trimmed"] < res["encoder_params_full"]
        assert row["encoder_gflops_per_image_trimmed"] < row["encoder_gflops_per_image_full"]
        assert [b["batch"] for b in row["by_batch"]] == [1, 3]
        assert all(b["full_ms"] > 0 and b["trimmed_ms"] > 0 for b in row["by_batch"])


def test_a_family_without_a_stock_exit_is_one_line(tmp_path, capsys, monkeypatch):
    """A family trim cannot express (simulated: LLaVA taken off the list) fails in one line, exit 2."""
    from layersafe import trim
    from layersafe.cli import main

    monkeypatch.setattr(trim, "_DEPTH_KEY", {k: v for k, v in trim._DEPTH_KEY.items() if k != "llava"})
    assert main(["trim", "--model", "organism", "--layer", "6", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not support the llava family" in err[0] and not (tmp_path / "o").exists()
