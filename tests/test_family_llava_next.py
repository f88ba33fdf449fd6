"""LLaVA-NeXT: at every layer the scan equals stock generate(vision_feature_layer=l), token for token."""

import functools

import pytest
import torch

from family_builders import build_tiny_llava_next, family_fixtures, image_ref
from layersafe.cli import main
from layersafe.data.base import load_image
from layersafe.io import read_jsonl
from layersafe.scan import ScanConfig, run_scan
# LLaVA-NeXT's generate takes vision_feature_layer like LLaVA's: the same stock reference serves.
from test_scan_equivalence import MAX_NEW, stock_generate

model_dir, adapter, dataset = family_fixtures(build_tiny_llava_next)
_stock = functools.lru_cache(maxsize=None)(stock_generate)  # batch-1 and batch-3 scans share references


@pytest.mark.parametrize("batch_size,n", [(1, 3), (3, 5)])
def test_every_layer_matches_stock_generate(adapter, dataset, tmp_path, batch_size, n):
    tower_rows = []  # tiles per vision-tower call: one call per group of images, all layers
    hook = adapter.vision_tower.register_forward_hook(lambda m, a, o: tower_rows.append(a[0].shape[0]))
    try:
        run_scan(ScanConfig(model="unused", dataset=str(dataset), layers="all", out=str(tmp_path / "scan"),
                            max_new_tokens=MAX_NEW, batch_size=batch_size, limit=n, judges=[]),
                 adapter=adapter, progress=False, log=lambda m: None)
    finally:
        hook.remove()
    rows = read_jsonl(tmp_path / "scan" / "generations.jsonl")
    depth = adapter.num_layers
    assert len(rows) == n * (depth + 1) and sorted({r["layer"] for r in rows}) == list(range(depth + 1))
    # wide/tall images get a 1x3 grid (4 tiles), square ones 2x2 (5 tiles): 4+4+5(+5+5) real tiles
    assert len(tower_rows) == -(-n // batch_size) and sum(tower_rows) == [4, 8, 13, 18, 23][n - 1]
    tok = adapter.tokenizer
    distinct = set()
    for r in rows:
        ref = _stock(adapter, r["prompt"], image_ref(dataset, r["image"]), r["layer"])
        assert r["response"] == tok.decode(ref, skip_special_tokens=True).strip(), (r["sample_id"], r["layer"])
        assert r["response_tokens"] == len(ref)
        distinct.add((r["sample_id"], r["response"]))
    assert len(distinct) > n * 4  # layers really differ


def test_features_equal_stock_image_features_and_token_count_is_layer_free(adapter, dataset):
    """Projected + packed features of one tower pass equal get_image_features at every layer, for
    images with different tile grids in one batch; each image's token count is the same at all layers."""
    refs = ["imgs/wide.png", "imgs/tall.png", "skimage:coffee"]
    items = [adapter.tokenize(adapter.build_prompt("x"), load_image(image_ref(dataset, r))) for r in refs]
    n_tokens = [int((it["input_ids"] == adapter.image_token_id).sum()) for it in items]
    assert len(set(n_tokens)) > 1  # the unpadded grids differ
    layers = list(range(adapter.num_layers + 1))
    enc = adapter.encode(items, layers)
    assert enc.tiles == [4, 4, 5]
    for layer in layers:
        vfl = layer if layer > 0 else -(adapter.num_layers + 1)
        for i, it in enumerate(items):
            with torch.no_grad():
                ref = adapter.model.model.get_image_features(
                    pixel_values=it["pixel_values"][None], image_sizes=it["image_sizes"][None],
                    vision_feature_layer=vfl, vision_feature_select_strategy="default")
            ref = ref.pooler_output if hasattr(ref, "pooler_output") else ref[0]
            ours = adapter.features(enc, layer, [i])[0]
            assert ours.shape[0] == n_tokens[i]
            torch.testing.assert_close(ours, ref[0])


def test_depth_default_and_layers_command(adapter, model_dir, capsys):
    assert adapter.family == "llava_next"
    assert adapter.num_layers == 6 and adapter.default_layer == 5  # vision_feature_layer=-2
    assert main(["layers", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "LlavaNextForConditionalGeneration" in out and "default layer:  5" in out
    assert "anyres tile" in out and "image_newline" in out
