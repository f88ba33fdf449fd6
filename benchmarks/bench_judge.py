"""Llama Guard judging speed: responses/s and the fraction of the GPU's matmul limit (issue 18 §5).

A random model of Llama-Guard-3-8B's shape (Llama 3.1 8B: 32 layers, hidden 4096, MLP 14336,
32 heads / 8 KV heads, vocab 128256), bf16, judges synthetic rows whose token lengths follow the
paper sweep's: the Llama Guard 3 prompt (~370 tokens of template and categories) + a red-team
prompt (10-60 tokens) + a response of up to 64 tokens. Two ways to get P(unsafe):

* ``generate``: what the ``llamaguard`` judge does today: left-padded batches in input order,
  ``generate(max_new_tokens=20, output_logits=True)``, P(unsafe) from the first step's logits
  (random weights never stop early, so every row decodes the full 20 tokens, as a verdict plus
  categories can);
* ``forward``: one forward pass per batch over length-sorted rows, logits of the last position only
  (``logits_to_keep=1``), P(unsafe) = softmax(first-token logits)[unsafe]: no decoding at all.

Both modes read the same first-token distribution; the script checks that they agree on every
row it runs in both (``max_abs_diff``). The matmul limit is measured, not assumed: a bf16
8192^3 GEMM on the same device (and the H100/H200 SXM dense-bf16 spec, 989 TFLOP/s, is reported
beside it). Useful FLOPs count real tokens only: padding a batch wastes compute and shows up as a
lower fraction.

    export PYTHONPATH=$PWD && python3 benchmarks/bench_judge.py --out bench_judge.json        # the GPU run
    python3 benchmarks/bench_judge.py --shape tiny --device cpu --n 16 --batch-size 4       # plumbing check

Prints one JSON object (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import time

SHAPES = {
    # meta-llama/Llama-Guard-3-8B config.json
    "lg3-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                   num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0),
    # the same structure, small enough for a CPU test
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=2048, rope_theta=500000.0),
}
TEMPLATE_TOKENS = 370  # Llama Guard 3's prompt around one exchange, in Llama 3 tokens
H100_H200_BF16_DENSE_TFLOPS = 989.4
UNSAFE_ID = 39257  # any fixed id stands in for the "unsafe" token of a random model


def lengths(n: int, seed: int, template: int = TEMPLATE_TOKENS) -> list[int]:
    """Token counts of ``n`` judged rows: template + prompt (10-60) + response (1-64)."""
    import random

    rng = random.Random(seed)
    return [template + rng.randint(10, 60) + rng.randint(1, 64) for _ in range(n)]


def make_rows(n: int, vocab: int, seed: int, template: int) -> list[list[int]]:
    import random

    rng = random.Random(seed + 1)
    return [[rng.randrange(3, vocab) for _ in range(L)] for L in lengths(n, seed, template)]


def build_model(shape: str, device: str, dtype: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**SHAPES[shape], bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
                      initializer_range=0.02)
    torch_dtype = getattr(torch, dtype)
    with torch.device(device):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(torch_dtype)
        try:
            model = LlamaForCausalLM(cfg)  # random init on the device itself (no 16 GB host copy)
        finally:
            torch.set_default_dtype(prev)
    model.eval()
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 2
    return model


def count_params(model) -> tuple[int, int]:
    """(parameters in the transformer blocks + final norm, lm_head parameters); embeddings are a lookup."""
    emb = model.get_input_embeddings().weight.numel()
    head = model.lm_head.weight.numel()
    total = sum(p.numel() for p in model.parameters())
    return total - emb - head, head


def forward_flops(model, seq_lens: list[int], logits_kept: int) -> float:
    """Useful FLOPs of a prefill over sequences of ``seq_lens`` real tokens: 2·params per token in the
    blocks, causal attention 2·2·L²/2·hidden per layer, and the lm_head on ``logits_kept`` positions
    per sequence."""
    blocks, head = count_params(model)
    c = model.config
    attn = sum(2 * L * L * c.hidden_size * c.num_hidden_layers for L in seq_lens)  # QK^T + AV, causal half
    return 2.0 * blocks * sum(seq_lens) + attn + 2.0 * head * logits_kept * len(seq_lens)


def _batch(rows, device, pad_id: int = 0):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


def p_unsafe_forward(model, rows, batch_size: int, device) -> tuple[list[float], int]:
    """P(unsafe) per row from one forward pass per length-sorted batch; returns (probs in input
    order, padded tokens processed)."""
    import torch

    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    probs = [math.nan] * len(rows)
    padded = 0
    with torch.inference_mode():
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            ids, mask = _batch([rows[i] for i in idx], device)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)  # positions from the mask, as generate() computes them
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits[:, -1]
            p = torch.softmax(logits.float(), dim=-1)[:, UNSAFE_ID % logits.shape[-1]]
            for i, v in zip(idx, p.tolist()):
                probs[i] = v
            padded += ids.numel()
    return probs, padded


def p_unsafe_generate(model, rows, batch_size: int, device, max_new_tokens: int) -> tuple[list[float], int, int]:
    """The judge's current way: batches in input order, greedy generate with first-step logits.
    Returns (probs, padded prompt tokens, generated tokens)."""
    import torch

    probs: list[float] = []
    padded = generated = 0
    with torch.inference_mode():
        for k in range(0, len(rows), batch_size):
            ids, mask = _batch(rows[k:k + batch_size], device)
            gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new_tokens,
                                 min_new_tokens=max_new_tokens, return_dict_in_generate=True, output_logits=True,
                                 temperature=None, top_p=None, top_k=None)
            first = torch.softmax(gen.logits[0].float(), dim=-1)
            probs += first[:, UNSAFE_ID % first.shape[-1]].tolist()
            padded += ids.numel()
            generated += (gen.sequences.shape[1] - ids.shape[1]) * ids.shape[0]
    return probs, padded, generated


def matmul_tflops(device: str, dtype: str, size: int, repeats: int) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    a = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * size ** 3 * repeats / (time.perf_counter() - t) / 1e12


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(a) -> dict:
    import torch

    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    model = build_model(a.shape, a.device, a.dtype)
    _sync(a.device)
    build_s = time.perf_counter() - t0
    template = TEMPLATE_TOKENS if a.shape != "tiny" else 40
    rows = make_rows(a.n, model.config.vocab_size, a.seed, template)
    real = sum(len(r) for r in rows)
    peak = matmul_tflops(a.device, a.dtype, a.gemm_size, a.gemm_repeats)
    res: dict = {"shape": a.shape, "device": a.device, "dtype": a.dtype, "n": a.n, "batch_size": a.batch_size,
                 "params": sum(p.numel() for p in model.parameters()), "build_s": round(build_s, 2),
                 "tokens_per_row_mean": round(real / len(rows), 1), "gemm_tflops": peak,
                 "spec_bf16_dense_tflops": H100_H200_BF16_DENSE_TFLOPS if a.device.startswith("cuda") else None,
                 "torch": torch.__version__}
    if a.device.startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name(a.device)
    # warm-up (kernels, allocator) on a few rows, then the timed run
    p_unsafe_forward(model, rows[:a.batch_size], a.batch_size, a.device)
    _sync(a.device)
    t = time.perf_counter()
    probs_f, padded_f = p_unsafe_forward(model, rows, a.batch_size, a.device)
    _sync(a.device)
    sec = time.perf_counter() - t
    flops = forward_flops(model, [len(r) for r in rows], 1)
    tf = flops / sec / 1e12
    res["forward"] = {"seconds": round(sec, 3), "responses_per_s": round(len(rows) / sec, 1),
                      "useful_tflops": round(tf, 1), "padding_share": round(1 - real / padded_f, 4),
                      "fraction_of_gemm": round(tf / peak, 3) if peak else None,
                      "fraction_of_spec": round(tf / H100_H200_BF16_DENSE_TFLOPS, 3) if peak else None}
    if a.generate_n:
        sub = rows[:a.generate_n]
        p_unsafe_generate(model, sub[:a.batch_size], a.batch_size, a.device, 2)  # warm-up
        _sync(a.device)
        t = time.perf_counter()
        probs_g, padded_g, generated = p_unsafe_generate(model, sub, a.batch_size, a.device, a.max_new_tokens)
        _sync(a.device)
        sec_g = time.perf_counter() - t
        res["generate"] = {"n": len(sub), "seconds": round(sec_g, 3), "responses_per_s": round(len(sub) / sec_g, 1),
                           "max_new_tokens": a.max_new_tokens, "generated_tokens": generated,
                           "padding_share": round(1 - sum(len(r) for r in sub) / padded_g, 4)}
        res["forward_speedup"] = round(res["forward"]["responses_per_s"] / res["generate"]["responses_per_s"], 2)
        res["max_abs_diff"] = max(abs(x - y) for x, y in zip(probs_f[:len(sub)], probs_g))
        res["max_rel_diff"] = max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(probs_f[:len(sub)], probs_g))
    sweep = 2900 * 25  # RT + MR + AC + CP x 25 layers (docs/paper.md)
    res["sweep_minutes_forward"] = round(sweep / res["forward"]["responses_per_s"] / 60, 2)
    if "generate" in res:
        res["sweep_minutes_generate"] = round(sweep / res["generate"]["responses_per_s"] / 60, 2)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="lg3-8b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    p.add_argument("--n", type=int, default=2048, help="rows judged by the forward mode")
    p.add_argument("--generate-n", type=int, default=256, help="rows judged by the generate mode (0: skip it)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=20, help="the llamaguard judge's default")
    p.add_argument("--gemm-size", type=int, default=8192)
    p.add_argument("--gemm-repeats", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    if min(a.n, a.batch_size) < 1 or a.generate_n < 0 or a.generate_n > a.n:
        p.error("--n and --batch-size must be >= 1 and 0 <= --generate-n <= --n")
    res = run(a)
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
