"""One L-PPO step at real scale: LLaVA-1.5-7B architecture, random bf16 weights on the GPU, LoRA.

Runs ``LPPOTrainer.train_step`` itself (layersafe.rl.lppo; nothing re-implemented): rollout
batch ``--batch-size`` x ``--new-tokens`` sampled tokens, refusal-rule reward, ``--ppo-epochs``
passes of ``--mini-batch-size`` minibatches. Reports per phase (generation / scoring /
learning, from ``trainer.last_phase_seconds``) the wall time of the last of ``--steps`` steps
(the first is a warm-up), peak GPU memory over the whole run, and the learning phase's MFU.

MFU counts model FLOPs per processed token (prompt + response, padding included, per PPO
epoch): ``6 * N`` (2N forward + 4N backward, the usual convention) and, because LoRA never
computes weight gradients of the frozen base, also what is actually executed, ``4 * N`` (2N
forward + 2N input-gradient backward). N = the language model's matmul parameters (decoder
blocks); the lm_head (run on the response positions only) and attention's T^2 terms are added
separately. Peak = 989 TFLOP/s, the H200's dense bf16 datasheet figure; the bf16 matmul rate
measured here is reported too.

Also asserts one copy of the base weights: LoRA's reference is the same base with the adapter
disabled and the value head shares the trunk, so no base parameter is copied.

    python benchmarks/bench_lppo.py                      # CUDA only; writes JSON with --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

H200_BF16_DENSE = 989e12


def matmul_rate(dev, n: int = 8192) -> float:
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * n**3 / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--mini-batch-size", type=int, default=4)
    ap.add_argument("--ppo-epochs", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="recompute activations in the backward pass (less memory, ~1/3 more learning compute)")
    ap.add_argument("--steps", type=int, default=3, help="steps run; the first is a warm-up, the last is reported")
    ap.add_argument("--cache", choices=["auto", "dynamic", "static"], default="auto", help="rollout KV cache")
    ap.add_argument("--compare-dynamic", action="store_true", help="one more step with the dynamic cache")
    ap.add_argument("--preset", choices=["llava-1.5-7b", "tiny"], default="llava-1.5-7b",
                    help="tiny: a small random LLaVA, to check the script on a CPU (figures meaningless)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()

    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import LLAVA15_7B, make_random_llava
    from layersafe.rl.lppo import LPPOConfig, LPPOTrainer

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    mem = torch.cuda.memory_allocated if cuda else (lambda: 0)
    t = time.perf_counter()
    sizes = LLAVA15_7B if a.preset == "llava-1.5-7b" else dict(initializer_range=0.05)
    dtype = torch.bfloat16 if cuda else torch.float32
    model, processor = make_random_llava(dtype=dtype, device=dev, **sizes)
    t_build = time.perf_counter() - t
    base = {p.data_ptr(): p.numel() * p.element_size() for p in model.parameters()}
    base_bytes = sum(base.values())
    adapter = LlavaAdapter(model, processor, name=f"random:{a.preset}", device=dev)
    mem_model = mem()

    with tempfile.TemporaryDirectory() as tmp:
        cfg = LPPOConfig(model=adapter.name, data="advbench-images", layers="all", reward="refusal", out=tmp,
                         steps=a.steps + 1, batch_size=a.batch_size, mini_batch_size=a.mini_batch_size,
                         ppo_epochs=a.ppo_epochs, max_new_tokens=a.new_tokens, device=a.device,
                         dtype=str(dtype).replace("torch.", ""), cache=a.cache)
        trainer = LPPOTrainer(cfg, adapter=adapter, log=lambda m: None)
        if a.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

        # One copy of the base weights: the policy's frozen parameters are exactly the base
        # tensors (same storage), there is no reference copy, and setting up the trainer
        # allocated only LoRA factors and the value head.
        frozen = {p.data_ptr(): p.numel() * p.element_size() for p in trainer.policy.parameters() if not p.requires_grad}
        assert trainer.ref_policy is None
        assert set(frozen) == set(base) and sum(frozen.values()) == base_bytes, "a base weight was copied"
        extra = mem() - mem_model
        trainable = sum(p.numel() for p in trainer.policy.parameters() if p.requires_grad)
        assert extra < 0.05 * base_bytes, extra
        shapes = []  # (padded prompt, response) widths of each rollout
        rollout = trainer.rollout

        def recorded(step):
            ro = rollout(step)
            shapes.append((ro.prompt_ids.shape[1], ro.response_ids.shape[1]))
            return ro

        trainer.rollout = recorded
        # Peak memory per phase: the trainer reads its clock (after a GPU sync) at each phase end.
        phase_peaks = []
        clock = trainer._clock

        def clock_and_peak():
            t = clock()
            if cuda:
                phase_peaks.append(round(torch.cuda.max_memory_allocated() / 1e9, 2))
                torch.cuda.reset_peak_memory_stats()
            return t

        trainer._clock = clock_and_peak
        peak_before = torch.cuda.max_memory_allocated() if cuda else 0
        if cuda:
            torch.cuda.reset_peak_memory_stats()

        steps = []
        for step in range(1, a.steps + 1):
            row = trainer.train_step(step)
            steps.append({"phase_s": dict(trainer.last_phase_seconds),
                          "phase_peak_gb": dict(zip(("generate", "score", "learn"), phase_peaks[-3:])),
                          "response_length": row["response_length"],
                          "approx_kl": row.get("approx_kl"), "policy_loss": row.get("policy_loss")})
        dyn = None
        if a.compare_dynamic:
            trainer.cfg.cache = "dynamic"
            trainer.train_step(a.steps + 1)
            dyn = {"phase_s": dict(trainer.last_phase_seconds), "phase_peak_gb": phase_peaks[-3:]}
        peak = max([peak_before, *[p * 1e9 for p in phase_peaks]]) if cuda else 0
        peak_reserved = torch.cuda.max_memory_reserved() if cuda else 0

    # Learning-phase FLOPs, from the shapes the last reported step trained on.
    P, R = shapes[a.steps - 1]
    T = P + R  # the training forward runs on [left-padded prompt | right-padded response]
    lm = model.get_decoder()
    tcfg = model.config.get_text_config(decoder=True)
    n_blocks = sum(p.numel() for n, p in lm.named_parameters() if "layers." in n and "lora_" not in n)
    n_head = model.get_output_embeddings().weight.numel()
    seqs = a.ppo_epochs * a.batch_size
    tokens = seqs * T
    attn_fwd = seqs * tcfg.num_hidden_layers * 4 * T * T * tcfg.hidden_size / 2  # causal QK^T and PV
    head_fwd = 2 * n_head * seqs * (R + 1)
    fwd = 2 * n_blocks * tokens + head_fwd + attn_fwd
    flops_6n = 3 * fwd  # 2N forward + 4N backward
    flops_4n = 2 * fwd  # LoRA: 2N forward + 2N backward (input gradients only)
    last = steps[-1]["phase_s"]
    rate = matmul_rate(dev) if cuda else float("nan")
    res = {
        "date": time.strftime("%Y-%m-%d"), "machine": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "transformers": __import__("transformers").__version__, "peft": __import__("peft").__version__,
        "build_s": round(t_build, 1), "params": base_bytes // model.dtype.itemsize,
        "base_weight_gb": round(base_bytes / 1e9, 2), "trainable_params": trainable,
        "extra_after_trainer_gb": round(extra / 1e9, 3), "one_copy_of_base_weights": True,
        "batch_size": a.batch_size, "mini_batch_size": a.mini_batch_size, "ppo_epochs": a.ppo_epochs,
        "new_tokens": a.new_tokens, "gradient_checkpointing": a.gradient_checkpointing, "prompt_tokens_padded": P, "response_tokens_padded": R, "cache": a.cache,
        "steps": steps, "step_s": round(sum(last.values()), 3),
        "generate_s": round(last["generate"], 3), "score_s": round(last["score"], 3), "learn_s": round(last["learn"], 3),
        "dynamic_cache_step_phase_s": dyn,
        "peak_gpu_gb": round(peak / 1e9, 2), "peak_reserved_gb": round(peak_reserved / 1e9, 2),
        "learn_tokens": tokens, "n_matmul_params_blocks": n_blocks,
        "learn_tflops_6n": round(flops_6n / last["learn"] / 1e12, 1),
        "learn_tflops_4n": round(flops_4n / last["learn"] / 1e12, 1),
        "mfu_6n": round(flops_6n / last["learn"] / H200_BF16_DENSE, 4),
        "mfu_4n_executed": round(flops_4n / last["learn"] / H200_BF16_DENSE, 4),
        "measured_bf16_matmul_tflops": round(rate / 1e12, 1),
    }
    print(json.dumps(res, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
