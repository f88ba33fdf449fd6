"""The scan engine's responses equal transformers' own generate(vision_feature_layer=l)."""

import pytest
import torch

from layersafe.data.base import load_image
from layersafe.io import read_jsonl
from layersafe.scan import ScanConfig, run_scan

MAX_NEW = 10


def stock_generate(adapter, prompt, image_ref, layer):
    """Reference: LlavaForConditionalGeneration.generate with the layer chosen by transformers."""
    n = adapter.num_layers
    # transformers 5.23/5.24 treat vision_feature_layer=0 as unset (docs/design.md §4): use -(N+1).
    vfl = layer if layer > 0 else -(n + 1)
    inputs = adapter.processor(images=[load_image(image_ref)], text=[adapter.build_prompt(prompt)],
                               return_tensors="pt")
    out = adapter.model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False, vision_feature_layer=vfl,
                                 pad_token_id=adapter.tokenizer.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    eos = adapter.tokenizer.eos_token_id
    return new[:new.index(eos)] if eos in new else new


@pytest.mark.parametrize("batch_size", [1, 4])
def test_every_layer_matches_stock_generate(tiny_adapter, small_dataset, tmp_path, batch_size):
    out = tmp_path / f"scan-b{batch_size}"
    run_scan(ScanConfig(model="unused", dataset=str(small_dataset), layers="all", out=str(out),
                        max_new_tokens=MAX_NEW, batch_size=batch_size, judges=[]),
             adapter=tiny_adapter, progress=False, log=lambda m: None)
    rows = read_jsonl(out / "generations.jsonl")
    n = tiny_adapter.num_layers
    assert len(rows) == 5 * (n + 1)
    assert sorted({r["layer"] for r in rows}) == list(range(n + 1))
    tok = tiny_adapter.tokenizer
    distinct = set()
    for r in rows:
        ref = stock_generate(tiny_adapter, r["prompt"], r["image"], r["layer"])
        assert r["response"] == tok.decode(ref, skip_special_tokens=True).strip(), (r["sample_id"], r["layer"])
        assert r["response_tokens"] == len(ref)
        assert r["finish_reason"] == ("length" if len(ref) == MAX_NEW else "stop")
        distinct.add((r["sample_id"], r["response"]))
    # The layers really differ: a random model gives different text at different layers.
    assert len(distinct) > 5 * 3


def test_default_layer_and_depth(tiny_adapter):
    # config: 6 vision blocks, vision_feature_layer=-2 -> hidden_states index 5
    assert tiny_adapter.num_layers == 6
    assert tiny_adapter.default_layer == 5


def test_features_equal_get_image_features(tiny_adapter):
    """P(e_l) from one encoder pass equals transformers' get_image_features at every layer."""
    items = [tiny_adapter.tokenize(tiny_adapter.build_prompt("x"), load_image("skimage:" + n))
             for n in ("coffee", "moon")]
    layers = list(range(tiny_adapter.num_layers + 1))
    enc = tiny_adapter.encode(items, layers)
    pv = torch.stack([it["pixel_values"] for it in items])
    for layer in layers:
        vfl = layer if layer > 0 else -(tiny_adapter.num_layers + 1)
        with torch.no_grad():
            ref = tiny_adapter.model.model.get_image_features(
                pixel_values=pv, vision_feature_layer=vfl, vision_feature_select_strategy="default")
        ref = ref.pooler_output if hasattr(ref, "pooler_output") else ref
        ours = tiny_adapter.features(enc, layer, [0, 1])
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b.reshape(a.shape))
