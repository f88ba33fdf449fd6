"""Scan throughput: layersafe's engine vs the naive way, same model and inputs (CPU or GPU).

Naive = what a user does without layersafe: for every (sample, layer), truncate the vision
encoder to its first l blocks, re-encode the image and call stock ``generate`` at batch 1.
layersafe = encode each image once for all layers, project per layer, batched generation
(``--cache auto``: static KV cache + CUDA-graph decode steps on CUDA, stock generate on CPU).
Greedy outputs of both are compared on every naive pair. The naive way can be timed on a
subset (``--naive-samples``, ``--naive-layers``): its per-pair time is then extrapolated.

``--decode-bench`` adds, on CUDA: one batch of ``--batch-size`` prompts generated with the
dynamic cache (stock generate) and with the static cache, prefill and per-step decode time
separated (a 1-token call is subtracted from a full-length call); decode tokens/s is compared
with the HBM roofline, i.e. (weights + KV cache bytes read per step) / copy bandwidth measured
here with a large device-to-device copy.

The physical limit (issue 21) is printed beside the engine's figures on CUDA: per pair, prefill
FLOPs (2 x LM parameters x prompt tokens) at a measured bf16 matmul rate plus the decode steps'
bytes (weights / batch + live KV of the row) at the copy bandwidth. ``--window both`` runs the
engine scan and the static decode bench twice, decode attention over the whole cache
(``DECODE_WINDOW = 0``, the old path) and over the live slots only, for a before/after in one run.
``--fuse both`` does the same with the decoder's elementwise kernels unfused and fused
(``StaticDecoder(fuse=True)``, ``layersafe scan --fuse-kernels``; layersafe/models/fuse.py); each
setting's engine scan is preceded by an untimed scan of one full batch, so compiling is not timed.
``--pack both`` times the fused decode bench with each layer's q/k/v and gate/up projections as
one matmul each (``fuse.PACK``, the default) and as separate matmuls.

    python benchmarks/bench_scan.py                      # CPU, small random LLaVA (defaults)
    python benchmarks/bench_scan.py --samples 20 --new-tokens 32 --batch-size 32
    python benchmarks/bench_scan.py --preset llava-1.5-7b --samples 100 --layers 1-24 --new-tokens 128 \
        --batch-size 64 --naive-samples 1 --naive-layers 1,8,16,24 --decode-bench     # GPU, issue 11
    python benchmarks/bench_scan.py --preset llava-1.5-7b --samples 100 --layers 1-24 --new-tokens 128 \
        --batch-size auto --naive-samples 0 --fuse on                                 # GPU, issue 21

Records go in docs/benchmarks.md with the exact command, date and machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import time

import torch


def encoder_layers(vision_tower):
    """The ModuleList of encoder blocks, wherever this transformers version keeps it."""
    for path in ("encoder.layers", "vision_model.encoder.layers"):
        mod = vision_tower
        try:
            for part in path.split("."):
                mod = getattr(mod, part)
            return mod, path
        except AttributeError:
            continue
    raise RuntimeError("cannot find the vision encoder's blocks")


@contextlib.contextmanager
def truncated(vision_tower, n_blocks):
    layers, path = encoder_layers(vision_tower)
    parent = vision_tower
    for part in path.split(".")[:-1]:
        parent = getattr(parent, part)
    cfg = vision_tower.config
    n_cfg = cfg.num_hidden_layers
    # transformers resolves negative vision_feature_layer against config.num_hidden_layers.
    parent.layers, cfg.num_hidden_layers = torch.nn.ModuleList(list(layers)[:n_blocks]), n_blocks
    try:
        yield
    finally:
        parent.layers, cfg.num_hidden_layers = layers, n_cfg


def naive(adapter, samples, layers, new_tokens):
    from layersafe.data.base import load_image

    outs = {}
    eos = adapter.tokenizer.eos_token_id
    for s in samples:
        img = load_image(s.image)
        for layer in layers:
            inputs = adapter.processor(images=[img], text=[adapter.build_prompt(s.prompt)], return_tensors="pt")
            inputs = {k: v.to(adapter.device) for k, v in inputs.items()}
            # Layer l >= 1: keep only the first l blocks and read the last hidden state. Layer 0
            # (no blocks) can't be truncated to: read hidden_states[0] of the full encoder, as
            # -(N+1) because transformers 5.23/5.24 treat vision_feature_layer=0 as unset.
            n_blocks, vfl = (layer, -1) if layer > 0 else (adapter.num_layers, -(adapter.num_layers + 1))
            with truncated(adapter.vision_tower, n_blocks), torch.no_grad():
                out = adapter.model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False,
                                             vision_feature_layer=vfl, pad_token_id=adapter.tokenizer.pad_token_id)
            new = out[0, inputs["input_ids"].shape[1]:].tolist()
            outs[(s.id, layer)] = new[:new.index(eos)] if eos in new else new
    return outs


def copy_bandwidth(dev, gib: float = 4.0) -> float:
    """Bytes/s of a large device-to-device copy, counting bytes read + written (best of 10)."""
    n = int(gib * 2**30) // 2
    a = torch.empty(n, dtype=torch.bfloat16, device=dev)
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    best = float("inf")
    for _ in range(10):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        b.copy_(a)
        e1.record()
        torch.cuda.synchronize()
        best = min(best, e0.elapsed_time(e1) / 1e3)
    del a, b
    return 2 * n * 2 / best


def matmul_rate(dev, n: int = 8192) -> float:
    """FLOP/s of a large bf16 matmul (best of 10): the prefill's compute ceiling."""
    a = torch.randn(n, n, dtype=torch.bfloat16, device=dev)
    b = torch.randn(n, n, dtype=torch.bfloat16, device=dev)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        a @ b
        e1.record()
        torch.cuda.synchronize()
        best = min(best, e0.elapsed_time(e1) / 1e3)
    return 2 * n**3 / best


def lm_sizes(adapter) -> tuple[int, int, int]:
    """(LM parameters used per token, bytes of weights read per decode step, KV bytes per token)."""
    lm = adapter.model.get_decoder()
    cfg = adapter.model.config.get_text_config(decoder=True)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    elt = next(lm.parameters()).element_size()
    emb = lm.get_input_embeddings().weight.numel()
    # Weights read every step: the LM and lm_head; of the token-embedding table only B rows.
    params = sum(p.numel() for p in lm.parameters()) - emb + adapter.model.get_output_embeddings().weight.numel()
    return params, params * elt, 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * elt


def physical_limit(adapter, prompt_tokens: list[int], new_tokens: int, batch: int, rate: float, bw: float) -> dict:
    """Seconds per (sample, layer) pair the H200 allows (issue 21): prefill at the matmul rate,
    decode steps at the copy bandwidth (weights shared by the batch, the row's live KV)."""
    params, w_bytes, kv_tok = lm_sizes(adapter)
    p = sum(prompt_tokens) / len(prompt_tokens)
    pre = 2 * params * p / rate
    dec = sum(w_bytes / batch + (p + t) * kv_tok for t in range(1, new_tokens)) / bw
    return {"prefill_ms": pre * 1e3, "decode_ms": dec * 1e3, "pair_ms": (pre + dec) * 1e3, "prompt_tokens_mean": p}


@contextlib.contextmanager
def counting(adapter, sync):
    """Count the engine's generate calls: rows, prefill tokens computed (with a shared prefix: U x Q +
    B x S, else B x P) and the wall time inside ``adapter.generate`` (synchronized)."""
    from layersafe.models import decode

    c = {"rows": 0, "prefill_tokens": 0, "generate_s": 0.0, "calls": []}  # calls: (rows, s) of each
    real_dec, real_gen = decode.StaticDecoder.generate, adapter.generate

    def dec_generate(self, inputs_embeds, attention_mask, **kw):
        pre = kw.get("prefix")
        c["prefill_tokens"] += inputs_embeds.shape[0] * inputs_embeds.shape[1] + (
            pre[0].shape[0] * pre[0].shape[1] if pre is not None else 0)
        c["rows"] += inputs_embeds.shape[0]
        return real_dec(self, inputs_embeds, attention_mask, **kw)

    def gen(*args, **kw):
        sync()
        t = time.perf_counter()
        out = real_gen(*args, **kw)
        sync()
        dt = time.perf_counter() - t
        c["generate_s"] += dt
        c["calls"].append((len(args[0]), round(dt, 3)))
        return out

    decode.StaticDecoder.generate, adapter.generate = dec_generate, gen
    try:
        yield c
    finally:
        decode.StaticDecoder.generate = real_dec
        del adapter.generate  # the instance attribute: back to the class's method


WINDOW_ON = None  # --decode-window: the window size "on" uses (None: the library's default)


@contextlib.contextmanager
def window(setting: str | None):
    """Decode attention over the live slots ("on") or the whole cache ("off", the old path)."""
    from layersafe.models import decode

    old = decode.DECODE_WINDOW
    if setting == "off":
        decode.DECODE_WINDOW = 0
    elif setting == "on" and WINDOW_ON is not None:
        decode.DECODE_WINDOW = WINDOW_ON
    try:
        yield
    finally:
        decode.DECODE_WINDOW = old


def add_lora(adapter, r: int) -> int:
    """Wrap the adapter's model in place with rank-r LoRA on align's target linears (language model
    only), B non-zero so the LoRA path is not a no-op; returns the number of LoRA layers."""
    from peft import LoraConfig, get_peft_model

    from layersafe.rl.configs import LORA_TARGETS
    from layersafe.rl.onpolicy import lora_target

    target = lora_target(adapter, LORA_TARGETS.split(","))
    peft = get_peft_model(adapter.model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=target, bias="none"))
    n = 0
    with torch.no_grad():
        for name, prm in peft.named_parameters():
            if "lora_B" in name:
                prm.normal_(0, 1e-3)
                n += 1
    adapter.release_cache()  # the next decoder captures the LoRA path
    return n


def static_name(w: str, f: str, pk: str = "on", ps: str | None = None) -> str:
    """The decode bench's name for a static-cache setting: "static" is the default path."""
    return ("static" + ("" if w == "on" else f"_window_{w}") + ("" if f == "off" else "_fuse_on")
            + ("_nopack" if f == "on" and pk == "off" else "") + (f"_prefill_{ps}" if f == "on" and ps else ""))


@contextlib.contextmanager
def packing(setting: str, prefill_shapes: str | None = None):
    """The fused decoder's q/k/v and gate/up as one matmul each in the decode steps ("on", the
    default) or not ("off"), and its prefill kernels' shapes (fuse.PREFILL_SHAPES; None: the default)."""
    from layersafe.models import fuse

    old = fuse.PACK, fuse.PREFILL_SHAPES
    fuse.PACK = setting == "on"
    fuse.PREFILL_SHAPES = prefill_shapes or old[1]
    try:
        yield
    finally:
        fuse.PACK, fuse.PREFILL_SHAPES = old


def decode_bench(adapter, samples, layer: int, batch: int, new_tokens: int, dev, windows=("on",),
                 rate: float | None = None, fuses=("off",), packs=("on",), prefill_shapes=(None,)) -> dict:
    """Prefill and per-step decode time of one batch, dynamic vs static cache, and the roofline."""
    from layersafe.data.base import load_image

    items = [adapter.tokenize(adapter.build_prompt(s.prompt), load_image(s.image))
             for s in (samples * (batch // len(samples) + 1))[:batch]]
    feats = adapter.features(adapter.encode(items, [layer]), layer, range(batch))
    params, w_bytes, kv_per_token = lm_sizes(adapter)
    real = [int(it["input_ids"].shape[-1]) for it in items]
    # KV actually needed, averaged over decode steps t = 1..N-1 (the step feeding token t reads P+t slots).
    kv_bytes = sum(sum(r + t for r in real) for t in range(1, new_tokens)) / (new_tokens - 1) * kv_per_token
    bw = copy_bandwidth(dev)
    res = {"batch": batch, "layer": layer, "new_tokens": new_tokens, "prompt_tokens_mean": sum(real) / batch,
           "weights_gb": w_bytes / 1e9, "kv_read_per_step_gb": kv_bytes / 1e9, "copy_bandwidth_tb_s": bw / 1e12,
           "roofline_step_ms": (w_bytes + kv_bytes) / bw * 1e3}
    if rate:
        res["matmul_tflop_s"] = rate / 1e12
        res["prefill_floor_s"] = 2 * params * sum(real) / rate

    outs = {}

    def timed(cache, n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        outs["last"] = adapter.generate(items, feats, max_new_tokens=n, cache=cache)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    same = {}
    # "static" is the default path; "static_window_off" reads the whole cache every step (before issue 21);
    # "..._fuse_on" runs the fused elementwise kernels
    # "..._nopack": fused, with q/k/v and gate/up as separate matmuls (before 2026-12-01)
    variants = [("dynamic", "dynamic", None, "off", "on", None)] + [
        (static_name(w, f, pk, ps), "static", w, f, pk, ps) for w in windows for f in fuses
        for pk in (packs if f == "on" else ("on",)) for ps in (prefill_shapes if f == "on" else (None,))]
    for name, cache, w, f, pk, ps in variants:
        adapter.release_cache()  # a fresh decoder: its graphs are captured under this setting
        adapter.fuse_kernels = f == "on"
        with window(w), packing(pk, ps):
            if f == "on":  # a half batch first: the prefill kernels see a second shape, as in a scan
                adapter.generate(items[: batch // 2], feats[: batch // 2], max_new_tokens=2, cache=cache)
            timed(cache, new_tokens)  # warm-up: kernels, allocator, graph capture
            outs[name] = outs["last"]  # the full-length tokens (later calls are timing only)
            if cache == "static":  # bf16 kernels differ between the paths: count equal rows, don't assert
                same[name] = sum(a.tokens == b.tokens for a, b in zip(outs["dynamic"], outs[name]))
            timed(cache, 1)  # the 1-token call reuses the full call's decoder (longer cache)
            full = min(timed(cache, new_tokens) for _ in range(2))
            pre = min(timed(cache, 1) for _ in range(2))
        step = (full - pre) / (new_tokens - 1)
        res[name] = {"call_s": full, "prefill_s": pre, "decode_step_ms": step * 1e3,
                     "decode_tokens_per_s": batch / step, "end_to_end_tokens_per_s": batch * new_tokens / full,
                     "roofline_fraction": res["roofline_step_ms"] / (step * 1e3)}
        if rate:
            res[name]["prefill_fraction_of_matmul_rate"] = res["prefill_floor_s"] / pre
    for name, n in same.items():
        res[f"identical_rows_{name}_vs_dynamic"] = f"{n}/{batch}"
    res["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return res


def batch_size_arg(s: str):
    """``--batch-size``: a positive integer or auto."""
    if s.strip().lower() == "auto":
        return "auto"
    try:
        n = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {s!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {s!r}")
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=["small", "llava-1.5-7b"], default="small",
                    help="small: a small random LLaVA (CPU friendly, sizes below); llava-1.5-7b: the real "
                         "architecture with random bf16 weights built on the GPU")
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--batch-size", type=batch_size_arg, default=32,
                    help="pairs per generate call, or auto: chosen from free GPU memory as `layersafe scan "
                         "--batch-size auto` (resolved after the model is built; the result's batch_size is the int)")
    ap.add_argument("--naive-samples", type=int, default=None,
                    help="time the naive way on the first N samples only (it is slow); default all")
    ap.add_argument("--layers", default="all", help="layer spec scanned (default all: 0..N)")
    ap.add_argument("--naive-layers", default=None,
                    help="time the naive way on these layers only (spec); its per-pair time is extrapolated")
    ap.add_argument("--cache", choices=["auto", "dynamic", "static"], default="auto", help="the engine's KV cache")
    ap.add_argument("--decode-bench", action="store_true",
                    help="CUDA: also time one batch's prefill and decode steps, dynamic vs static, against the roofline")
    ap.add_argument("--vision-layers", type=int, default=12)
    ap.add_argument("--vision-hidden", type=int, default=256)
    ap.add_argument("--text-layers", type=int, default=4)
    ap.add_argument("--text-hidden", type=int, default=512)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--patch-size", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", choices=["bfloat16", "float32"], default=None,
                    help="default: bfloat16 for llava-1.5-7b, float32 for small")
    ap.add_argument("--window", choices=["on", "off", "both"], default="on",
                    help="decode attention over the live cache slots (on, the default path) or the whole cache "
                         "(off, before issue 21); both: run the engine scan and the decode bench with each")
    ap.add_argument("--fuse", choices=["on", "off", "both"], default="off",
                    help="the static-cache decoder's elementwise kernels fused (on, --fuse-kernels) or not (off, "
                         "the default path); both: run the engine scan and the decode bench with each")
    ap.add_argument("--pack", choices=["on", "off", "both"], default="on",
                    help="with --fuse on: q/k/v and gate/up as one matmul each (on, the library's default) or "
                         "not (off); both: the decode bench times each (the engine scan runs on)")
    ap.add_argument("--prefill-shapes", choices=["dynamic", "auto", "both"], default=None,
                    help="with --fuse on: the fused prefill kernels compiled with every dim symbolic (dynamic) or "
                         "only the dims that change (auto); both: the decode bench times each (default: the library's)")
    ap.add_argument("--prefix-reuse", choices=["on", "off", "both"], default="on",
                    help="scan --prefix-reuse (on, the default path: rows sharing an image at a layer compute "
                         "their prompt start once) or --no-prefix-reuse (off); both: run the engine scan with each")
    ap.add_argument("--decode-window", type=int, default=None,
                    help="slots per decode-attention window when the window is on (default: the library's)")
    ap.add_argument("--decode-lora", type=int, default=0, metavar="R",
                    help="with --decode-bench: time the decode again with rank-R LoRA on the language model's "
                         "linears (align's targets), as L-PPO rollouts decode")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    if a.decode_window is not None and a.decode_window < 1:
        ap.error("--decode-window must be at least 1")  # one line, exit 2
    if a.decode_lora < 0:
        ap.error("--decode-lora must be a LoRA rank >= 1, or 0 for none")
    global WINDOW_ON
    WINDOW_ON = a.decode_window

    from layersafe.data import load_dataset
    from layersafe.io import read_jsonl
    from layersafe.models import decode, pick_device
    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import LLAVA15_7B, make_random_llava
    from layersafe.scan import ScanConfig, run_scan

    torch.set_grad_enabled(False)
    dev = pick_device(a.device)
    if a.preset == "llava-1.5-7b":
        sizes, dtype = dict(LLAVA15_7B), torch.bfloat16
    else:
        sizes = dict(vision_layers=a.vision_layers, vision_hidden=a.vision_hidden, text_layers=a.text_layers,
                     text_hidden=a.text_hidden, image_size=a.image_size, patch_size=a.patch_size,
                     initializer_range=0.05)
        dtype = torch.float32
    if a.dtype:
        dtype = getattr(torch, a.dtype)
    t = time.perf_counter()
    model, processor = make_random_llava(dtype=dtype, device=dev, **sizes)
    t_build = time.perf_counter() - t
    adapter = LlavaAdapter(model, processor, name=f"random:{a.preset}", device=dev)
    # Forced length: no EOS, so both paths generate exactly new_tokens per pair.
    adapter.model.generation_config.eos_token_id = None
    samples = load_dataset("custom-prompts", limit=a.samples).samples
    from layersafe.layers import parse_layers

    layers = parse_layers(a.layers, adapter.num_layers, adapter.default_layer)
    naive_layers = parse_layers(a.naive_layers, adapter.num_layers, adapter.default_layer) if a.naive_layers else layers
    pairs = len(samples) * len(layers)
    if a.batch_size == "auto":
        from layersafe.scan.batching import resolve_batch_size

        a.batch_size = resolve_batch_size(adapter, samples, pairs, cache=a.cache, max_new_tokens=a.new_tokens)
        print(f"--batch-size auto: {a.batch_size}", flush=True)
    n_params = sum(p.numel() for p in adapter.model.parameters())

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    windows = ["off", "on"] if a.window == "both" else [a.window]
    fuses = ["off", "on"] if a.fuse == "both" else [a.fuse]
    reuses = ["off", "on"] if a.prefix_reuse == "both" else [a.prefix_reuse]
    packs = ("off", "on") if a.pack == "both" else (a.pack,)
    shapes = ("dynamic", "auto") if a.prefill_shapes == "both" else (a.prefill_shapes,)
    from layersafe.models import fuse

    fuse.PACK = a.pack != "off"  # the engine scan: packed unless --pack off
    if a.prefill_shapes in ("dynamic", "auto"):
        fuse.PREFILL_SHAPES = a.prefill_shapes
    settings = [(w, f, r) for w in windows for f in fuses for r in reuses]

    def label(w, f, r="on"):  # the JSON key of a setting: as before when only the window varies
        key = w if len(fuses) == 1 else f"fuse_{f}" if len(windows) == 1 else f"window_{w}_fuse_{f}"
        if len(reuses) == 1:
            return key
        return f"reuse_{r}" if len(fuses) == len(windows) == 1 else f"{key}_reuse_{r}"

    # the first vs the last setting's responses: "window_off_vs_on", "fuse_off_vs_fuse_on", ...
    tag = "window_off_vs_on" if len(fuses) == 1 else f"{label(*settings[0])}_vs_{label(*settings[-1])}"
    if len(reuses) > 1:
        tag = f"{label(*settings[0])}_vs_{label(*settings[-1])}"
    if len(fuses) == 1 and len(windows) == 1 and len(reuses) == 1:
        tag = None
    warm_samples = min(a.samples, -(-a.batch_size // len(layers)))  # one full batch of pairs
    engine: dict = {}
    counts: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up (kernels, allocator) on 1 sample, then the timed scan
        run_scan(ScanConfig(model=adapter.name, dataset="custom-prompts", limit=1, layers="0,1",
                            out=f"{tmp}/warm", max_new_tokens=4, batch_size=2, judges=[], cache=a.cache),
                 adapter=adapter, progress=False, log=lambda m: None)
        for w, f, r in settings:
            key = label(w, f, r)
            adapter.release_cache()  # a fresh decoder: its graphs are captured under this setting
            with window(w):
                if f == "on":  # compile the fused kernels for this batch size outside the timing
                    run_scan(ScanConfig(model=adapter.name, dataset="custom-prompts", limit=warm_samples,
                                        layers=a.layers, out=f"{tmp}/warm_{key}", max_new_tokens=4,
                                        batch_size=a.batch_size, judges=[], cache=a.cache, fuse_kernels=True,
                                        prefix_reuse=r == "on"),
                             adapter=adapter, progress=False, log=lambda m: None)
                sync()
                t = time.perf_counter()
                cfg = ScanConfig(model=adapter.name, dataset="custom-prompts", limit=a.samples, layers=a.layers,
                                 out=f"{tmp}/scan_{key}", max_new_tokens=a.new_tokens, batch_size=a.batch_size,
                                 judges=[], cache=a.cache, fuse_kernels=f == "on", prefix_reuse=r == "on")
                with counting(adapter, sync) as count:
                    run_scan(cfg, adapter=adapter, progress=False, log=lambda m: None)
                sync()
                engine[key] = time.perf_counter() - t
                counts[key] = count
            print(f"engine ({key}): {pairs} pairs in {engine[key]:.1f} s", flush=True)  # in case a later part dies
            rows = read_jsonl(f"{tmp}/scan_{key}/generations.jsonl")
            resp = {(r["sample_id"], r["layer"]): r["response"] for r in rows}
            if (w, f, r) == settings[0]:
                first, prompt_tokens = resp, [r["prompt_tokens"] for r in rows]
            # the paths' responses, bf16 on the GPU: count, don't assert
            same_paths = sum(resp[k] == v for k, v in first.items())
    t_engine = engine[label(*settings[-1])]  # the headline figure: the last setting
    ours = resp

    naive_samples = samples[: a.naive_samples if a.naive_samples is not None else len(samples)]
    naive_pairs = len(naive_samples) * len(naive_layers)
    t_naive, same = float("nan"), 0
    if naive_pairs:
        naive(adapter, naive_samples[:1], naive_layers[:1], 2)  # warm-up
        sync()
        t = time.perf_counter()
        ref = naive(adapter, naive_samples, naive_layers, a.new_tokens)
        sync()
        t_naive = time.perf_counter() - t
        tok = adapter.tokenizer
        same = sum(ours[k] == tok.decode(v, skip_special_tokens=True).strip() for k, v in ref.items())

    engine_pps = pairs / t_engine
    naive_pps = naive_pairs / t_naive if naive_pairs else float("nan")
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "preset": a.preset,
        "machine": torch.cuda.get_device_name() if dev.type == "cuda"
        else f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        "dtype": str(dtype).replace("torch.", ""), "params": n_params, "build_s": round(t_build, 1),
        "samples": len(samples), "layers": len(layers), "pairs": pairs, "new_tokens": a.new_tokens,
        "batch_size": a.batch_size, "cache": a.cache, "window": a.window, "fuse": a.fuse, "pack": a.pack,
        "prefill_shapes": a.prefill_shapes or fuse.PREFILL_SHAPES,
        "decode_window": a.decode_window or decode.DECODE_WINDOW,
        "engine_s": round(t_engine, 2), "engine_pairs_per_s": round(engine_pps, 3),
        "engine_tokens_per_s": round(engine_pps * a.new_tokens, 1),
        "engine_samples_per_s": round(len(samples) / t_engine, 3),  # a sample = all its layers
        "naive_pairs_timed": naive_pairs, "naive_extrapolated": naive_pairs < pairs, "naive_s": round(t_naive, 2),
        "naive_pairs_per_s": round(naive_pps, 3), "naive_tokens_per_s": round(naive_pps * a.new_tokens, 1),
        "speedup": round(engine_pps / naive_pps, 2),
        "identical_greedy_outputs": f"{same}/{naive_pairs}",
    }
    if not naive_pairs:  # --naive-samples 0: not timed
        for k in ("naive_s", "naive_pairs_per_s", "naive_tokens_per_s", "speedup", "identical_greedy_outputs"):
            res[k] = None
    if tag:
        by = "window" if len(fuses) == len(reuses) == 1 else "setting"
        res[f"engine_s_by_{by}"] = {w: round(v, 2) for w, v in engine.items()}
        res[f"engine_pairs_per_s_by_{by}"] = {w: round(pairs / v, 3) for w, v in engine.items()}
        res[f"identical_responses_{tag}"] = f"{same_paths}/{pairs}"
    rate = None
    if dev.type == "cuda":
        res["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
        rate, bw = matmul_rate(dev), copy_bandwidth(dev)
        lim = physical_limit(adapter, prompt_tokens, a.new_tokens, a.batch_size, rate, bw)
        res["physical_limit"] = {**{k: round(v, 2) for k, v in lim.items()}, "matmul_tflop_s": round(rate / 1e12, 1),
                                 "copy_bandwidth_tb_s": round(bw / 1e12, 3)}
        res["engine_pair_ms"] = {w: round(v / pairs * 1e3, 2) for w, v in engine.items()}
        res["engine_fraction_of_limit"] = {w: round(lim["pair_ms"] / (v / pairs * 1e3), 3) for w, v in engine.items()}
        # Where the engine's time went, and the limit of the work it did: with prefix reuse a pair's
        # prefill is fewer tokens than its prompt (the shared start computed once per prefix).
        res["engine_generate_s"] = {w: round(c["generate_s"], 2) for w, c in counts.items()}
        # the slowest calls: a batch size not seen before pays its compile and graph capture there
        res["engine_slowest_calls"] = {w: sorted(c["calls"], key=lambda rc: -rc[1])[:3] for w, c in counts.items()}
        res["engine_outside_generate_ms_per_pair"] = {
            w: round((engine[w] - c["generate_s"]) / pairs * 1e3, 2) for w, c in counts.items()}
        res["prefill_tokens_per_pair"] = {w: round(c["prefill_tokens"] / max(c["rows"], 1), 1) for w, c in counts.items()}
        params = lm_sizes(adapter)[0]
        res["work_limit_pair_ms"] = {
            w: round(lim["decode_ms"] + 2 * params * c["prefill_tokens"] / max(c["rows"], 1) / rate * 1e3, 2)
            for w, c in counts.items()}
        res["engine_fraction_of_work_limit"] = {
            w: round(res["work_limit_pair_ms"][w] / (engine[w] / pairs * 1e3), 3) for w in counts}
    if a.decode_bench and dev.type == "cuda":
        res["decode_bench"] = decode_bench(adapter, samples, adapter.default_layer, a.batch_size, a.new_tokens, dev,
                                           windows=tuple(windows), rate=rate, fuses=tuple(fuses), packs=packs,
                                           prefill_shapes=shapes)
        if a.decode_lora:
            # The same batch through the same decoder with L-PPO's LoRA (non-zero B) in every language-model
            # linear: what the LoRA layers add to a decode step (docs/lppo.md, "Decode cache").
            add_lora(adapter, a.decode_lora)
            res["decode_bench_lora"] = {"lora_r": a.decode_lora, **decode_bench(
                adapter, samples, adapter.default_layer, a.batch_size, a.new_tokens, dev, windows=("on",), rate=rate,
                fuses=tuple(fuses))}
    print(json.dumps(res, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
