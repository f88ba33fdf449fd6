"""The decode step's skinny matmuls on their own: bytes/s of each projection shape of a 7B Llama
(LLaVA-1.5-7B's language model) at a decode batch, by the ways torch can run it (issue 21).

A decode step at batch 64-256 reads every weight once; the matmuls are memory-bound and their
figure of merit is the weight bytes streamed per second, next to the measured copy bandwidth.
Each timing cycles through ``--weights`` distinct weight tensors (as the 32 layers do), so a
weight never sits in the 50 MB L2 between its calls; calls are replayed from a CUDA graph (as the
decoder's step is), best of ``--repeats``.

Ways: ``linear`` (F.linear: cuBLAS, what the decoder runs), ``cublaslt`` (the same through
cuBLASLt), ``transposed`` (W @ x^T, then the small transposed copy back), and ``autotune``
(torch.compile max-autotune: inductor's Triton GEMM templates and cuBLAS, the fastest kept).

    PYTHONPATH=$PWD python benchmarks/bench_gemm.py --json $OUT/gemm.json   # one H200, ~3 min
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (name, in, out) of LLaVA-1.5-7B's language model; q/k/v and gate/up packed as the fused decoder runs them
SHAPES = [("qkv", 4096, 3 * 4096), ("o_proj", 4096, 4096), ("gate_up", 4096, 2 * 11008),
          ("down_proj", 11008, 4096), ("lm_head", 4096, 32000)]


def graph_time(fn, xs, ws, repeats: int) -> float:
    """Seconds per call: one CUDA graph of a call on each weight in turn, best of ``repeats``."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            for x, w in zip(xs, ws):
                fn(x, w)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for x, w in zip(xs, ws):
            fn(x, w)
    best = float("inf")
    for _ in range(repeats):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        g.replay()
        e1.record()
        torch.cuda.synchronize()
        best = min(best, e0.elapsed_time(e1) / 1e3 / len(ws))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[128])
    ap.add_argument("--weights", type=int, default=8, help="distinct weights cycled through (> L2 in total)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--ways", nargs="+", default=["linear", "cublaslt", "transposed", "autotune"],
                    choices=["linear", "cublaslt", "transposed", "autotune"])
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gemm.py: needs CUDA")
    from bench_scan import copy_bandwidth

    torch.set_grad_enabled(False)
    torch._dynamo.config.recompile_limit = 64  # one compile per shape and batch
    dev = torch.device("cuda")
    bw = copy_bandwidth(dev)
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "gpu": torch.cuda.get_device_name(),
                 "torch": torch.__version__, "copy_bandwidth_tb_s": bw / 1e12, "shapes": {}}
    auto = torch.compile(F.linear, mode="max-autotune-no-cudagraphs", dynamic=False)

    def lt(x, w):
        torch.backends.cuda.preferred_blas_library("cublaslt")
        try:
            return F.linear(x, w)
        finally:
            torch.backends.cuda.preferred_blas_library("default")

    ways = {"linear": F.linear, "cublaslt": lt, "transposed": lambda x, w: (w @ x.t()).t().contiguous(),
            "autotune": auto}
    for B in a.batch:
        for name, k, n in SHAPES:
            ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(a.weights)]
            xs = [torch.randn(B, k, device=dev, dtype=torch.bfloat16) for _ in range(a.weights)]
            ref = F.linear(xs[0], ws[0]).float()
            row: dict = {"weight_mb": n * k * 2 / 1e6}
            for way in a.ways:
                fn = ways[way]
                try:
                    err = (fn(xs[0], ws[0]).float() - ref).abs().max().item()
                    t = graph_time(fn, xs, ws, a.repeats)
                except Exception as e:  # a way this torch cannot run: say so, go on
                    row[way] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
                    continue
                moved = (n * k + B * k + B * n) * 2
                row[way] = {"us": round(t * 1e6, 2), "tb_s": round(moved / t / 1e12, 3),
                            "of_copy_bw": round(moved / t / bw, 3), "max_abs_diff_vs_linear": err}
            res["shapes"][f"{name}_b{B}"] = row
            print(json.dumps({f"{name}_b{B}": row}), flush=True)
    text = json.dumps(res, indent=2)
    if a.json:
        Path(a.json).write_text(text)


if __name__ == "__main__":
    main()
