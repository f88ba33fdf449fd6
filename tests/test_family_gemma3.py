"""Gemma 3 adapter on a tiny random Gemma3ForConditionalGeneration (real class, offline)."""

import pytest
import torch

from family_builders_b import build_tiny_gemma3, check_scan, stock_image_features


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from layersafe.models import load_vlm

    return load_vlm(str(build_tiny_gemma3(tmp_path_factory.mktemp("gemma3") / "m")), device="cpu", dtype="float32")


def test_identity(adapter):
    from layersafe.models import supported

    assert type(adapter).__name__ == "Gemma3Adapter" and adapter.family == "gemma3"
    assert (adapter.num_layers, adapter.default_layer) == (4, 4)
    assert "post_layernorm, then the projector (pool to 16 tokens)" in adapter.layer_meaning()
    assert "default 4 = stock" in adapter.layer_meaning()
    assert "Gemma3ForConditionalGeneration" in supported()


def test_features(adapter):
    """Default layer = stock features exactly; every layer = projector(post_layernorm(h_l))."""
    from layersafe.data.base import load_image

    items = [adapter.tokenize(adapter.build_prompt("x"), load_image("skimage:" + n)) for n in ("coffee", "moon")]
    enc = adapter.encode(items, range(5))
    for i, name in enumerate(("coffee", "moon")):
        torch.testing.assert_close(adapter.features(enc, 4, [i])[0], stock_image_features(adapter, "skimage:" + name),
                                   rtol=0, atol=0)
    vt = adapter.model.model.vision_tower
    with torch.no_grad():
        hs = vt(pixel_values=torch.stack([it["pixel_values"] for it in items]), output_hidden_states=True).hidden_states
        for layer in range(5):
            ref = adapter.model.model.multi_modal_projector(vt.post_layernorm(hs[layer]))
            torch.testing.assert_close(torch.stack(adapter.features(enc, layer, [0, 1])), ref)
    f = adapter.features(enc, 2, [0])[0]
    assert f.shape == (16, 64)  # mm_tokens_per_image x text width, at every layer
    assert (f - adapter.features(enc, 4, [0])[0]).abs().max() > 0.1


def test_scan_all_layers_default_equals_stock(adapter, small_dataset, tmp_path):
    check_scan(adapter, small_dataset, tmp_path / "scan")


def test_generate_passes_token_types(adapter):
    """Stock Gemma 3 attends bidirectionally over image tokens (token_type_ids = 1 there); the
    injected generate must pass them, left-padded like input_ids. (On the tiny model their effect
    on logits is too small to flip greedy tokens, so this checks the call itself.)"""
    from unittest import mock

    from layersafe.data.base import load_image

    items = [adapter.tokenize(adapter.build_prompt(p), load_image("skimage:coffee")) for p in ("Hi", "Describe it.")]
    feats = adapter.features(adapter.encode(items, [4]), 4, [0, 1])
    with mock.patch.object(adapter.model, "generate", wraps=adapter.model.generate) as spy:
        adapter.generate(items, feats, max_new_tokens=2)
    kw = spy.call_args.kwargs
    tt, ids = kw["token_type_ids"], kw["input_ids"]
    assert tt.shape == ids.shape and "pixel_values" not in kw
    assert torch.equal(tt.bool(), ids == adapter.image_token_id) and int(tt.sum()) == 2 * 16
