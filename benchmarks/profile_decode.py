"""Where the scan decoder's GPU time goes: kernel time by kind for one batch's prefill and for one
decode step (torch.profiler), unfused and fused, on a random LLaVA-1.5-7B in bf16.

The decoder runs eagerly here (``StaticDecoder(use_graph=False)``: the same kernels the CUDA graph
replays, which the profiler cannot see inside a graph). Prefill = a 1-token call; decode step =
(a (1 + N)-token call − the 1-token call) / N, per kernel. Kernels are grouped by name into gemm,
attention, norm/rotary/elementwise, copy/index, sampling and other; the JSON lists each group's ms
and the top kernels, next to the roofline figures of ``bench_scan.py --decode-bench``.

    PYTHONPATH=$PWD python benchmarks/profile_decode.py --json $OUT/profile_decode.json   # one H200, ~2 min
"""

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

KINDS = [("attention", r"fmha|attention|flash|efficient_attention|sdpa|cudnn.*(mha|attn)"),
         ("gemm", r"gemm|cutlass|sm90_|nvjet|cublas|matmul|splitk|xmma"),
         ("sampling", r"argmax|reduce|softmax|max_|topk"),
         ("copy/index", r"copy|cat|index|scatter|gather|fill|memcpy|memset"),
         ("norm/rotary/elementwise", r"elementwise|vectorized|triton|pow|rsqrt|mean|mul|add|silu|neg|exp")]


def kind(name: str) -> str:
    low = name.lower()
    for k, pat in KINDS:
        if re.search(pat, low):
            return k
    return "other"


def kernel_ms(fn) -> tuple[dict[str, float], dict[str, int]]:
    """CUDA kernel time (ms) and launches per kernel name over one call of ``fn``."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    out: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            out[e.name] += e.device_time / 1e3  # µs -> ms
            calls[e.name] += 1
    return dict(out), dict(calls)


def summarise(per_kernel: dict[str, float], calls: dict[str, float], top: int) -> dict:
    """Time by kind and the top kernels; ``calls``: launches per kernel name (per step for a step:
    each launch inside a captured graph still costs a gap of a few µs)."""
    groups: dict[str, float] = defaultdict(float)
    launches: dict[str, float] = defaultdict(float)
    for n, ms in per_kernel.items():
        groups[kind(n)] += ms
        launches[kind(n)] += calls.get(n, 0)
    total = sum(per_kernel.values())
    ranked = sorted(per_kernel.items(), key=lambda kv: -kv[1])[:top]
    return {"total_ms": round(total, 3), "launches": round(sum(launches.values()), 1),
            "by_kind_ms": {k: round(v, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
            "launches_by_kind": {k: round(v, 1) for k, v in sorted(launches.items(), key=lambda kv: -kv[1])},
            "top_kernels": [{"name": n[:160], "kind": kind(n), "ms": round(ms, 4), "launches": round(calls.get(n, 0), 2)}
                            for n, ms in ranked]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8, help="decode steps profiled (N)")
    ap.add_argument("--layer", type=int, default=23)
    ap.add_argument("--fuse", choices=["on", "off", "both"], default="both")
    ap.add_argument("--pack", choices=["on", "off"], default="on",
                    help="fused: q/k/v and gate/up as one matmul each (on, the default) or not")
    ap.add_argument("--prefill-shapes", choices=["dynamic", "auto"], default=None,
                    help="fused prefill kernels: every dim symbolic, or only those that change (default: the library's)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("profile_decode.py: needs CUDA (it profiles GPU kernels)")

    from layersafe.data import load_dataset
    from layersafe.data.base import load_image
    from layersafe.models import fuse
    from layersafe.models.decode import StaticDecoder
    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import LLAVA15_7B, make_random_llava

    torch.set_grad_enabled(False)
    fuse.PACK = a.pack == "on"
    fuse.PREFILL_SHAPES = a.prefill_shapes or fuse.PREFILL_SHAPES
    dev = torch.device("cuda")
    model, processor = make_random_llava(dtype=torch.bfloat16, device=dev, **dict(LLAVA15_7B))
    ad = LlavaAdapter(model, processor, name="random:llava-1.5-7b", device=dev)
    ad.model.generation_config.eos_token_id = None
    samples = load_dataset("custom-prompts").samples
    items = [ad.tokenize(ad.build_prompt(s.prompt), load_image(s.image))
             for s in (samples * (a.batch_size // len(samples) + 1))[:a.batch_size]]
    feats = ad.features(ad.encode(items, [a.layer]), a.layer, range(a.batch_size))
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "gpu": torch.cuda.get_device_name(),
                 "torch": torch.__version__, "batch": a.batch_size, "steps": a.steps, "pack": a.pack, "prefill_shapes": fuse.PREFILL_SHAPES,
                 "prompt_tokens_mean": sum(int(it["input_ids"].shape[-1]) for it in items) / a.batch_size}
    for f in (("off", "on") if a.fuse == "both" else (a.fuse,)):
        ad.release_cache()
        ad._static = StaticDecoder(ad.model, use_graph=False, fuse=f == "on")

        def call(n):
            return lambda: ad.generate(items, feats, max_new_tokens=n, cache="static")

        if f == "on":  # a half batch first: the prefill kernels see a second shape, as in a scan
            ad.generate(items[: a.batch_size // 2], feats[: a.batch_size // 2], max_new_tokens=2, cache="static")
        call(1 + a.steps)()  # warm-up: cache, kernels, compile
        call(1)()
        pre, pre_n = kernel_ms(call(1))
        full, full_n = kernel_ms(call(1 + a.steps))
        step = {n: (full.get(n, 0.0) - pre.get(n, 0.0)) / a.steps for n in set(full) | set(pre)}
        step = {n: ms for n, ms in step.items() if ms > 1e-4}
        step_n = {n: (full_n.get(n, 0) - pre_n.get(n, 0)) / a.steps for n in step}
        res[f"fuse_{f}"] = {"prefill": summarise(pre, pre_n, a.top), "decode_step": summarise(step, step_n, a.top)}
        print(json.dumps({f"fuse_{f}": {k: v["by_kind_ms"] for k, v in res[f"fuse_{f}"].items()}}), flush=True)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text)


if __name__ == "__main__":
    main()
