"""Qwen2.5-VL adapter on a tiny random Qwen2_5_VLForConditionalGeneration (real class, offline)."""

import pytest
import torch

from family_builders_b import (build_tiny_qwen2_5_vl, check_scan, not_without_extras,
                               qwen_processor_without_torchvision, stock_image_features)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from layersafe.models import load_vlm

    path = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("qwen") / "m")
    with qwen_processor_without_torchvision():
        return load_vlm(str(path), device="cpu", dtype="float32")


def test_identity(adapter):
    from layersafe.models import supported

    assert type(adapter).__name__ == "Qwen2_5_VLAdapter" and adapter.family == "qwen2_5_vl"
    assert (adapter.num_layers, adapter.default_layer) == (4, 4)
    meaning = adapter.layer_meaning()
    assert "blocks [2, 4] use full attention" in meaning and "default 4 = stock" in meaning
    assert "Qwen2_5_VLForConditionalGeneration" in supported()


def test_features(adapter):
    """Default layer = stock merged features exactly, for images of different grid sizes batched
    together; earlier layers differ and keep the token count."""
    from layersafe.data.base import load_image

    names = ("coffee", "astronaut")  # 8x12 and 10x10 patch grids -> 24 and 25 tokens
    items = [adapter.tokenize(adapter.build_prompt("x"), load_image("skimage:" + n)) for n in names]
    enc = adapter.encode(items, range(5))
    for i, name in enumerate(names):
        torch.testing.assert_close(adapter.features(enc, 4, [i])[0], stock_image_features(adapter, "skimage:" + name),
                                   rtol=0, atol=0)
    assert [tuple(f.shape) for f in adapter.features(enc, 0, [0, 1])] == [(24, 64), (25, 64)]
    # Order matters: the window permutation undone, features of layer 4 computed on the second
    # image alone equal those computed next to the first.
    alone = adapter.encode(items[1:], [4])
    torch.testing.assert_close(adapter.features(alone, 4, [0])[0], adapter.features(enc, 4, [1])[0])
    assert (adapter.features(enc, 2, [0])[0] - adapter.features(enc, 4, [0])[0]).abs().max() > 0.1


def test_scan_all_layers_default_equals_stock(adapter, small_dataset, tmp_path):
    check_scan(adapter, small_dataset, tmp_path / "scan")


def test_rope_grid_matters(adapter):
    """Without image_grid_thw/mm_token_type_ids the LM falls back to 1-D positions and answers
    differently: the scan equals stock only because generate passes them."""
    assert not_without_extras(adapter)
