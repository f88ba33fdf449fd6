"""L-PPO with a bf16 base and fp32 LoRA: the training forward runs under autocast with peft's
input casting off, so LoRA layers keep no fp32 copies of their inputs for backward."""

import torch

from layersafe.rl import lppo


def trainer(tmp_path):
    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import make_random_llava

    model, processor = make_random_llava(seed=0, dtype=torch.bfloat16, text_hidden=128, text_layers=2)
    ad = LlavaAdapter(model, processor, name="tiny", device=torch.device("cpu"))
    cfg = lppo.LPPOConfig(model="tiny", data="advbench-images", limit=8, layers="2,4", out=str(tmp_path),
                          steps=1, batch_size=4, mini_batch_size=4, ppo_epochs=1, max_new_tokens=6,
                          dtype="bfloat16", device="cpu")
    return lppo.LPPOTrainer(cfg, adapter=ad, log=lambda m: None)


def saved_bytes(tr, ro):
    """Bytes autograd keeps for backward in one training forward of the whole batch."""
    seen = {}

    def pack(t):
        seen[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logp, _, values = lppo.response_forward(tr.policy, tr.raw, tr.image_token_id, ro, list(range(4)), 1.0)
    return sum(seen.values()), logp, values


def test_mixed_forward_saves_less_and_trains_fp32_lora(tmp_path):
    tr = trainer(tmp_path)
    assert tr.policy.autocast_dtype is torch.bfloat16
    lora = [p for n, p in tr.policy.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype is torch.float32 for p in lora)  # master weights stay fp32
    with torch.no_grad():
        for n, p in tr.peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)  # a policy that differs from the base
    ro = tr.rollout(step=1)
    mixed, logp, values = saved_bytes(tr, ro)
    logp.sum().backward()
    assert all(p.grad is not None and p.grad.dtype is torch.float32 for p in lora)
    assert sum(p.grad.abs().sum().item() for p in lora) > 0

    tr.policy.autocast_dtype = None  # peft's default path: each LoRA layer casts its input to fp32
    cast, logp_cast, _ = saved_bytes(tr, ro)
    assert mixed < 0.8 * cast, (mixed, cast)
    # Both are bf16 roundings of one policy (this tiny model's large logits make bf16 noise big):
    # against the same weights run in fp32, the mixed path is about as close as peft's casting path.
    import copy

    fp32 = copy.deepcopy(tr.policy).float()
    with torch.no_grad():
        ref, _, _ = lppo.response_forward(fp32, fp32.lm.base_model.model, tr.image_token_id, ro, list(range(4)), 1.0)
    m = ro.response_mask.bool()
    err_mixed = (logp - ref)[m].abs().mean().item()
    err_cast = (logp_cast - ref)[m].abs().mean().item()
    assert err_mixed < 2 * err_cast + 1e-3, (err_mixed, err_cast)
    assert values.dtype is torch.float32
