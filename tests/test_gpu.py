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


def test_learning_on_cuda_fused_adamw_equals_foreach(data_file, tmp_path):
    """On a GPU the trainer's AdamW is fused (one kernel per step, docs/lppo.md "Multi-GPU"): one
    learning phase updates the LoRA weights as foreach AdamW does, up to rounding."""
    trained = {}
    for fused in (True, False):
        tr = lppo.LPPOTrainer(_cfg(data_file, tmp_path / str(fused), cache="static", anchor_fraction=0.0),
                              adapter=_adapter(), log=lambda m: None)
        assert tr.optimizer.defaults["fused"] is True
        if not fused:
            lr = tr.optimizer.param_groups[0]["lr"]
            tr.optimizer = torch.optim.AdamW(tr.trainable_params, lr=lr, weight_decay=0.0, foreach=True)
        ro = tr.rollout(1)
        tr.learn(ro, tr.score(ro), 1)
        trained[fused] = [p.detach().clone() for p in tr.trainable_params]
    moved = max((a - b).abs().max().item() for a, b in zip(trained[True], _adapter_lora(tmp_path, data_file)))
    assert moved > 1e-4  # the step did change the weights
    for a, b in zip(trained[True], trained[False]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _adapter_lora(tmp_path, data_file):
    tr = lppo.LPPOTrainer(_cfg(data_file, tmp_path / "fresh", cache="static", anchor_fraction=0.0),
                          adapter=_adapter(), log=lambda m: None)
    return [p.detach().clone() for p in tr.trainable_params]


def test_nan_loss_on_cuda_stops_before_the_weights_change(data_file, tmp_path, monkeypatch):
    """The loss is read with the gradient norm after backward (one host sync per minibatch): a NaN
    loss still stops learning before the optimizer step."""
    import dataclasses

    from layersafe.rl import ppo
    from layersafe.rl.onpolicy import NonFiniteError

    tr = lppo.LPPOTrainer(_cfg(data_file, tmp_path / "o", cache="static", anchor_fraction=0.0), adapter=_adapter(),
                          log=lambda m: None)
    ro = tr.rollout(1)
    sc = tr.score(ro)
    before = [p.detach().clone() for p in tr.trainable_params]
    real = ppo.policy_loss
    monkeypatch.setattr(ppo, "policy_loss", lambda *a, **k: dataclasses.replace(real(*a, **k), loss=real(*a, **k).loss * float("nan")))
    with pytest.raises(NonFiniteError, match="the loss became nan"):
        tr.learn(ro, sc, 1)
    assert all(torch.equal(a, p) for a, p in zip(before, tr.trainable_params))


def test_image_token_scatter_on_cuda_equals_cpu():
    """embeds_at_image_tokens checks the feature count on the device (no host sync) on a GPU."""
    from layersafe.models.base import embeds_at_image_tokens
    from layersafe.models.tiny import make_random_llava

    model, _ = make_random_llava(seed=0)
    tok = model.config.image_token_id
    prompt = torch.tensor([[0, tok, tok, 5], [tok, tok, 7, 8]])
    pm, resp, rm = torch.ones_like(prompt), torch.tensor([[3, 4], [6, 0]]), torch.tensor([[1, 1], [1, 0]])
    feats = [torch.randn(2, model.config.text_config.hidden_size) for _ in range(2)]
    cpu = embeds_at_image_tokens(model, tok, prompt, pm, resp, rm, feats)
    gpu_model = copy.deepcopy(model).cuda()
    gpu = embeds_at_image_tokens(gpu_model, tok, prompt.cuda(), pm.cuda(), resp.cuda(), rm.cuda(), [f.cuda() for f in feats])
    torch.cuda.synchronize()
    torch.testing.assert_close(gpu["inputs_embeds"].cpu(), cpu["inputs_embeds"])
    assert torch.equal(gpu["position_ids"].cpu(), cpu["position_ids"])


def test_prefix_reuse_rollout_equals_whole_rows_on_cuda(data_file, tmp_path):
    """align --prefix-reuse through the CUDA graphs (fp32): the 4 rows share one photo at each of
    their layers, and sample the tokens of the whole-row rollout."""
    rolls = {}
    for reuse in (True, False):
        tr = lppo.LPPOTrainer(_cfg(data_file, tmp_path / str(reuse), cache="static", anchor_fraction=0.0,
                                   prefix_reuse=reuse), adapter=_adapter(), log=lambda m: None)
        rolls[reuse] = tr.rollout(1)
    a, b = rolls[True], rolls[False]
    assert torch.equal(a.response_ids, b.response_ids) and a.texts == b.texts
