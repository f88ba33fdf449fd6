"""A tiny randomly initialised LLaVA, built offline from configs of the real transformers classes.

It is what tests and the quick start run on when no real weights are available: a genuine
``LlavaForConditionalGeneration`` (CLIP vision tower + Llama LM) with its own small BPE tokenizer
and a ``LlavaProcessor`` carrying a LLaVA-1.5-style chat template, saved with ``save_pretrained``
so every code path (loading included) is the one real models take. Its answers are random text.
"""

from __future__ import annotations

import json
from pathlib import Path

# LLaVA-1.5's conversation format, as a chat template (single user turn: image, then text).
LLAVA15_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% elif message['role'] == 'assistant' %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}</s>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

TINY_MARKER = "layersafe_tiny_random"  # written into config.json so outputs can say what ran


def _corpus() -> list[str]:
    from ..data.builtin import advbench_goals

    text = [g for g, _ in advbench_goals()] + [t for _, t in advbench_goals()]
    text += [
        "I'm sorry, but I cannot help with that request.",
        "Sure, here is a short answer. The image shows a cat, a cup of coffee and a red rocket.",
        "USER: ASSISTANT: What is in this picture? Describe the colours and shapes.",
    ]
    return text


def build_tokenizer(vocab_size: int = 600, corpus: list[str] | None = None, initial_alphabet: list[str] | None = None):
    """A small Metaspace BPE tokenizer trained on ``corpus`` (default: AdvBench + a few lines),
    with LLaVA's special tokens; left padding for batched generation."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # Metaspace (not byte-level) so random generations decode to readable word pieces.
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        initial_alphabet=initial_alphabet or [],
        show_progress=False,
    )
    tok.train_from_iterator(corpus if corpus is not None else _corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    fast.padding_side = "left"
    return fast


def make_random_llava(
    *,
    seed: int = 0,
    vision_layers: int = 6,
    image_size: int = 32,
    patch_size: int = 8,
    text_layers: int = 2,
    vision_hidden: int = 32,
    vision_intermediate: int | None = None,
    vision_heads: int = 4,
    text_hidden: int = 64,
    text_intermediate: int | None = None,
    text_heads: int = 4,
    text_kv_heads: int = 2,
    vocab_size: int | None = None,
    initializer_range: float = 0.5,
    select_strategy: str = "default",
    chat_template: bool = True,
    dtype=None,
    device=None,
):
    """An in-memory random ``LlavaForConditionalGeneration`` and its ``LlavaProcessor``.

    Defaults give a tiny test model; the benchmarks pass LLaVA-1.5-7B sizes (CLIP ViT-L/14-336 +
    32-layer 4096-wide Llama) with ``device="cuda"`` to build real-cost models with random weights.
    ``vocab_size`` larger than the tokenizer pads the vocabulary with dummy tokens.
    """
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = build_tokenizer()
    if vocab_size and vocab_size > len(tokenizer):
        tokenizer.add_tokens([f"<x{i}>" for i in range(vocab_size - len(tokenizer))])
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    n_patches = (image_size // patch_size) ** 2
    vision = CLIPVisionConfig(
        hidden_size=vision_hidden, intermediate_size=vision_intermediate or 2 * vision_hidden,
        num_hidden_layers=vision_layers, num_attention_heads=vision_heads, image_size=image_size,
        patch_size=patch_size, projection_dim=vision_hidden, initializer_range=initializer_range,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=text_intermediate or 2 * text_hidden,
        num_hidden_layers=text_layers, num_attention_heads=text_heads, num_key_value_heads=text_kv_heads,
        max_position_embeddings=4096, initializer_range=initializer_range, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=image_token_id,
        vision_feature_layer=-2, vision_feature_select_strategy=select_strategy,
        image_seq_length=n_patches + (select_strategy == "full"),
    )
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    if dtype is not None:  # build directly in the target dtype (a 7B model in fp32 is 28 GB)
        torch.set_default_dtype(dtype)
    try:
        with torch.device(device or "cpu"):
            model = LlavaForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(old)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=patch_size,
        vision_feature_select_strategy=select_strategy,
        num_additional_image_tokens=1,
        chat_template=LLAVA15_CHAT_TEMPLATE if chat_template else None,
    )
    return model, processor


# LLaVA-1.5-7B's architecture (llava-hf/llava-1.5-7b-hf config): for GPU benchmarks at real cost.
LLAVA15_7B = dict(
    vision_layers=24, image_size=336, patch_size=14, vision_hidden=1024, vision_intermediate=4096,
    vision_heads=16, text_layers=32, text_hidden=4096, text_intermediate=11008, text_heads=32,
    text_kv_heads=32, vocab_size=32064, initializer_range=0.02,
)


def build_tiny_llava(out_dir: str | Path, *, seed: int = 0, **kw) -> Path:
    """Build a random LLaVA (see :func:`make_random_llava`), save it with ``save_pretrained``
    and return the folder."""
    out_dir = Path(out_dir)
    model, processor = make_random_llava(seed=seed, **kw)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    # Mark the checkpoint so run.json and the console can say it is random.
    cfg_path = out_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg[TINY_MARKER] = {"seed": seed, "note": "random LLaVA built by layersafe; outputs are random text"}
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return out_dir


def default_tiny_path(seed: int = 0) -> Path:
    """Cached location of the embedded default model; built on first use.

    It is built in a temp folder and renamed into place, so an existing folder is complete."""
    import os
    import shutil

    root = Path(os.environ.get("LAYERSAFE_CACHE", Path.home() / ".cache" / "layersafe"))
    path = root / f"tiny-random-llava-s{seed}"
    if not (path / "config.json").is_file():
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # left by a build that was killed
        build_tiny_llava(tmp, seed=seed)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    return path
