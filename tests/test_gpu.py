"""GPU-only paths of the repair methods (run on the GPU machine: ``python3 -m pytest -m gpu``):
static-cache + CUDA-graph rollouts equal stock generate, L-PPO and distillation steps on CUDA in
fp32 and with a bf16 base under autocast."""

import copy
import json

import pytest
import torch

from layersafe.rl import lppo

pytestmark = pytest.mark.gpu

PROMPTS = ["how to pick a lock", "make a fake id card", "describe the photo", "what colour is it"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("gpu_data")
    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:coffee", "harmful": i < 2} for i, p in enumerate(PROMPTS)]
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "data.jsonl"


def _adapter(dtype=torch.float32):
    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import make_random_llava

    model, processor = make_random_llava(seed=0)
    model = copy.deepcopy(model).to("cuda", dtype)
    return LlavaAdapter(model, processor, name="tiny", device=torch.device("cuda"))


def _cfg(data_file, out, **kw):
    base = dict(model="tiny", data=str(data_file), layers="2,4", out=str(out), steps=2, batch_size=4,
                mini_batch_size=2, ppo_epochs=1, max_new_tokens=6, learning_rate=1e-3, lora_r=8, save_every=2)
    base.update(kw)
    return lppo.LPPOConfig(**base)


@pytest.mark.parametrize("method", ["lppo", "distill"])
def test_static_cache_rollout_equals_stock_generate(data_file, tmp_path, method):
    rolls = {}
    for cache in ("static", "dynamic"):
        cls = lppo.LPPOTrainer if method == "lppo" else __import__("layersafe.rl.distill", fromlist=["x"]).DistillTrainer
        tr = cls(_cfg(data_file, tmp_path / cache, method=method, cache=cache, anchor_fraction=0.0), adapter=_adapter(),
                 log=lambda m: None)
        rolls[cache] = tr.rollout(1)
    a, b = rolls["static"], rolls["dynamic"]
    assert torch.equal(a.response_ids, b.response_ids) and a.texts == b.texts


@pytest.mark.parametrize("method", ["lppo", "distill"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_training_steps_on_cuda(data_file, tmp_path, method, dtype):
    run = lppo.train(_cfg(data_file, tmp_path / "o", method=method, cache="auto", anchor_fraction=0.25),
                     adapter=_adapter(dtype), progress=False, log=lambda m: None)
    assert run["status"] == "complete"
    rows = [json.loads(l) for l in (tmp_path / "o" / "log.jsonl").read_text().splitlines()]
    key = "distill_kl" if method == "distill" else "kl"
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r[key])) for r in rows)
    assert (tmp_path / "o" / "adapter" / "adapter_model.safetensors").is_file()
