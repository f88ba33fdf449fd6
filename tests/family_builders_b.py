"""Offline tiny random Qwen2.5-VL, Gemma 3 and Idefics3 checkpoints for the family tests.

Each builder makes the REAL transformers class from a small config (initializer_range=0.5 so
layers give visibly different logits), a processor from the family's own processor and image
processor classes around layersafe's offline BPE tokenizer plus the family's special tokens,
and a chat template; it saves both with ``save_pretrained`` so tests load them through
``layersafe.models.load_vlm`` exactly as a downloaded model would be.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path
from unittest import mock

import torch

from layersafe.models.tiny import TINY_MARKER, build_tokenizer

INIT = 0.5
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, initializer_range=INIT, max_position_embeddings=4096)


def _tokenizer(special: list[str], named: dict[str, str] | None = None):
    """The offline BPE tokenizer plus the family's special tokens; ``named`` sets attributes such
    as ``image_token`` that the family's processor reads (as the real tokenizers carry them)."""
    from transformers import PreTrainedTokenizerFast

    base = build_tokenizer()
    base.add_special_tokens({"additional_special_tokens": special})
    tok = PreTrainedTokenizerFast(
        tokenizer_object=base.backend_tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", extra_special_tokens=named or {"image_token": "<image>"})
    tok.padding_side = "left"
    return tok


def _ids(tok) -> dict:
    return dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def _save(model, processor, tok, out_dir, family: str) -> Path:
    out_dir = Path(out_dir)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    cfg_path = out_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg[TINY_MARKER] = {"family": family, "note": "random weights built by layersafe tests"}
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return out_dir


def _template(user_open: str, image: str, user_close: str, assistant_open: str) -> str:
    """A single-turn chat template: ``user_open`` image text ``user_close`` ``assistant_open``.
    The families' real markers (``<|im_start|>``, newlines) are unknown to the tiny tokenizer and
    a random model just repeats a trailing <unk>, so the tests use plain words around the image."""
    return (
        "{% for message in messages %}{% if message['role'] == 'user' %}" + user_open
        + "{% for c in message['content'] %}{% if c['type'] == 'image' %}" + image
        + "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}" + user_close
        + "{% endif %}{% endfor %}{% if add_generation_prompt %}" + assistant_open + "{% endif %}"
    )


class NoVideo(dict):
    """Stands in for Qwen's video processor when torchvision is missing: saved as {}, loaded as
    itself (``qwen_processor_without_torchvision``)."""

    _auto_class = None

    @classmethod
    def from_pretrained(cls, *a, **k):
        return cls()


@contextlib.contextmanager
def qwen_processor_without_torchvision():
    """Let a Qwen2.5-VL processor be built and loaded without torchvision (test-only shim).

    transformers 5.x makes the processor's *video* processor mandatory, and that class needs
    torchvision, which the CPU test machines lack. Images never touch it, so with no torchvision
    the video slot holds a ``NoVideo``; with torchvision installed this does nothing.
    """
    from transformers import processing_utils as pu

    names = getattr(getattr(pu, "_LazyAutoProcessorMapping", None), "_MAPPING_NAMES", None)
    if importlib.util.find_spec("torchvision") is not None or names is None:
        yield
        return
    check = pu.ProcessorMixin.check_argument_for_proper_class

    def lenient(self, name, arg):
        return None if isinstance(arg, NoVideo) else check(self, name, arg)

    with mock.patch.dict(names, {"video_processor": (__name__, "NoVideo")}), \
            mock.patch.object(pu.ProcessorMixin, "check_argument_for_proper_class", lenient):
        yield


def _video_processor():
    if importlib.util.find_spec("torchvision") is None:
        return NoVideo()
    from transformers import Qwen2VLVideoProcessor

    return Qwen2VLVideoProcessor(patch_size=4, temporal_patch_size=2, merge_size=2)


def build_tiny_qwen2_5_vl(out_dir, *, seed: int = 0) -> Path:
    """Qwen2.5-VL: 4 vision blocks (1 and 3 full attention, 0 and 2 windowed), patch 4, merge 2,
    window 16 px (2x2 merged units), images resized to about 32x32 px (variable grids)."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor)

    tok = _tokenizer(["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
                     {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"})
    cid = tok.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config=dict(**TEXT, vocab_size=len(tok), rope_parameters={
            "rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0}, **_ids(tok)),
        vision_config=dict(depth=4, hidden_size=32, intermediate_size=64, num_heads=4, patch_size=4,
                           spatial_merge_size=2, temporal_patch_size=2, window_size=16, out_hidden_size=64,
                           fullatt_block_indexes=[1, 3], initializer_range=INIT),
        image_token_id=cid("<|image_pad|>"), video_token_id=cid("<|video_pad|>"),
        vision_start_token_id=cid("<|vision_start|>"), vision_end_token_id=cid("<|vision_end|>"), **_ids(tok),
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessor(
        patch_size=4, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 24 * 24, "longest_edge": 40 * 40})
    template = _template("USER: ", "<|vision_start|><|image_pad|><|vision_end|>", "", " ASSISTANT:")
    with qwen_processor_without_torchvision():
        processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, chat_template=template,
                                        video_processor=_video_processor())
        return _save(model, processor, tok, out_dir, "qwen2_5_vl")


def build_tiny_gemma3(out_dir, *, seed: int = 0) -> Path:
    """Gemma 3: SigLIP with 4 blocks on 32x32 px images, patch 4 (64 patches pooled to 16 soft
    tokens), a 2-layer Gemma 3 text model with sliding and full attention."""
    from transformers import (Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor,
                              Gemma3Processor)

    tok = _tokenizer(["<start_of_image>", "<end_of_image>", "<image_soft_token>"],
                     {"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                      "eoi_token": "<end_of_image>"})
    cid = tok.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=dict(**TEXT, vocab_size=len(tok), head_dim=16, sliding_window=64, query_pre_attn_scalar=16,
                         layer_types=["sliding_attention", "full_attention"], **_ids(tok)),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                           image_size=32, patch_size=4, vision_use_head=False),
        mm_tokens_per_image=16, boi_token_index=cid("<start_of_image>"), eoi_token_index=cid("<end_of_image>"),
        image_token_index=cid("<image_soft_token>"), initializer_range=INIT,
        # Tied + sqrt(d)-scaled embeddings make a random Gemma repeat its last input token.
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config).eval()
    with torch.no_grad():  # Gemma 3 initialises the projection to zeros: images would not matter
        model.model.multi_modal_projector.mm_input_projection_weight.normal_(std=INIT)
    image_processor = Gemma3ImageProcessor(size={"height": 32, "width": 32}, do_pan_and_scan=False)
    template = _template("USER: ", "<start_of_image>", "", " ASSISTANT:")
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tok, chat_template=template,
                                image_seq_length=16)
    return _save(model, processor, tok, out_dir, "gemma3")


def build_tiny_idefics3(out_dir, *, seed: int = 0) -> Path:
    """Idefics3/SmolVLM: SigLIP-style encoder with 4 blocks on 32x32 px crops, patch 4, pixel-shuffle
    scale 2 (64 patches -> 16 tokens per crop); image splitting on, so an image is several crops."""
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor,
                              Idefics3Processor)

    tok = _tokenizer(["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
                     + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)])
    cid = tok.convert_tokens_to_ids
    config = Idefics3Config(
        text_config=dict(model_type="llama", **TEXT, vocab_size=len(tok), **_ids(tok)),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                           image_size=32, patch_size=4, initializer_range=INIT),
        scale_factor=2, image_token_id=cid("<image>"), pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    image_processor = Idefics3ImageProcessor(size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
                                             do_image_splitting=True)
    template = _template("USER: ", "<image>", "<end_of_utterance>", " ASSISTANT:")
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok, chat_template=template,
                                  image_seq_len=16)
    return _save(model, processor, tok, out_dir, "idefics3")


# --- checks shared by the three family test files ----------------------------------------------
def stock_tokens(adapter, prompt: str, image_ref: str, max_new: int) -> list[int]:
    """Reference: the family's own generate on the processor's full output (pixels included)."""
    from layersafe.data.base import load_image

    inputs = adapter.processor(images=[load_image(image_ref)], text=[adapter.build_prompt(prompt)],
                               return_tensors="pt")
    out = adapter.model.generate(**inputs, max_new_tokens=max_new, do_sample=False,
                                 pad_token_id=adapter.tokenizer.pad_token_id)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    eos = adapter.tokenizer.eos_token_id
    return new[:new.index(eos)] if eos in new else new


def stock_image_features(adapter, image_ref: str) -> torch.Tensor:
    """The stock projected image features, ``[tokens, D]``."""
    from layersafe.data.base import load_image

    inputs = adapter.processor(images=[load_image(image_ref)], text=[adapter.build_prompt("x")],
                               return_tensors="pt")
    pixels = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "token_type_ids",
                                                             "mm_token_type_ids")}
    with torch.no_grad():
        out = adapter.model.model.get_image_features(**pixels)
    feats = getattr(out, "pooler_output", out)
    feats = torch.cat(list(feats)) if isinstance(feats, (list, tuple)) else feats
    return feats.reshape(-1, feats.shape[-1])


def check_scan(adapter, dataset, out_dir, *, max_new: int = 8, batch_size: int = 4) -> list[dict]:
    """Scan every layer; assert the one-encoder-pass-per-group contract, the default layer's
    equality with stock generate token for token, and that layers change the responses."""
    from layersafe.io import read_jsonl
    from layersafe.scan import ScanConfig, run_scan

    calls = []
    encode = adapter.encode
    with mock.patch.object(adapter, "encode", lambda items, layers: calls.append(len(items)) or encode(items, layers)):
        run_scan(ScanConfig(model="unused", dataset=str(dataset), layers="all", out=str(out_dir),
                            max_new_tokens=max_new, batch_size=batch_size, judges=[]),
                 adapter=adapter, progress=False, log=lambda m: None)
    rows = read_jsonl(out_dir / "generations.jsonl")
    n = adapter.num_layers
    assert len(rows) == 5 * (n + 1) and not any(r["error"] for r in rows)
    assert sorted({r["layer"] for r in rows}) == list(range(n + 1))
    assert calls == [batch_size, 5 - batch_size]  # each image encoded once for all layers
    tok = adapter.tokenizer
    default = [r for r in rows if r["layer"] == adapter.default_layer]
    assert len(default) == 5 and all(r["is_default_layer"] for r in default)
    for r in default:
        ref = stock_tokens(adapter, r["prompt"], r["image"], max_new)
        assert r["response"] == tok.decode(ref, skip_special_tokens=True).strip(), r["sample_id"]
        assert r["response_tokens"] == len(ref)
        assert r["finish_reason"] == ("length" if len(ref) == max_new else "stop")
    # Layers really differ: per sample, most layers give their own response.
    per_sample = {}
    for r in rows:
        per_sample.setdefault(r["sample_id"], set()).add(r["response"])
    assert sum(len(v) for v in per_sample.values()) >= 5 * n, per_sample
    return rows


def not_without_extras(adapter, images=("coffee", "rocket", "astronaut")) -> bool:
    """True if dropping the family inputs of ``_generate_inputs`` (token types, grids) changes
    the default-layer generations: those inputs matter, so passing them is needed."""
    from layersafe.data.base import load_image

    items = [adapter.tokenize(adapter.build_prompt("Describe this image."), load_image("skimage:" + n))
             for n in images]
    feats = adapter.features(adapter.encode(items, [adapter.default_layer]), adapter.default_layer,
                             range(len(items)))
    with_extras = [g.tokens for g in adapter.generate(items, feats, max_new_tokens=8)]
    with mock.patch.object(adapter, "_generate_inputs", lambda items, ids: {}):
        without = [g.tokens for g in adapter.generate(items, feats, max_new_tokens=8)]
    return with_extras != without
