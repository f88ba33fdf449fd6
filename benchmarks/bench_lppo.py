"""One L-PPO step at real scale: random bf16 weights of a real architecture on the GPU, LoRA.

``--family`` picks the architecture (a comma list runs several, one after the other, in one
process): ``llava-1.5`` (LLaVA-1.5-7B, the default), ``llava-next`` (LLaVA-NeXT-7B / v1.6-vicuna:
CLIP ViT-L/14-336 anyres, up to 5 tiles = 2,928 image tokens for a square photo, Vicuna-7B),
``qwen2.5-vl`` (Qwen2.5-VL-7B: 32-block window ViT, Qwen2-7B LM) and ``mllama`` (Llama 3.2 11B
Vision: 32 local + 8 global vision blocks, 40-layer LM with 8 cross-attention layers). Each
family trains through its own adapter (layersafe.models), as ``layersafe align`` does.

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
measured here is reported too. ``mfu_6n_counted`` / ``mfu_4n_counted`` use the forward FLOPs that
torch's FlopCounterMode counts on the learning phase's own minibatches (every family: Mllama's
cross-attention over 6,404 vision states per image and Qwen's shapes need no formula).

``--family-recompute`` recomputes in the backward pass only the layers the family's adapter names
(``recompute_in_backward``; Mllama: its 8 cross-attention layers, which hold every row's keys and
values over the image states); that replay is reported as ``learn_recompute_flops_counted`` and
never counted in any MFU (the counted forward runs under no_grad, where nothing is replayed).

Also asserts one copy of the base weights: LoRA's reference is the same base with the adapter
disabled and the value head shares the trunk, so no base parameter is copied.

    python benchmarks/bench_lppo.py                      # CUDA only; writes JSON with --json
    python benchmarks/bench_lppo.py --family llava-next,qwen2.5-vl,mllama --steps 2 --json out.json
    python benchmarks/bench_lppo.py --family llava-next,qwen2.5-vl,mllama --preset tiny --device cpu  # plumbing
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import matmul_rate  # noqa: E402  (same folder: best of 10 bf16 8192^3 GEMMs)

H200_BF16_DENSE = 989e12


# --- real-size architectures (random weights) ------------------------------------------------
FAMILIES = ("llava-1.5", "llava-next", "qwen2.5-vl", "mllama")
# Minibatch per family at 16 rollouts: about 3,000-4,000 training tokens per minibatch (as
# LLaVA-1.5's 4 x 754, which met 60 GB and 30 % MFU): LLaVA-NeXT prompts alone are ~3,000 tokens
# (5 tiles); Qwen2.5-VL's ~350; Mllama's text is ~30 tokens (its image goes in through
# cross-attention), so its whole batch is one minibatch.
MINI_BATCH = {"llava-1.5": 4, "llava-next": 1, "qwen2.5-vl": 4, "mllama": 16}  # qwen at 8 peaked at 86 GB
TINY_ALIAS = {"llava-next": "tiny-random-llava-next", "qwen2.5-vl": "tiny-random-qwen2.5-vl",
              "mllama": "tiny-random-mllama"}


@contextlib.contextmanager
def building(device, dtype):
    """Modules are created directly on ``device`` in ``dtype`` (a 7B model in fp32 is 28 GB)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


def _padded_tokenizer(vocab: int, special=(), named=None):
    """layersafe's offline tokenizer + the family's special tokens, padded to the real vocabulary."""
    from layersafe.models.tiny_families import _tokenizer

    tok = _tokenizer(list(special), named) if special else _tokenizer([], named)
    tok.add_tokens([f"<x{i}>" for i in range(vocab - len(tok))])
    return tok


def _finish(model, tok, eos=None):
    gc_ = model.generation_config
    gc_.pad_token_id, gc_.bos_token_id = tok.pad_token_id, tok.bos_token_id
    gc_.eos_token_id = tok.eos_token_id if eos is None else eos
    return model.eval()


def make_llava_next_7b(device, dtype, narrow: bool = False):
    """llava-v1.6-vicuna-7b's architecture: CLIP ViT-L/14-336 on anyres tiles (pinpoints up to
    672x672 / 1008x336: base tile + up to 4), 2-layer MLP projector, Vicuna-7B."""
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration,
                              LlavaNextImageProcessor, LlavaNextProcessor)

    from layersafe.models.tiny_families import LLAVA_NEXT_CHAT_TEMPLATE

    tok = _padded_tokenizer(32064)
    pinpoints = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    v, t = (dict(hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4) if narrow else
            dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16),
            dict(hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4) if narrow else
            dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=32))
    vision = CLIPVisionConfig(**v, image_size=336, patch_size=14, projection_dim=768)
    text = LlamaConfig(vocab_size=len(tok), **t, max_position_embeddings=4096,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    config = LlavaNextConfig(vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
                             image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
                             vision_feature_select_strategy="default", image_seq_length=576)
    config.pad_token_id = tok.pad_token_id
    with building(device, dtype):
        model = LlavaNextForConditionalGeneration(config)
    ip = LlavaNextImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                 image_grid_pinpoints=pinpoints)
    proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                              num_additional_image_tokens=1, chat_template=LLAVA_NEXT_CHAT_TEMPLATE)
    return _finish(model, tok), proc


def make_qwen2_5_vl_7b(device, dtype, narrow: bool = False):
    """Qwen2.5-VL-7B-Instruct's architecture: 32-block ViT (windowed, full attention at blocks
    8/16/24/32), 2x2 patch merger, Qwen2-7B LM (28 layers, GQA 28/4, vocab 152,064, 3-D rope)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen2VLImageProcessor

    from layersafe.models.tiny_families import _template, _video_processor, qwen_processor_without_torchvision

    tok = _padded_tokenizer(152064, ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
                            {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"})
    cid = tok.convert_tokens_to_ids
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    # narrow: the same head dims (text 128, as the 3-D rope sections need; vision 80), few layers
    t = (dict(hidden_size=512, intermediate_size=1024, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
         if narrow else dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                             num_key_value_heads=4))
    v = (dict(depth=4, hidden_size=160, intermediate_size=320, num_heads=2, fullatt_block_indexes=[1, 3]) if narrow else
         dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, fullatt_block_indexes=[7, 15, 23, 31]))
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tok), **t, max_position_embeddings=128000,
                         rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1e6},
                         tie_word_embeddings=False, **ids),
        vision_config=dict(**v, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           out_hidden_size=t["hidden_size"]),
        image_token_id=cid("<|image_pad|>"), video_token_id=cid("<|video_pad|>"),
        vision_start_token_id=cid("<|vision_start|>"), vision_end_token_id=cid("<|vision_end|>"),
        tie_word_embeddings=False, **ids)
    with building(device, dtype):
        model = Qwen2_5_VLForConditionalGeneration(config)
    ip = Qwen2VLImageProcessor(patch_size=14, temporal_patch_size=2, merge_size=2,
                               size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280})
    template = _template("USER: ", "<|vision_start|><|image_pad|><|vision_end|>", "", " ASSISTANT:")
    with qwen_processor_without_torchvision():
        proc = Qwen2_5_VLProcessor(image_processor=ip, tokenizer=tok, chat_template=template,
                                   video_processor=_video_processor())
    return _finish(model, tok), proc


def make_mllama_11b(device, dtype, narrow: bool = False):
    """Llama-3.2-11B-Vision's architecture: 32 local + 8 global vision blocks on up to 4 tiles of
    560 px (1,601 tokens a tile), taps [3, 7, 15, 23, 30], Llama-3.1-8B LM + 8 cross-attention layers."""
    from transformers import (MllamaConfig, MllamaForConditionalGeneration, MllamaImageProcessor, MllamaProcessor,
                              MllamaTextConfig, MllamaVisionConfig)

    from layersafe.models.tiny import build_tokenizer
    from layersafe.models.tiny_families import MLLAMA_CHAT_TEMPLATE, MLLAMA_SPECIALS

    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": MLLAMA_SPECIALS})
    tok.bos_token, tok.eos_token, tok.pad_token = "<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>"
    tok.image_token = "<|image|>"
    tok.add_tokens([f"<x{i}>" for i in range(128256 - len(tok))])
    ids = {t: tok.convert_tokens_to_ids(t) for t in MLLAMA_SPECIALS}
    v = (dict(hidden_size=80, intermediate_size=320, num_hidden_layers=8, num_global_layers=2, attention_heads=1,
              intermediate_layers_indices=[1, 2, 3, 5, 6], vision_output_dim=480) if narrow else
         dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_global_layers=8, attention_heads=16,
              intermediate_layers_indices=[3, 7, 15, 23, 30], vision_output_dim=7680))
    t = (dict(hidden_size=256, intermediate_size=512, num_hidden_layers=4, cross_attention_layers=[1, 3],
              num_attention_heads=2, num_key_value_heads=1) if narrow else
         dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=40,
              cross_attention_layers=[3, 8, 13, 18, 23, 28, 33, 38], num_attention_heads=32, num_key_value_heads=8))
    vision = MllamaVisionConfig(**v, image_size=560, patch_size=14, max_num_tiles=4)
    text = MllamaTextConfig(vocab_size=len(tok), **t, bos_token_id=ids["<|begin_of_text|>"], eos_token_id=ids["<|eot_id|>"],
                            pad_token_id=ids["<|finetune_right_pad_id|>"])
    config = MllamaConfig(vision_config=vision, text_config=text, image_token_index=ids["<|image|>"])
    with building(device, dtype):
        model = MllamaForConditionalGeneration(config)
    ip = MllamaImageProcessor(size={"height": 560, "width": 560}, max_image_tiles=4)
    proc = MllamaProcessor(image_processor=ip, tokenizer=tok, chat_template=MLLAMA_CHAT_TEMPLATE)
    return _finish(model, tok, eos=[ids["<|end_of_text|>"], ids["<|eot_id|>"]]), proc


def build(family: str, preset: str, device, dtype, tmp: str):
    """(adapter, model) for ``family`` at real size (random weights, built on ``device``) or, with
    ``preset == "tiny"``, the family's built-in tiny model (to check this script on a CPU)."""
    import os

    from layersafe.models import ADAPTERS, load_vlm
    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import LLAVA15_7B, make_random_llava

    if family == "llava-1.5":
        sizes = LLAVA15_7B if preset == "real" else dict(initializer_range=0.05)
        model, processor = make_random_llava(dtype=dtype, device=device, **sizes)
        return LlavaAdapter(model, processor, name=f"random:{family}:{preset}", device=device)
    if preset == "tiny":
        os.environ["LAYERSAFE_CACHE"] = tmp
        return load_vlm(TINY_ALIAS[family], device=str(device), dtype=str(dtype).replace("torch.", ""))
    make = {"llava-next": make_llava_next_7b, "qwen2.5-vl": make_qwen2_5_vl_7b, "mllama": make_mllama_11b}[family]
    model, processor = make(device, dtype, narrow=preset == "narrow")
    return ADAPTERS[type(model).__name__](model, processor, name=f"random:{family}", device=device)


def count_forward(trainer, ro, mini_batch: int):
    """torch's FlopCounterMode over one forward pass of the rollout's minibatches (the learning
    phase's shapes: matmuls, attention), per module. Under no_grad, so a layer set to recompute in
    the backward (``--family-recompute``) runs once here: recompute is never counted as model FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    from layersafe.rl.onpolicy import response_forward

    n = len(ro.prompts)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        for start in range(0, n, mini_batch):
            response_forward(trainer.policy, trainer.raw, trainer.adapter, ro, list(range(start, min(n, start + mini_batch))),
                             1.0)
    return counter


def counted_forward_flops(trainer, ro, mini_batch: int) -> float:
    """Model forward FLOPs of one pass over the rollout's minibatches (:func:`count_forward`)."""
    return float(count_forward(trainer, ro, mini_batch).get_total_flops())


def module_flops(counter, names) -> float:
    """FLOPs the counter attributes to the modules ``names`` (their names in the VLM)."""
    return float(sum(v for key, ops in counter.get_flop_counts().items() for n in names if key.endswith("." + n)
                     for v in ops.values()))


def run_family(a, family: str) -> dict:
    from layersafe.rl.lppo import LPPOConfig, LPPOTrainer

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    mem = torch.cuda.memory_allocated if cuda else (lambda: 0)
    mini = a.mini_batch_size or MINI_BATCH[family]
    dtype = torch.bfloat16 if cuda else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        adapter = build(family, a.preset, dev, dtype, tmp)
        model = adapter.model
        t_build = time.perf_counter() - t
        base = {p.data_ptr(): p.numel() * p.element_size() for p in model.parameters()}
        base_bytes = sum(base.values())
        mem_model = mem()
        cfg = LPPOConfig(model=adapter.name, data="advbench-images", layers="all", reward="refusal", out=tmp + "/out",
                         steps=a.steps + 1, batch_size=a.batch_size, mini_batch_size=mini,
                         ppo_epochs=a.ppo_epochs, max_new_tokens=a.new_tokens, device=a.device,
                         dtype=str(dtype).replace("torch.", ""), cache=a.cache, decode_cache=a.decode_cache)
        trainer = LPPOTrainer(cfg, adapter=adapter, log=lambda m: None)
        if a.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # The family's own recompute choice (Mllama: its cross-attention layers; others: none).
        recomputed = adapter.recompute_in_backward(model) if a.family_recompute else []

        # One copy of the base weights: the policy's frozen parameters are exactly the base
        # tensors (same storage), there is no reference copy, and setting up the trainer
        # allocated only LoRA factors and the value head.
        frozen = {p.data_ptr(): p.numel() * p.element_size() for p in trainer.policy.parameters() if not p.requires_grad}
        assert trainer.ref_policy is None
        assert set(frozen) == set(base) and sum(frozen.values()) == base_bytes, "a base weight was copied"
        extra = mem() - mem_model
        trainable = sum(p.numel() for p in trainer.policy.parameters() if p.requires_grad)
        assert extra < 0.05 * base_bytes, extra
        shapes, rollouts = [], []  # (padded prompt, response) widths of each rollout; the last rollout
        rollout = trainer.rollout

        def recorded(step):
            ro = rollout(step)
            shapes.append((ro.prompt_ids.shape[1], ro.response_ids.shape[1]))
            n_img = [int(f.shape[:-1].numel()) for f in ro.features]  # image tokens (Mllama: cross-attention states)
            tiles = [int(it["pixel_values"].shape[0]) for it in ro.items] if family == "llava-next" else None
            rollouts[:] = [(ro, n_img, tiles)]
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
            trainer.release_decoder()  # a kept static decoder would sit in memory through the dynamic step
            trainer.cfg.cache = "dynamic"
            trainer.train_step(a.steps + 1)
            dyn = {"phase_s": dict(trainer.last_phase_seconds), "phase_peak_gb": phase_peaks[-3:]}
        peak = max([peak_before, *[p * 1e9 for p in phase_peaks]]) if cuda else 0
        peak_reserved = torch.cuda.max_memory_reserved() if cuda else 0
        ro, n_img, tiles = rollouts[-1]
        try:
            counter = count_forward(trainer, ro, mini)
            fwd_counted = a.ppo_epochs * float(counter.get_total_flops())
            fwd_recomputed = a.ppo_epochs * module_flops(counter, recomputed)
        except Exception as e:  # the timed figures stand without it
            print(f"FlopCounterMode failed ({type(e).__name__}: {e}); mfu_*_counted left out", flush=True)
            fwd_counted = fwd_recomputed = None

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
    res = {
        "family": family, "preset": a.preset, "build_s": round(t_build, 1),
        "params": base_bytes // next(model.parameters()).element_size(),
        "base_weight_gb": round(base_bytes / 1e9, 2), "trainable_params": trainable,
        "extra_after_trainer_gb": round(extra / 1e9, 3), "one_copy_of_base_weights": True,
        "batch_size": a.batch_size, "mini_batch_size": mini, "ppo_epochs": a.ppo_epochs,
        "new_tokens": a.new_tokens, "gradient_checkpointing": a.gradient_checkpointing,
        "recomputed_modules": recomputed, "prompt_tokens_padded": P,
        "response_tokens_padded": R, "cache": a.cache, "decode_cache": a.decode_cache, "static_cache": adapter.static_cache,
        "image_features_per_prompt": {"min": min(n_img), "max": max(n_img)},
        "tiles_per_image": None if tiles is None else {"min": min(tiles), "max": max(tiles)},
        "steps": steps, "step_s": round(sum(last.values()), 3),
        "generate_s": round(last["generate"], 3), "score_s": round(last["score"], 3), "learn_s": round(last["learn"], 3),
        "dynamic_cache_step_phase_s": dyn,
        "peak_gpu_gb": round(peak / 1e9, 2), "peak_reserved_gb": round(peak_reserved / 1e9, 2),
        "learn_tokens": tokens, "n_matmul_params_blocks": n_blocks,
        "learn_tflops_6n": round(flops_6n / last["learn"] / 1e12, 1),
        "learn_tflops_4n": round(flops_4n / last["learn"] / 1e12, 1),
        "mfu_6n": round(flops_6n / last["learn"] / H200_BF16_DENSE, 4),
        "mfu_4n_executed": round(flops_4n / last["learn"] / H200_BF16_DENSE, 4),
        "learn_forward_flops_counted": fwd_counted,
        # executed again in the backward by --family-recompute: hardware work, not model FLOPs
        "learn_recompute_flops_counted": fwd_recomputed,
        "mfu_6n_counted": None if fwd_counted is None else round(3 * fwd_counted / last["learn"] / H200_BF16_DENSE, 4),
        "mfu_4n_counted": None if fwd_counted is None else round(2 * fwd_counted / last["learn"] / H200_BF16_DENSE, 4),
    }
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="llava-1.5",
                    help=f"architecture(s), comma-separated, run one after the other: {', '.join(FAMILIES)}")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--mini-batch-size", type=int, default=None,
                    help=f"default per family: {', '.join(f'{k} {v}' for k, v in MINI_BATCH.items())}")
    ap.add_argument("--ppo-epochs", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="recompute activations in the backward pass (less memory, ~1/3 more learning compute)")
    ap.add_argument("--family-recompute", action="store_true",
                    help="recompute in the backward pass only the layers the family's adapter names "
                         "(recompute_in_backward; mllama: its 8 cross-attention layers; the others: none)")
    ap.add_argument("--steps", type=int, default=3, help="steps run; the first is a warm-up, the last is reported")
    ap.add_argument("--cache", choices=["auto", "dynamic", "static"], default="auto", help="rollout KV cache")
    ap.add_argument("--compare-dynamic", action="store_true", help="one more step with the dynamic cache")
    # release: the figures in docs/benchmarks.md (issue 19) were measured so; keep holds the cache
    # through scoring and learning (peak memory includes it).
    ap.add_argument("--decode-cache", choices=["release", "keep", "auto"], default="release",
                    help="align --decode-cache for the rollouts (default release, as the documented figures)")
    ap.add_argument("--preset", choices=["real", "narrow", "tiny"], default="real",
                    help="tiny: each family's small random model, to check the script on a CPU (figures meaningless); "
                         "narrow: the real architectures' builders with narrow widths and few layers (real image "
                         "geometry, tiles and token counts), to check the real path on a CPU")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", help="write the results here too (one object; with several families, a list)")
    a = ap.parse_args()
    families = [f.strip() for f in a.family.split(",") if f.strip()]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        ap.error(f"--family {','.join(bad)}: choose from {', '.join(FAMILIES)}")
    if a.steps < 2 and a.preset == "real":
        ap.error("--steps: at least 2 (the first is a warm-up)")

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    common = {"date": time.strftime("%Y-%m-%d"), "machine": torch.cuda.get_device_name() if cuda else "cpu",
              "torch": torch.__version__, "transformers": __import__("transformers").__version__,
              "peft": __import__("peft").__version__,
              "measured_bf16_matmul_tflops": round(matmul_rate(dev) / 1e12, 1) if cuda else None}
    results, failed = [], False
    for family in families:
        t = time.perf_counter()
        try:
            res = run_family(a, family)
        except Exception as e:  # one family's failure must not lose the others' figures
            failed = True
            res = {"family": family, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
        # The trainer and its patched methods form reference cycles: free this family's model
        # before the next one is built (and measured).
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            res["allocated_after_free_gb"] = round(torch.cuda.memory_allocated() / 1e9, 2)
        res = {**common, **res, "wall_s": round(time.perf_counter() - t, 1)}
        results.append(res)
        print(json.dumps(res, indent=2), flush=True)
        if a.json:  # after every family, so a later timeout keeps what finished
            with open(a.json, "w") as f:
                json.dump(results[0] if len(families) == 1 else results, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
