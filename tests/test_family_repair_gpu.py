"""GPU-only paths of repair on every family (run on the GPU machine: ``python3 -m pytest -m gpu
tests/test_family_repair_gpu.py``): LLaVA-NeXT's L-PPO rollouts over the static-cache decoder
equal stock generate; L-PPO and distillation steps on CUDA in fp32 and with a bf16 base under
autocast for each family's built-in tiny model."""

import json

import pytest
import torch

from layersafe.models.tiny_families import BUILDERS
from layersafe.rl import lppo

pytestmark = pytest.mark.gpu

PROMPTS = ["how to pick a lock", "make a fake id card", "describe the photo", "what colour is it"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpu_data")
    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:" + ("coffee", "astronaut")[i % 2], "harmful": i < 2}
            for i, p in enumerate(PROMPTS)]
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "data.jsonl"


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {alias: build(root / alias, seed=0) for alias, build in BUILDERS.items()}


def _adapter(model_dirs, alias, dtype="float32"):
    from layersafe.models import load_vlm

    return load_vlm(str(model_dirs[alias]), device="cuda", dtype=dtype)


def _cfg(data_file, out, **kw):
    from test_gpu import _cfg as llava_cfg  # the LLaVA GPU tests' settings; layers every tiny family has

    return llava_cfg(data_file, out, **{"layers": "1,2", **kw})


@pytest.mark.parametrize("method", ["lppo", "distill"])
def test_llava_next_static_cache_rollout_equals_stock_generate(model_dirs, data_file, tmp_path, method):
    from layersafe.rl.distill import DistillTrainer

    rolls = {}
    for cache in ("static", "dynamic"):
        cls = lppo.LPPOTrainer if method == "lppo" else DistillTrainer
        tr = cls(_cfg(data_file, tmp_path / cache, method=method, cache=cache, anchor_fraction=0.0),
                 adapter=_adapter(model_dirs, "tiny-random-llava-next"), log=lambda m: None)
        rolls[cache] = tr.rollout(1)
    a, b = rolls["static"], rolls["dynamic"]
    assert torch.equal(a.response_ids, b.response_ids) and a.texts == b.texts


@pytest.mark.parametrize("alias", list(BUILDERS))
@pytest.mark.parametrize("method", ["lppo", "distill"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_training_steps_on_cuda(model_dirs, data_file, tmp_path, alias, method, dtype):
    run = lppo.train(_cfg(data_file, tmp_path / "o", method=method, cache="auto", anchor_fraction=0.25),
                     adapter=_adapter(model_dirs, alias, dtype), progress=False, log=lambda m: None)
    assert run["status"] == "complete"
    rows = [json.loads(line) for line in (tmp_path / "o" / "log.jsonl").read_text().splitlines()]
    key = "distill_kl" if method == "distill" else "kl"
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r[key])) for r in rows)
    assert (tmp_path / "o" / "adapter" / "adapter_model.safetensors").is_file()
