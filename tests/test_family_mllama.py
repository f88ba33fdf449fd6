"""Llama 3.2 Vision (Mllama): the early exit at the top layer IS the stock vision path, default-layer
responses equal stock generate token for token, and the other layers give other responses."""

import pytest
import torch

from family_builders import build_tiny_mllama, family_fixtures, image_ref
from layersafe.cli import main
from layersafe.data.base import load_image
from layersafe.io import read_jsonl
from layersafe.scan import ScanConfig, run_scan

MAX_NEW = 8


model_dir, adapter, dataset = family_fixtures(build_tiny_mllama)


def items_for(adapter, dataset, refs):
    return [adapter.tokenize(adapter.build_prompt("Describe it"), load_image(image_ref(dataset, r))) for r in refs]


def stock_tokens(adapter, prompt, image):
    """Reference: MllamaForConditionalGeneration.generate on the processor's output (no layer choice)."""
    inputs = adapter.processor(images=[image], text=[adapter.build_prompt(prompt)], return_tensors="pt")
    out = adapter.model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    stops = [i for i, t in enumerate(new) if t in adapter.model.generation_config.eos_token_id]
    return new[:stops[0]] if stops else new


def test_top_layer_exit_equals_stock_vision_output(adapter, dataset):
    refs = ["imgs/wide.png", "imgs/tall.png", "imgs/square.png", "skimage:coffee"]
    items = items_for(adapter, dataset, refs)
    # different aspect ratios in one batch, including images with padding tiles
    assert len({int(it["aspect_ratio_ids"]) for it in items}) >= 3
    assert min(int(it["aspect_ratio_mask"].sum()) for it in items) < 4
    enc = adapter.encode(items, [adapter.num_layers])
    with torch.no_grad():
        stock = adapter.model.model.vision_model(
            pixel_values=torch.stack([it["pixel_values"] for it in items]),
            aspect_ratio_ids=torch.stack([it["aspect_ratio_ids"] for it in items]),
            aspect_ratio_mask=torch.stack([it["aspect_ratio_mask"] for it in items])).last_hidden_state
    ours = adapter.vision_output(enc, adapter.num_layers, range(len(items)))
    torch.testing.assert_close(ours, stock[:, 0], rtol=0, atol=0)
    # and the projected states are what the model feeds its cross-attention
    hidden = adapter.model.config.text_config.hidden_size
    cross = adapter.model.model.multi_modal_projector(stock).reshape(-1, stock.shape[-2], hidden)
    feats = torch.cat(adapter.features(enc, adapter.num_layers, range(len(items))))
    torch.testing.assert_close(feats, cross)


def test_deeper_taps_take_the_exit_layer(adapter, dataset):
    """Exit at layer 1, below both taps (local layers 2 and 4): every tap channel holds h_1."""
    items = items_for(adapter, dataset, ["imgs/wide.png", "skimage:coffee"])
    enc = adapter.encode(items, [1, 3])
    assert adapter._taps == [2, 4]
    dim = adapter.model.config.vision_config.hidden_size
    n_tiles, keep = enc.num_tiles, adapter.vision.num_patches
    h1 = enc.hidden[1].reshape(2, n_tiles, -1, dim)[:, :, :keep]
    out1 = adapter.vision_output(enc, 1, [0, 1])
    taps1 = out1[..., dim:].reshape(*out1.shape[:-1], dim, 2)  # stock stacks taps on the last dim
    torch.testing.assert_close(taps1[..., 0], h1, rtol=0, atol=0)
    torch.testing.assert_close(taps1[..., 1], h1, rtol=0, atol=0)
    # at layer 3 the tap at 2 is real and the tap at 4 takes h_3
    out3 = adapter.vision_output(enc, 3, [0, 1])
    taps3 = out3[..., dim:].reshape(*out3.shape[:-1], dim, 2)
    h = {l: enc.hidden[l].reshape(2, n_tiles, -1, dim)[:, :, :keep] for l in (2, 3)}
    torch.testing.assert_close(taps3[..., 0], h[2], rtol=0, atol=0)
    torch.testing.assert_close(taps3[..., 1], h[3], rtol=0, atol=0)


@pytest.mark.parametrize("batch_size,layers", [(1, "0,3,default"), (3, "all")])
def test_scan_default_layer_matches_stock_and_layers_differ(adapter, dataset, tmp_path, batch_size, layers):
    vm = adapter.vision
    local, glob = [], []  # images per call of each stack
    hooks = [vm.transformer.register_forward_hook(lambda m, a, o: local.append(a[0].shape[0])),
             vm.global_transformer.register_forward_hook(lambda m, a, o: glob.append(a[0].shape[0]))]
    try:
        run_scan(ScanConfig(model="unused", dataset=str(dataset), layers=layers, out=str(tmp_path / "scan"),
                            max_new_tokens=MAX_NEW, batch_size=batch_size, judges=[]),
                 adapter=adapter, progress=False, log=lambda m: None)
    finally:
        for h in hooks:
            h.remove()
    n_layers = 3 if batch_size == 1 else adapter.num_layers + 1
    groups = -(-5 // batch_size)
    assert len(local) == groups and sum(local) == 5  # the local stack: once per image for all layers
    assert sum(glob) == 5 * n_layers  # the global stack: once per (image, layer)
    rows = read_jsonl(tmp_path / "scan" / "generations.jsonl")
    assert len(rows) == 5 * n_layers and not any(r["error"] for r in rows)
    tok = adapter.tokenizer
    by_sample = {}
    for r in rows:
        by_sample.setdefault(r["sample_id"], {})[r["layer"]] = r["response"]
        if r["layer"] == adapter.default_layer:
            ref = stock_tokens(adapter, r["prompt"], load_image(image_ref(dataset, r["image"])))
            assert r["response"] == tok.decode(ref, skip_special_tokens=True).strip(), r["sample_id"]
            assert r["response_tokens"] == len(ref)
    # early exits change the answer: for every sample, and often
    assert all(len(set(resp.values())) >= 2 for resp in by_sample.values()), by_sample
    assert sum(len(set(resp.values())) for resp in by_sample.values()) > 5 * n_layers // 2


def test_injected_states_reach_prefill_only(adapter, dataset):
    """The cross-attention states go in once; later steps read them from the cache."""
    seen = []
    hook = adapter.model.model.language_model.register_forward_pre_hook(
        lambda m, a, kw: seen.append(kw.get("cross_attention_states") is not None), with_kwargs=True)
    items = items_for(adapter, dataset, ["imgs/wide.png", "imgs/square.png"])
    enc = adapter.encode(items, [2])
    try:
        gens = adapter.generate(items, adapter.features(enc, 2, [0, 1]), max_new_tokens=5)
    finally:
        hook.remove()
    assert len(seen) > 1 and seen[0] and not any(seen[1:]) and len(gens) == 2
    assert "prepare_inputs_for_generation" not in vars(adapter.model)  # the generate wrapper is gone


def test_depth_default_and_layers_command(adapter, model_dir, capsys):
    assert adapter.family == "mllama"
    assert adapter.num_layers == 6 and adapter.default_layer == 6  # local blocks; stock uses all
    assert main(["layers", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "MllamaForConditionalGeneration" in out and "default layer:  6" in out and "0..6" in out
    assert "2 global blocks" in out and "[2, 4]" in out
