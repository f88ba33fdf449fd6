"""What `layersafe trim` saves at real scale: LLaVA-1.5-7B's image path (CLIP ViT-L/14-336, 24 blocks,
+ the 2-layer projector to 4096), random weights, full vs trimmed at each exit layer L.

The model is a real ``LlavaForConditionalGeneration`` with LLaVA-1.5-7B's vision tower and projector
and a one-block stand-in language model (the LM plays no part in encoder latency). It is timed on the
path the checkpoint runs, the stock ``model.model.get_image_features(pixel_values)``: full = the stock
model (all 24 blocks run; ``vision_feature_layer=-2``), trimmed = exactly what ``layersafe trim --layer
L`` saves (blocks 1..L, ``vision_feature_layer=-1``; the cut is ``layersafe.trim.EncoderCut`` itself,
sharing the kept blocks' weights). Batches of 1 and 16 images, ``--warmup`` runs, then ``--repeats``
runs timed with CUDA events (median ms per batch). Also reported: encoder parameters and the analytic
encoder FLOPs per image (``layersafe.trim.encoder_flops``) and the achieved TFLOP/s.

Prints ONE JSON line (and writes it to ``--json``):

    python3 benchmarks/bench_trim.py --device cuda --layers 8,12,16          # H200, bf16
    python3 benchmarks/bench_trim.py --device cpu --tiny --layers 2,4         # checks the script on a CPU
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

try:
    import layersafe  # noqa: F401
except ImportError:  # run from a checkout without installing (same as PYTHONPATH=.)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(tiny: bool, dtype, device):
    from layersafe.models.tiny import LLAVA15_7B, make_random_llava

    if tiny:  # a small CLIP, to check the script (figures meaningless)
        sizes = dict(vision_layers=6, image_size=32, patch_size=8, vision_hidden=32, vision_heads=4,
                     text_hidden=64, text_layers=1)
    else:  # LLaVA-1.5-7B's vision tower + projector (1024 -> 4096 -> 4096); a 1-block, narrow-MLP LM stand-in
        sizes = {k: v for k, v in LLAVA15_7B.items() if k.startswith("vision") or k in ("image_size", "patch_size")}
        sizes.update(text_hidden=LLAVA15_7B["text_hidden"], text_layers=1, text_intermediate=256, text_heads=32,
                     text_kv_heads=32, initializer_range=0.02)
    model, _ = make_random_llava(dtype=dtype, device=device, **sizes)
    return model.eval()


def timed(fn, *, repeats: int, warmup: int, cuda: bool) -> float:
    """Median milliseconds of ``fn()``: CUDA events on a GPU, perf_counter on a CPU."""
    for _ in range(warmup):
        fn()
    times = []
    if cuda:
        torch.cuda.synchronize()
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu")
    ap.add_argument("--layers", default="8,12,16", help="exit layers L to trim at (comma list, 1..24)")
    ap.add_argument("--batch-sizes", default="1,16", help="images per encoder call (comma list)")
    ap.add_argument("--dtype", choices=["bfloat16", "float32"], default=None, help="default: bf16 on cuda, fp32 on cpu")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--tiny", action="store_true", help="a tiny random CLIP instead of the 7B shape (CPU check)")
    ap.add_argument("--json", help="also write the JSON line to this file")
    a = ap.parse_args(argv)

    from layersafe.trim import EncoderCut, _count, encoder_flops

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    dtype = getattr(torch, a.dtype) if a.dtype else (torch.bfloat16 if cuda else torch.float32)
    torch.manual_seed(0)
    model = build(a.tiny, dtype, dev)
    vc = model.config.vision_config
    n = vc.num_hidden_layers
    layers = [int(x) for x in a.layers.split(",") if x.strip()]
    if any(not 1 <= l <= n for l in layers):
        ap.error(f"--layers: exit layers are 1..{n}")
    batches = [int(x) for x in a.batch_sizes.split(",") if x.strip()]
    inner = model.model
    full_params = _count(inner.vision_tower, "llava")
    result = {
        "bench": "trim", "shape": "tiny" if a.tiny else "llava-1.5-7b (CLIP ViT-L/14-336, 24 blocks)",
        "device": torch.cuda.get_device_name(dev) if cuda else platform.processor() or "cpu",
        "dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "warmup": a.warmup, "repeats": a.repeats, "stat": "median ms per batch",
        "num_layers": n, "encoder_params_full": full_params, "results": [],
    }
    import transformers

    result["transformers"] = transformers.__version__

    def run_for(layer: int | None, batch: int) -> float:
        x = torch.randn(batch, 3, vc.image_size, vc.image_size, device=dev, dtype=dtype)

        def fn():
            with torch.no_grad():
                inner.get_image_features(pixel_values=x)

        return timed(fn, repeats=a.repeats, warmup=a.warmup, cuda=cuda)

    full_ms = {b: run_for(None, b) for b in batches}  # the stock model: 24 blocks, vision_feature_layer=-2
    for L in layers:
        flops = encoder_flops(model.config, "llava", L)  # analytic, from the full config
        cut = EncoderCut(model, "llava", L)  # what `layersafe trim --layer L` saves (the model is cut now)
        row = {"layer": L, "encoder_params_trimmed": _count(inner.vision_tower, "llava"),
               "encoder_gflops_per_image_full": flops["full"] / 1e9,
               "encoder_gflops_per_image_trimmed": flops["trimmed"] / 1e9, "by_batch": []}
        for b in batches:
            t = run_for(L, b)
            row["by_batch"].append({
                "batch": b, "full_ms": full_ms[b], "trimmed_ms": t, "speedup": full_ms[b] / t,
                "saved": 1 - t / full_ms[b],
                "full_tflops": b * flops["full"] / (full_ms[b] / 1e3) / 1e12,
                "trimmed_tflops": b * flops["trimmed"] / (t / 1e3) / 1e12})
        cut.use(full=True)  # back to the full encoder for the next L
        result["results"].append(row)
    if cuda:
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    line = json.dumps(result)
    print(line)
    if a.json:
        with open(a.json, "w") as f:
            f.write(line + "\n")
    return result


if __name__ == "__main__":
    main()
