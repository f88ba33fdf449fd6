"""Llama Guard judging speed: responses/s and the fraction of the GPU's matmul limit (issue 18 §5).

A random model of Llama-Guard-3-8B's shape (Llama 3.1 8B: 32 layers, hidden 4096, MLP 14336,
32 heads / 8 KV heads, vocab 128256), bf16, judges synthetic rows whose token lengths follow the
paper sweep's: the Llama Guard 3 prompt (~370 tokens of template and categories: 250 tokens before
the conversation, 120 after it) + a red-team prompt (10-60 tokens) + a response of up to 64 tokens.
Every row starts with the same 250 tokens, as rendered Llama Guard prompts do (the split is the
built-in LG3 prompt's text divided by characters: no Llama 3 tokenizer offline). Ways to get
P(unsafe), the first two through the judge's own code (``layersafe.judges.llamaguard.FirstTokenLogits``):

* ``forward`` (``llamaguard:…,mode=forward,prefix=off``): one forward pass per length-sorted
  batch of whole rows, left-padded, logits of the last position only (``logits_to_keep=1``);
* ``forward_prefix`` (``prefix=auto``, the default): the shared tokens run once (batch 1), then per
  length-sorted batch only each row's rest, right-padded, against that key/value cache, the LM
  head on each row's last real token; one entry per ``--prefix-batch-sizes`` value;
* ``generate`` (``mode=generate``): left-padded batches in input order,
  ``generate(max_new_tokens=20, output_logits=True)``, P(unsafe) from the first step's logits
  (random weights never stop early, so every row decodes the full 20 tokens).

``--fuse on`` runs both forward paths with ``fuse=on`` (``FirstTokenLogits(fuse=True)``: the
decoder's RMSNorm, rotary and silu*up as compiled kernels, layersafe/models/fuse.py, dynamic
shapes; the compile happens in the warm-up, outside the timing); their entries are
``forward_fused`` and ``forward_prefix_fused``. ``--fuse both`` runs off then on and adds
``max_abs_diff_fused_vs_unfused`` (max |ΔP(unsafe)| over every row and path, ``_by_path`` per
path) and ``fused_speedup`` (responses/s on / off per path). The default ``off`` is the run
before this option. ``generate`` is never fused (neither is the judge's).

The script checks that the paths agree on every row (``max_abs_diff*``; bf16, so different batch
shapes round differently). The matmul limit is measured, not assumed: a bf16 8192^3 GEMM on the
same device (the H100/H200 SXM dense-bf16 spec, 989 TFLOP/s, is reported beside it).
``computed_tflops`` counts the FLOPs of the real tokens actually run (with prefix reuse: the prefix
once plus each row's rest; padding is not counted, so it shows as a lower fraction).
``equivalent_tflops_not_work_done`` is the FLOPs the whole-row forward would need for the same rows
divided by the prefix path's time: a speed figure, not work done. ``kv_copy_ms_per_batch`` times
the two copies of the expanded prefix cache one batch costs (``DynamicCache`` builds it, then each
layer's ``torch.cat`` appends the batch's keys and values; unfused entries only: fusion does not
touch the copies).

    export PYTHONPATH=$PWD && python3 benchmarks/bench_judge.py --out bench_judge.json        # the GPU run
    export PYTHONPATH=$PWD && python3 benchmarks/bench_judge.py --prefix-batch-sizes 256 --generate-n 0 --fuse both --out f.json
    python3 benchmarks/bench_judge.py --shape tiny --device cpu --n 16 --generate-n 4 --batch-size 4   # plumbing check

Prints one JSON object (also written to ``--out`` after every stage, so a run cut short keeps what
it measured).
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
PREFIX_TOKENS = 250  # of which before the conversation, the same in every row; the rest follows the response
TINY_TEMPLATE, TINY_PREFIX = 60, 40  # tiny shape: a prefix above the judge's PREFIX_MIN_TOKENS
H100_H200_BF16_DENSE_TFLOPS = 989.4
UNSAFE_ID = 39257  # any fixed id stands in for the "unsafe" token of a random model


def lengths(n: int, seed: int, template: int = TEMPLATE_TOKENS) -> list[int]:
    """Token counts of ``n`` judged rows: template + prompt (10-60) + response (1-64)."""
    import random

    rng = random.Random(seed)
    return [template + rng.randint(10, 60) + rng.randint(1, 64) for _ in range(n)]


def make_rows(n: int, vocab: int, seed: int, template: int, prefix: int) -> list[list[int]]:
    """Rows of ``lengths(n, seed, template)`` tokens: the same ``prefix`` leading and ``template -
    prefix`` trailing tokens in every row (the template), random ids between (prompt + response)."""
    import random

    rng = random.Random(seed + 1)
    lead = [rng.randrange(3, vocab) for _ in range(prefix)]
    tail = [rng.randrange(3, vocab) for _ in range(template - prefix)]
    return [lead + [rng.randrange(3, vocab) for _ in range(L - template)] + tail for L in lengths(n, seed, template)]


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


def forward_flops(model, seq_lens: list[int], logits_kept: int, cached: int = 0) -> float:
    """FLOPs of a prefill over sequences of ``seq_lens`` real tokens whose first ``cached`` tokens are
    already in the cache: 2·params per computed token in the blocks, causal attention of each computed
    query over every key up to it (2·2·hidden per query-key pair per layer, QK^T + AV: whole rows
    2·L²·hidden per layer), and the lm_head on ``logits_kept`` positions per sequence."""
    blocks, head = count_params(model)
    c = model.config
    attn = sum(2 * (L * L - cached * cached) * c.hidden_size * c.num_hidden_layers for L in seq_lens)
    return 2.0 * blocks * sum(L - cached for L in seq_lens) + attn + 2.0 * head * logits_kept * len(seq_lens)


def p_unsafe_forward(model, rows, batch_size: int, prefix: bool, fuse: bool = False) -> tuple[list[float], list[int], int, int]:
    """P(unsafe) and the greedy first token of each row (input order) through the judge's
    FirstTokenLogits (``fuse``: its forwards with fuse.py's kernels, as ``fuse=on``), one call per
    length-sorted batch; also the tokens run including padding, and the shared prefix's length
    (0: whole rows)."""
    import torch

    from layersafe.judges.llamaguard import FirstTokenLogits

    first = FirstTokenLogits(model, 0, reuse=prefix, fuse=fuse)
    cached = first.plan(rows)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    probs, top = [math.nan] * len(rows), [-1] * len(rows)
    padded = 0
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        logits = first([rows[i] for i in idx])
        p = torch.softmax(logits.float(), dim=-1)[:, UNSAFE_ID % logits.shape[-1]]  # [batch, vocab] in fp32: a few MB
        for i, v, t in zip(idx, p.tolist(), logits.argmax(-1).tolist()):
            probs[i], top[i] = v, t
        padded += len(idx) * (max(len(rows[i]) for i in idx) - cached)
    return probs, top, padded, cached


def _batch(rows, device, pad_id: int = 0):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


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


def kv_copy_ms(model, prefix: int, batch: int, width: int, device: str, repeats: int = 3) -> float:
    """Milliseconds per batch for the prefix cache's copies, alone: DynamicCache built from batch-1
    prefix keys/values expanded over ``batch`` rows (one copy), then every layer's update appending
    ``width`` positions (torch.cat: a second copy), as FirstTokenLogits' forward does."""
    import torch
    from transformers import DynamicCache

    c = model.config
    d = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kw = dict(device=device, dtype=model.dtype)
    kv = [(torch.randn(1, c.num_key_value_heads, prefix, d, **kw), torch.randn(1, c.num_key_value_heads, prefix, d, **kw))
          for _ in range(c.num_hidden_layers)]
    new = torch.randn(batch, c.num_key_value_heads, width, d, **kw)

    def once():
        cache = DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1), None)
                                             for k, v in kv])
        for layer in range(c.num_hidden_layers):
            cache.update(new, new, layer)

    once()
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        once()
    _sync(device)
    return (time.perf_counter() - t) / repeats * 1e3


def _rates(flops: float, sec: float, peak: float | None) -> tuple[float, float | None, float | None]:
    """(TFLOP/s, fraction of the measured GEMM, fraction of the 989 spec); fractions None off the GPU."""
    tf = flops / sec / 1e12
    return round(tf, 1), (round(tf / peak, 3) if peak else None), (round(tf / H100_H200_BF16_DENSE_TFLOPS, 3) if peak else None)


def _speedups(res: dict) -> dict:
    """responses/s fused / unfused, per path (``whole`` rows, ``prefix_bs<N>``)."""
    out = {"whole": round(res["forward_fused"]["responses_per_s"] / res["forward"]["responses_per_s"], 3)}
    for on, off in zip(res["forward_prefix_fused"], res["forward_prefix"]):
        out[f"prefix_bs{on['batch_size']}"] = round(on["responses_per_s"] / off["responses_per_s"], 3)
    return out


def run(a) -> dict:
    import torch
    import transformers

    res: dict = {}

    def save():
        if a.out:
            with open(a.out, "w") as f:
                f.write(json.dumps(res, indent=2) + "\n")

    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    model = build_model(a.shape, a.device, a.dtype)
    _sync(a.device)
    build_s = time.perf_counter() - t0
    template, prefix = (TEMPLATE_TOKENS, PREFIX_TOKENS) if a.shape != "tiny" else (TINY_TEMPLATE, TINY_PREFIX)
    rows = make_rows(a.n, model.config.vocab_size, a.seed, template, prefix)
    lens = [len(r) for r in rows]
    real = sum(lens)
    peak = matmul_tflops(a.device, a.dtype, a.gemm_size, a.gemm_repeats)
    sweep = 2900 * 25  # RT + MR + AC + CP x 25 layers (docs/paper.md)
    res.update({"shape": a.shape, "device": a.device, "dtype": a.dtype, "n": a.n, "batch_size": a.batch_size,
                "params": sum(p.numel() for p in model.parameters()), "build_s": round(build_s, 2),
                "tokens_per_row_mean": round(real / len(rows), 1), "template_tokens": template,
                "shared_prefix_tokens": prefix, "gemm_tflops": peak,
                "spec_bf16_dense_tflops": H100_H200_BF16_DENSE_TFLOPS if a.device.startswith("cuda") else None,
                "torch": torch.__version__, "transformers": transformers.__version__})
    if a.device.startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name(a.device)
    full_flops = forward_flops(model, lens, 1)

    def timed(batch_size: int, reuse: bool, fuse: bool):
        p_unsafe_forward(model, rows[:batch_size], batch_size, reuse, fuse)  # warm-up (kernels, allocator, compile)
        _sync(a.device)
        t = time.perf_counter()
        out = p_unsafe_forward(model, rows, batch_size, reuse, fuse)  # the prefix pass is inside the timing
        _sync(a.device)
        return (*out, time.perf_counter() - t)

    probs: dict = {}  # (fuse, prefix batch size or None for whole rows) -> P(unsafe) per row
    for fuse in a.fuse:
        tag = "_fused" if fuse else ""  # fuse=off keeps the keys of the runs before --fuse
        # whole rows (prefix=off)
        probs_f, top_f, padded_f, _, sec = timed(a.batch_size, False, fuse)
        probs[fuse, None] = probs_f
        tf, fg, fs = _rates(full_flops, sec, peak)
        res["forward" + tag] = {"prefix": "off", "fuse": "on" if fuse else "off", "seconds": round(sec, 3),
                                "responses_per_s": round(len(rows) / sec, 1), "useful_tflops": tf,
                                "padding_share": round(1 - real / padded_f, 4), "fraction_of_gemm": fg,
                                "fraction_of_spec": fs}
        res["sweep_minutes_forward" + tag] = round(sweep / res["forward" + tag]["responses_per_s"] / 60, 2)
        save()
        # the shared prefix once + each row's rest (prefix=auto)
        res["forward_prefix" + tag] = []
        for bs in a.prefix_batch_sizes:
            probs_p, top_p, padded_p, cached, sec_p = timed(bs, True, fuse)
            probs[fuse, bs] = probs_p
            computed = forward_flops(model, lens, 1, cached) + forward_flops(model, [cached], 0)
            ctf, cfg, cfs = _rates(computed, sec_p, peak)
            etf, efg, efs = _rates(full_flops, sec_p, peak)
            rest_tokens = real - cached * len(rows)
            res["forward_prefix" + tag].append({
                "prefix": "auto", "fuse": "on" if fuse else "off", "batch_size": bs, "prefix_tokens": cached,
                "seconds": round(sec_p, 3), "responses_per_s": round(len(rows) / sec_p, 1),
                "speedup_vs_off": round(sec / sec_p, 2), "computed_tokens_per_row_mean": round(rest_tokens / len(rows), 1),
                "padding_share": round(1 - rest_tokens / padded_p, 4),
                "computed_tflops": ctf, "fraction_of_gemm": cfg, "fraction_of_spec": cfs,
                "equivalent_tflops_not_work_done": etf, "equivalent_fraction_of_gemm": efg,
                "equivalent_fraction_of_spec": efs,
                "max_abs_diff_vs_off": max(abs(x - y) for x, y in zip(probs_p, probs_f)),
                "same_top_token_share": round(sum(x == y for x, y in zip(top_p, top_f)) / len(rows), 4),
                "sweep_minutes": round(sweep / (len(rows) / sec_p) / 60, 2)})
            e = res["forward_prefix" + tag][-1]
            if cached and not fuse:  # after the timed run: the copies alone, at the mean padded width of a batch's rests
                ms = kv_copy_ms(model, cached, min(bs, len(rows)), round(padded_p / len(rows)), a.device)
                e["kv_copy_ms_per_batch"] = round(ms, 2)
                e["kv_copy_share_of_time"] = round(ms * math.ceil(len(rows) / bs) / 1e3 / sec_p, 4)
            res["sweep_minutes_forward_prefix" + tag] = min(e["sweep_minutes"] for e in res["forward_prefix" + tag])
            save()
    if len(a.fuse) == 2:  # fuse on vs off, per path and batch size: same math, other kernels
        diffs = {("whole" if k is None else f"prefix_bs{k}"): max(abs(x - y) for x, y in zip(probs[True, k], probs[False, k]))
                 for f, k in probs if f}
        res["max_abs_diff_fused_vs_unfused"] = max(diffs.values())
        res["max_abs_diff_fused_vs_unfused_by_path"] = diffs
        res["fused_speedup"] = _speedups(res)
        save()
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
        first = a.fuse[0]  # off when it was run (the judge's generate is never fused)
        fwd = res["forward_fused" if first else "forward"]
        res["forward_speedup"] = round(fwd["responses_per_s"] / res["generate"]["responses_per_s"], 2)
        res["max_abs_diff"] = max(abs(x - y) for x, y in zip(probs[first, None][:len(sub)], probs_g))
        res["max_rel_diff"] = max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(probs[first, None][:len(sub)], probs_g))
        res["sweep_minutes_generate"] = round(sweep / res["generate"]["responses_per_s"] / 60, 2)
        save()
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="lg3-8b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    p.add_argument("--n", type=int, default=2048, help="rows judged by the forward mode")
    p.add_argument("--generate-n", type=int, default=256, help="rows judged by the generate mode (0: skip it)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per batch of whole rows (prefix=off) and of generate")
    p.add_argument("--prefix-batch-sizes", default="64,256",
                   help="comma-separated rows per batch of the prefix=auto path, one timed run each ('' skips it)")
    p.add_argument("--fuse", choices=("off", "on", "both"), default="off",
                   help="the forward paths with fuse.py's compiled norm/rotary/silu kernels (the judge's fuse=on), "
                        "without (off, the figures before this option), or both (also max |dP(unsafe)| on vs off)")
    p.add_argument("--max-new-tokens", type=int, default=20, help="the llamaguard judge's default")
    p.add_argument("--gemm-size", type=int, default=8192)
    p.add_argument("--gemm-repeats", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    if min(a.n, a.batch_size) < 1 or a.generate_n < 0 or a.generate_n > a.n:
        p.error("--n and --batch-size must be >= 1 and 0 <= --generate-n <= --n")
    try:
        a.prefix_batch_sizes = [int(x) for x in a.prefix_batch_sizes.split(",") if x.strip()]
    except ValueError:
        p.error(f"--prefix-batch-sizes is not a comma-separated list of integers: {a.prefix_batch_sizes!r}")
    if any(b < 1 for b in a.prefix_batch_sizes):
        p.error("--prefix-batch-sizes must all be >= 1")
    a.fuse = {"off": [False], "on": [True], "both": [False, True]}[a.fuse]
    print(json.dumps(run(a), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
