"""Tiny randomly initialised checkpoints of the five families beside LLaVA-1.5, built offline:
``tiny-random-llava-next``, ``tiny-random-mllama``, ``tiny-random-qwen2.5-vl``,
``tiny-random-gemma3`` and ``tiny-random-idefics3`` (docs/families.md).

Each is the REAL transformers class built from a small config (initializer_range=0.5 so encoder
layers give visibly different logits, docs/design.md §4), with the family's own processor and image
processor around layersafe's offline BPE tokenizer plus the family's special tokens and a chat
template, saved with ``save_pretrained`` so it loads through ``layersafe.models.load_vlm`` as a
downloaded model would. Like ``tiny-random-llava`` they are the offline pipeline check of a
family: their answers are random text. The family tests build them too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
from pathlib import Path
from unittest import mock

import torch

from .tiny import TINY_MARKER, build_tokenizer

INIT = 0.5
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, initializer_range=INIT, max_position_embeddings=4096)

# llava-v1.6-mistral style: "[INST] <image>\n{text} [/INST]"
LLAVA_NEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}[INST] "
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %} [/INST]"
    "{% else %}{{ message['content'][0]['text'] }}</s>{% endif %}"
    "{% endfor %}"
)

# Llama 3.2 Vision Instruct style (single user turn: image, then text).
MLLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|image|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)




def _save(model, processor, out_dir: Path, family: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    cfg_path = out_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg[TINY_MARKER] = {"family": family, "note": f"random {family} built by layersafe; outputs are random text"}
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return out_dir


def build_tiny_llava_next(out_dir, *, seed: int = 0, vision_layers: int = 6) -> Path:
    """CLIP (16 px tiles, 8 px patches -> 2x2 patches a tile) + Llama; anyres grids 1x3, 3x1 and 2x2,
    so wide, tall and square images get different tile counts (base tile + 3 or 4)."""
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration,
                              LlavaNextImageProcessor, LlavaNextProcessor)

    tok = build_tokenizer()
    tile, patch = 16, 8
    pinpoints = [[16, 48], [48, 16], [32, 32]]
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=vision_layers,
                              num_attention_heads=4, image_size=tile, patch_size=patch, projection_dim=32,
                              initializer_range=INIT)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       initializer_range=INIT, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id)
    config = LlavaNextConfig(vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
                             image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
                             vision_feature_select_strategy="default", image_seq_length=(tile // patch) ** 2)
    config.pad_token_id = tok.pad_token_id
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(config).eval()
    with torch.no_grad():  # stock init gives image_newline std 1/sqrt(64): make it matter as much as features
        model.model.image_newline.normal_(0.0, 1.0)
    gc = model.generation_config
    gc.pad_token_id, gc.eos_token_id, gc.bos_token_id = tok.pad_token_id, tok.eos_token_id, tok.bos_token_id
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": tile}, crop_size={"height": tile, "width": tile},
                                              image_grid_pinpoints=pinpoints)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tok, patch_size=patch,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=LLAVA_NEXT_CHAT_TEMPLATE)
    return _save(model, processor, Path(out_dir), "llava_next")




MLLAMA_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>", "<|image|>", "<|python_tag|>", "<|finetune_right_pad_id|>"]


def build_tiny_mllama(out_dir, *, seed: int = 0, local_layers: int = 6, global_layers: int = 2,
                      taps=(1, 3)) -> Path:
    """Mllama vision (16 px tiles, 8 px patches -> 4+1 tokens a tile, padded to 8; up to 4 tiles;
    ``local_layers`` local + ``global_layers`` gated global blocks; projector taps ``taps`` as in
    ``intermediate_layers_indices``) + a 4-layer text model with cross-attention at layers 1 and 3.
    Every gate that random init sets to 0 is set to 1 so each part of the vision path matters."""
    from transformers import (MllamaConfig, MllamaForConditionalGeneration, MllamaImageProcessor,
                              MllamaProcessor, MllamaTextConfig, MllamaVisionConfig)

    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": MLLAMA_SPECIALS})
    tok.bos_token, tok.eos_token, tok.pad_token = "<|begin_of_text|>", "<|eot_id|>", "<|finetune_right_pad_id|>"
    tok.image_token = "<|image|>"
    ids = {t: tok.convert_tokens_to_ids(t) for t in MLLAMA_SPECIALS}
    tile, patch, hidden = 16, 8, 32
    vision = MllamaVisionConfig(hidden_size=hidden, intermediate_size=64, num_hidden_layers=local_layers,
                                num_global_layers=global_layers, attention_heads=4, image_size=tile,
                                patch_size=patch, max_num_tiles=4, intermediate_layers_indices=list(taps),
                                vision_output_dim=hidden * (1 + len(taps)), initializer_range=INIT)
    text = MllamaTextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                            cross_attention_layers=[1, 3], num_attention_heads=4, num_key_value_heads=2,
                            initializer_range=INIT, bos_token_id=ids["<|begin_of_text|>"],
                            eos_token_id=ids["<|eot_id|>"], pad_token_id=ids["<|finetune_right_pad_id|>"])
    config = MllamaConfig(vision_config=vision, text_config=text, image_token_index=ids["<|image|>"])
    torch.manual_seed(seed)
    model = MllamaForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gate" in name and not p.any():
                p.fill_(1.0)
    gc = model.generation_config
    gc.bos_token_id, gc.pad_token_id = ids["<|begin_of_text|>"], ids["<|finetune_right_pad_id|>"]
    gc.eos_token_id = [ids["<|end_of_text|>"], ids["<|eot_id|>"]]  # Llama 3 stops on either
    image_processor = MllamaImageProcessor(size={"height": tile, "width": tile}, max_image_tiles=4)
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tok, chat_template=MLLAMA_CHAT_TEMPLATE)
    return _save(model, processor, Path(out_dir), "mllama")




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


def _save_with_ids(model, processor, tok, out_dir, family: str) -> Path:
    gc = model.generation_config
    gc.pad_token_id, gc.eos_token_id, gc.bos_token_id = tok.pad_token_id, tok.eos_token_id, tok.bos_token_id
    return _save(model, processor, Path(out_dir), family)


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
    """Let a Qwen2.5-VL processor be built and loaded without torchvision. Used only for the tiny
    built-in model (and the tests): a real checkpoint still needs torchvision.

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
        return _save_with_ids(model, processor, tok, out_dir, "qwen2_5_vl")


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
    return _save_with_ids(model, processor, tok, out_dir, "gemma3")


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
    return _save_with_ids(model, processor, tok, out_dir, "idefics3")


# --- built-in aliases --------------------------------------------------------------------------
BUILDERS = {
    "tiny-random-llava-next": build_tiny_llava_next,
    "tiny-random-mllama": build_tiny_mllama,
    "tiny-random-qwen2.5-vl": build_tiny_qwen2_5_vl,
    "tiny-random-gemma3": build_tiny_gemma3,
    "tiny-random-idefics3": build_tiny_idefics3,
}


def tiny_family_path(alias: str, seed: int = 0) -> Path:
    """Cached folder of a family's tiny model, built on first use (in a temp folder renamed into
    place, so an existing folder is complete), like ``tiny.default_tiny_path``."""
    root = Path(os.environ.get("LAYERSAFE_CACHE", Path.home() / ".cache" / "layersafe"))
    path = root / f"{alias}-s{seed}"
    if not (path / "config.json").is_file():
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # left by a build that was killed
        BUILDERS[alias](tmp, seed=seed)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    return path
