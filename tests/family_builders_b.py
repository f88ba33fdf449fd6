"""Checks shared by the Qwen2.5-VL, Gemma 3 and Idefics3 family tests. The tiny checkpoints are
built by layersafe.models.tiny_families (the built-in tiny-random-* models)."""

from __future__ import annotations

from unittest import mock

import torch

# The builders live in the package (the built-in tiny-random-* models); re-exported for the tests.
from layersafe.models.tiny_families import (  # noqa: F401
    build_tiny_gemma3, build_tiny_idefics3, build_tiny_qwen2_5_vl, qwen_processor_without_torchvision,
)


# --- checks shared by the three family test files ----------------------------------------------
def stock_tokens(adapter, prompt: str, image_ref: str, max_new: int) -> list[int]:
    """Reference: the family's own generate on the processor's full output (pixels included)."""
    from layersafe.data.base import load_image

    inputs = adapter.processor(images=[load_image(image_ref)], text=[adapter.build_prompt(prompt)],
                               return_tensors="pt")
    out = adapter.model.generate(**inputs, max_new_tokens=max_new, do_sample=False,
                                 pad_token_id=adapter.tokenizer.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    eos = adapter.tokenizer.eos_token_id
    return new[:new.index(eos)] if eos in new else new


def stock_image_features(adapter, image_ref: str) -> torch.Tensor:
    """The stock projected image features, ``[tokens, D]``."""
    from layersafe.data.base import load_image

    inputs = adapter.processor(images=[load_image(image_ref)], text=[adapter.build_prompt("x")],
                               return_tensors="pt")
    pixels = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "token_type_ids",
                                                             "mm_token_type_ids")}
    with torch.no_grad():
        out = adapter.model.model.get_image_features(**pixels)
    feats = getattr(out, "pooler_output", out)
    feats = torch.cat(list(feats)) if isinstance(feats, (list, tuple)) else feats
    return feats.reshape(-1, feats.shape[-1])


def check_scan(adapter, dataset, out_dir, *, max_new: int = 8, batch_size: int = 4) -> list[dict]:
    """Scan every layer; assert the one-encoder-pass-per-group contract, the default layer's
    equality with stock generate token for token, and that layers change the responses."""
    from layersafe.io import read_jsonl
    from layersafe.scan import ScanConfig, run_scan

    calls = []
    encode = adapter.encode
    with mock.patch.object(adapter, "encode", lambda items, layers: calls.append(len(items)) or encode(items, layers)):
        run_scan(ScanConfig(model="unused", dataset=str(dataset), layers="all", out=str(out_dir),
                            max_new_tokens=max_new, batch_size=batch_size, judges=[]),
                 adapter=adapter, progress=False, log=lambda m: None)
    rows = read_jsonl(out_dir / "generations.jsonl")
    n = adapter.num_layers
    assert len(rows) == 5 * (n + 1) and not any(r["error"] for r in rows)
    assert sorted({r["layer"] for r in rows}) == list(range(n + 1))
    assert calls == [batch_size, 5 - batch_size]  # each image encoded once for all layers
    tok = adapter.tokenizer
    default = [r for r in rows if r["layer"] == adapter.default_layer]
    assert len(default) == 5 and all(r["is_default_layer"] for r in default)
    for r in default:
        ref = stock_tokens(adapter, r["prompt"], r["image"], max_new)
        assert r["response"] == tok.decode(ref, skip_special_tokens=True).strip(), r["sample_id"]
        assert r["response_tokens"] == len(ref)
        assert r["finish_reason"] == ("length" if len(ref) == max_new else "stop")
    # Layers really differ: per sample, most layers give their own response.
    per_sample = {}
    for r in rows:
        per_sample.setdefault(r["sample_id"], set()).add(r["response"])
    assert sum(len(v) for v in per_sample.values()) >= 5 * n, per_sample
    return rows


def not_without_extras(adapter, images=("coffee", "rocket", "astronaut")) -> bool:
    """True if dropping the family inputs of ``_generate_inputs`` (token types, grids) changes
    the default-layer generations: those inputs matter, so passing them is needed."""
    from layersafe.data.base import load_image

    items = [adapter.tokenize(adapter.build_prompt("Describe this image."), load_image("skimage:" + n))
             for n in images]
    feats = adapter.features(adapter.encode(items, [adapter.default_layer]), adapter.default_layer,
                             range(len(items)))
    with_extras = [g.tokens for g in adapter.generate(items, feats, max_new_tokens=8)]
    with mock.patch.object(adapter, "_generate_inputs", lambda items, ids: {}):
        without = [g.tokens for g in adapter.generate(items, feats, max_new_tokens=8)]
    return with_extras != without
