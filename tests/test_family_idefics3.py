"""Idefics3/SmolVLM adapter on a tiny random Idefics3ForConditionalGeneration (real class, offline)."""

import pytest
import torch

from family_builders_b import build_tiny_idefics3, check_scan, stock_image_features


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from layersafe.models import load_vlm

    return load_vlm(str(build_tiny_idefics3(tmp_path_factory.mktemp("idefics3") / "m")), device="cpu",
                    dtype="float32")


def test_identity(adapter):
    from layersafe.models import supported

    assert type(adapter).__name__ == "Idefics3Adapter" and adapter.family == "idefics3"
    assert (adapter.num_layers, adapter.default_layer) == (4, 4)
    assert "post_layernorm, then the connector per image crop" in adapter.layer_meaning()
    assert "default 4 = stock" in adapter.layer_meaning()
    assert "Idefics3ForConditionalGeneration" in supported()


def test_features(adapter):
    """Default layer = stock features exactly over all crops of each image; other layers keep the
    token count (16 per crop) and differ."""
    from layersafe.data.base import load_image

    names = ("coffee", "moon")
    items = [adapter.tokenize(adapter.build_prompt("x"), load_image("skimage:" + n)) for n in names]
    enc = adapter.encode(items, range(5))
    assert enc.crops == [5, 5]  # 2x2 tiles + the global view
    for i, name in enumerate(names):
        torch.testing.assert_close(adapter.features(enc, 4, [i])[0], stock_image_features(adapter, "skimage:" + name),
                                   rtol=0, atol=0)
    f0 = adapter.features(enc, 0, [1])[0]
    assert f0.shape == (80, 64)
    assert (f0 - adapter.features(enc, 4, [1])[0]).abs().max() > 0.1
    n_image_tokens = int((items[1]["input_ids"] == adapter.image_token_id).sum())
    assert n_image_tokens == 80


def test_scan_all_layers_default_equals_stock(adapter, small_dataset, tmp_path):
    check_scan(adapter, small_dataset, tmp_path / "scan")
