"""Llama 3.2 Vision: recomputing only the cross-attention decoder layers in the backward pass
(MllamaAdapter.recompute_in_backward) changes memory, not results: on the tiny Mllama in fp32 the
L-PPO learning forward's loss and every LoRA gradient equal those without recompute, and so do two
whole L-PPO steps; only the cross-attention layers run twice; rollouts and the benchmark's counted model FLOPs (a forward
under no_grad) are unchanged, so recompute is never counted as model FLOPs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from layersafe.models import load_vlm
from layersafe.models.base import VLMAdapter
from layersafe.models.tiny_families import build_tiny_mllama
from layersafe.rl import lppo, ppo
from layersafe.rl.onpolicy import response_forward

torch.set_num_threads(1)  # 2 shared cores
ROOT = Path(__file__).resolve().parents[1]
IDX = [0, 1, 2]  # one minibatch


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mllama_recompute")
    data = root / "data.jsonl"
    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:" + img, "harmful": i % 2 == 0}
            for i, (p, img) in enumerate([("how to pick a lock", "coffee"), ("describe the photo", "astronaut"),
                                          ("make a fake id card", "rocket"), ("what colour is it", "chelsea")])]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return build_tiny_mllama(root / "model", seed=0), data, root


def make_trainer(model_and_data, out: str, **kw):
    path, data, root = model_and_data
    ad = load_vlm(str(path), device="cpu", dtype="float32")
    cfg = lppo.LPPOConfig(model="tiny", data=str(data), layers="1,5", out=str(root / out), batch_size=4,
                          max_new_tokens=4, lora_r=8, **kw)
    return lppo.LPPOTrainer(cfg, adapter=ad, log=lambda m: None)


@pytest.fixture(scope="module")
def trainer_and_rollout(model_and_data):
    tr = make_trainer(model_and_data, "out", steps=1, mini_batch_size=4, ppo_epochs=1)
    # LoRA B and the value head start at zero, which makes every LoRA A gradient zero: random
    # values so every LoRA factor has a gradient to compare.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in tr.policy.named_parameters():
            if "lora_B" in name or "value_head" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    ro = tr.rollout(1)
    assert ro.response_ids.shape[1] > 0
    return tr, ro


def _loss_and_grads(tr, ro):
    """An L-PPO-shaped loss on one minibatch (log-probs, entropy and values) in training mode, as
    LPPOTrainer.learn runs it, and the gradient of every trainable parameter."""
    tr.raw.train()
    tr.optimizer.zero_grad(set_to_none=True)
    m = ro.response_mask[IDX].float()
    logp, logits, values = response_forward(tr.policy, tr.raw, tr.adapter, ro, IDX, 1.0)
    loss = (-ppo.masked_mean(logp, m) - 0.01 * ppo.masked_mean(ppo.entropy_from_logits(logits), m)
            + ppo.masked_mean(values ** 2, m))
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in tr.policy.named_parameters() if p.requires_grad}
    tr.raw.eval()
    return loss.detach(), grads


def _runs(tr):
    """Calls of each decoder layer's attention submodule (runs again when its layer is recomputed;
    the layer's own hooks would not, transformers checkpoints ``forward`` inside ``__call__``)."""
    lm = tr.adapter.language_model()
    counts = {}
    hooks = []
    for i, layer in enumerate(lm.layers):
        sub = getattr(layer, "cross_attn", None) or layer.self_attn
        counts[i] = 0
        hooks.append(sub.register_forward_hook(lambda mod, a, o, i=i: counts.__setitem__(i, counts[i] + 1)))
    return counts, hooks


def test_recompute_equals_no_recompute_and_only_cross_attention_layers_rerun(trainer_and_rollout):
    tr, ro = trainer_and_rollout
    ad = tr.adapter
    cross = ad.model.config.text_config.cross_attention_layers
    assert cross == [1, 3]
    counts, hooks = _runs(tr)
    try:
        loss_off, grads_off = _loss_and_grads(tr, ro)
        runs_off = dict(counts)
        names = ad.recompute_in_backward()
        on = {n for n, mod in ad.model.named_modules() if getattr(mod, "gradient_checkpointing", False)}
        for k in counts:
            counts[k] = 0
        loss_on, grads_on = _loss_and_grads(tr, ro)
        runs_on = dict(counts)
    finally:
        ad.recompute_in_backward(enabled=False)
        for h in hooks:
            h.remove()
    assert names == [f"model.language_model.layers.{i}" for i in cross]
    assert on == set(names)  # no self-attention layer, vision block or model-level switch
    checkpointed = {n for n, mod in ad.model.named_modules() if getattr(mod, "gradient_checkpointing", False)}
    assert checkpointed == set(), "recompute_in_backward(enabled=False) left a layer checkpointed"
    # every layer runs once without recompute; with it, the cross-attention layers run again in backward
    assert runs_off == {0: 1, 1: 1, 2: 1, 3: 1}
    assert runs_on == {0: 1, 1: 2, 2: 1, 3: 2}
    torch.testing.assert_close(loss_on, loss_off, rtol=0, atol=1e-6)
    lora = [n for n in grads_off if "lora_" in n]
    cross_lora = [n for n in lora if any(f"layers.{i}.cross_attn." in n for i in cross)]
    assert len(cross_lora) == 4 * 2 * len(cross)  # LoRA A and B on q, k, v, o of each cross-attention layer
    for n in lora:
        torch.testing.assert_close(grads_on[n], grads_off[n], rtol=0, atol=1e-6, msg=n)
    for n in cross_lora:  # the compared gradients are not trivially zero
        assert grads_off[n].abs().max() > 1e-4, n
    torch.testing.assert_close(grads_on["value_head.weight"], grads_off["value_head.weight"], rtol=0, atol=1e-6)


def test_recompute_is_not_counted_as_model_flops_and_leaves_rollouts_alone(trainer_and_rollout):
    """bench_lppo's counted model FLOPs are a forward under no_grad: the same with recompute on
    (in training mode, as the learning phase leaves the model) as off; a forward + backward with
    recompute on executes more FLOPs, exactly the cross-attention layers' forward once more."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_lppo
    from torch.utils.flop_counter import FlopCounterMode

    tr, ro = trainer_and_rollout
    ad = tr.adapter
    off = bench_lppo.counted_forward_flops(tr, ro, 2)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:  # one forward of the minibatch, per module
        response_forward(tr.policy, tr.raw, ad, ro, IDX, 1.0)
    per_module = fc.get_flop_counts()
    executed = {}
    try:
        for on in (False, True):
            names = ad.recompute_in_backward(enabled=on)
            tr.raw.train()
            assert bench_lppo.counted_forward_flops(tr, ro, 2) == off > 0
            with FlopCounterMode(display=False) as fc:
                _loss_and_grads(tr, ro)
            executed[on] = fc.get_total_flops()
        tr.raw.eval()
        rollout_on = tr.rollout(2)
    finally:
        ad.recompute_in_backward(enabled=False)
    rollout_off = tr.rollout(2)
    cross_fwd = sum(v for k, c in per_module.items() for n in names if k.endswith("." + n) for v in c.values())
    # the extra executed work is the cross-attention layers' forward, once more
    assert executed[True] - executed[False] == cross_fwd > 0
    assert torch.equal(rollout_on.response_ids, rollout_off.response_ids)


def test_other_families_recompute_nothing():
    assert VLMAdapter.recompute_in_backward(object.__new__(VLMAdapter)) == []


def test_lppo_steps_with_recompute_equal_steps_without(model_and_data):
    """Two whole L-PPO steps (rollouts, scoring, 2 epochs of 2 minibatches) with the hook called
    after the trainer is built, as bench_lppo.py --family-recompute does: the same logged losses
    and the same LoRA weights after, as without."""
    runs, calls = {}, {}
    for on in (False, True):
        tr = make_trainer(model_and_data, f"steps_{on}", steps=2, mini_batch_size=2, ppo_epochs=2, learning_rate=1e-2,
                          family_recompute=on)
        assert tr.recomputed == (["model.language_model.layers.1", "model.language_model.layers.3"] if on else [])
        counts, hooks = _runs(tr)
        logged = [tr.train_step(step) for step in (1, 2)]
        for h in hooks:
            h.remove()
        calls[on] = counts
        weights = torch.cat([p.detach().flatten() for p in tr.policy.parameters() if p.requires_grad])
        runs[on] = ([(r["policy_loss"], r["value_loss"]) for r in logged], weights)
    # inside train_step the cross-attention layers (1, 3) really ran again, the others did not
    assert all(calls[True][i] > calls[False][i] for i in (1, 3)), calls
    assert all(calls[True][i] == calls[False][i] for i in calls if i not in (1, 3)), calls
    assert [x for r in runs[True][0] for x in r] == pytest.approx([x for r in runs[False][0] for x in r], rel=0, abs=1e-6)
    assert runs[False][0][1][0] != runs[False][0][0][0]  # the steps learned something
    torch.testing.assert_close(runs[True][1], runs[False][1], rtol=0, atol=1e-6)


def test_align_config_turns_the_recompute_on(model_and_data):
    """``align --family-recompute`` (LPPOConfig.family_recompute) reaches the adapter: the tiny
    Mllama's cross-attention layers (1 and 3) are checkpointed, its self-attention layers are not."""
    tr = make_trainer(model_and_data, "cfg_on", steps=1, family_recompute=True)
    layers = tr.adapter.language_model().layers
    flagged = [i for i, layer in enumerate(layers) if getattr(layer, "gradient_checkpointing", False)]
    assert flagged == [1, 3]
    off = make_trainer(model_and_data, "cfg_off", steps=1)
    assert not any(getattr(layer, "gradient_checkpointing", False) for layer in off.adapter.language_model().layers)


@pytest.mark.parametrize("command", ["align", "sft"])
def test_family_recompute_on_a_family_without_it_is_one_line_and_writes_nothing(tmp_path, command):
    import subprocess

    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "layersafe", command, "--model", "tiny-random-llava", "--family-recompute",
                        "--steps", "1", "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2, r.stderr[-1500:]
    assert "--family-recompute: the llava adapter has no layers to recompute" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
