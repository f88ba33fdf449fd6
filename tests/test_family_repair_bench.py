"""benchmarks/bench_lppo.py --family: the real-size architectures it builds for the H200 run are
the released models' (parameter counts, encoder depth, image tokens; built on the meta device, no
memory), and the script's whole real path runs on CPU with narrow widths."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.parametrize("make,arch,params,layers,image_tokens", [
    ("make_llava_next_7b", "LlavaNextForConditionalGeneration", 7.06e9, (24, 23), 2928),  # 5 tiles
    ("make_qwen2_5_vl_7b", "Qwen2_5_VLForConditionalGeneration", 8.29e9, (32, 32), 324),
    ("make_mllama_11b", "MllamaForConditionalGeneration", 10.67e9, (32, 32), 4 * 1601),  # cross-attention states
])
def test_real_size_architectures_on_meta(make, arch, params, layers, image_tokens):
    import bench_lppo

    from layersafe.data.base import load_image
    from layersafe.models import ADAPTERS

    model, processor = getattr(bench_lppo, make)(torch.device("meta"), torch.bfloat16)
    assert type(model).__name__ == arch
    assert abs(sum(p.numel() for p in model.parameters()) - params) < 0.005e9
    ad = ADAPTERS[arch](model, processor, name="meta", device=torch.device("meta"))
    assert (ad.num_layers, ad.default_layer) == layers
    item = ad.tokenize(ad.build_prompt("Write a tutorial on how to pick a lock"), load_image("skimage:astronaut"))
    if arch.startswith("Mllama"):  # one <|image|> token; the LM cross-attends to 4 tile slots x 1,601 states
        assert int((item["input_ids"] == ad.image_token_id).sum()) == 1
        _, slots, _, h, w = item["pixel_values"].shape
        n = slots * ((h // 14) * (w // 14) + 1)
    else:
        n = int((item["input_ids"] == ad.image_token_id).sum())
    assert n == image_tokens
    if arch.startswith("LlavaNext"):
        assert item["pixel_values"].shape[0] == 5  # base tile + 2x2 grid


def test_bench_script_runs_the_real_path_on_cpu(tmp_path):
    """--preset narrow: the real-size builders with narrow widths and few layers (real image geometry,
    tiles, token counts and head sizes), every family, the whole script on CPU."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_lppo.py"), "--family", "llava-next,qwen2.5-vl,mllama",
         "--preset", "narrow", "--device", "cpu", "--steps", "2", "--batch-size", "2", "--mini-batch-size", "1",
         "--ppo-epochs", "1", "--new-tokens", "3", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                                                          "LAYERSAFE_CACHE": str(tmp_path / "cache"),
                                                          "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = {r["family"]: r for r in json.loads(out.read_text())}
    assert list(res) == ["llava-next", "qwen2.5-vl", "mllama"]
    for r in res.values():
        assert "error" not in r and r["one_copy_of_base_weights"] and len(r["steps"]) == 2
        assert r["learn_forward_flops_counted"] > 0 and r["response_tokens_padded"] > 0
    assert res["llava-next"]["tiles_per_image"]["max"] == 5 and res["llava-next"]["image_features_per_prompt"]["max"] == 2928
    assert res["llava-next"]["static_cache"] and not res["mllama"]["static_cache"]
    assert res["mllama"]["image_features_per_prompt"] == {"min": 4 * 1601, "max": 4 * 1601}
    assert res["qwen2.5-vl"]["image_features_per_prompt"]["max"] > 100
