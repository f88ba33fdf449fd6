"""``--batch-size auto``: the scan's batch size chosen once from free GPU memory (docs/design.md §4.4).

The static-cache decoder allocates its KV cache for the whole batch up front: B × L slots of
``2 × text layers × kv heads × head dim × dtype bytes`` each (0.5 MiB for LLaVA-1.5-7B in bf16),
L = longest prompt + max new tokens rounded up to ``decode.LEN_BUCKET``. Larger batches decode
faster per row (H200, LLaVA-1.5-7B: 39.7 ms per (sample, layer) at 64, 36.6 at 128), so ``auto``
takes the largest candidate whose cache plus a per-row activation allowance fits in a fraction of
the memory free after loading. Elsewhere (CPU, the dynamic cache) it is the old default, 8.
"""

from __future__ import annotations

CANDIDATES = (256, 128, 64, 32, 16, 8, 4, 2, 1)  # below 8 only when 8 would not fit either
FALLBACK = 8  # CPU, dynamic cache, other devices: the fixed default
MEMORY_FRACTION = 0.6  # the rest: encoder features of a group, CUDA-graph pools, fragmentation


def slot_bytes(n_layers: int, kv_heads: int, head_dim: int, dtype_bytes: int) -> int:
    """Bytes of one KV-cache slot of one row: a key and a value per layer."""
    return 2 * n_layers * kv_heads * head_dim * dtype_bytes


def row_bytes(slots: int, slot: int, hidden: int, intermediate: int, dtype_bytes: int) -> int:
    """One row's share: its ``slots`` cache slots plus a prefill activation allowance of
    ``slots × (4 × hidden + 2 × intermediate)`` values (hidden states, q/k/v/o, MLP gate and up)."""
    return slots * (slot + (4 * hidden + 2 * intermediate) * dtype_bytes)


def pick_batch_size(free_bytes: int, per_row_bytes: int, pairs: int, *, fraction: float = MEMORY_FRACTION) -> int:
    """The largest of :data:`CANDIDATES` whose rows fit in ``fraction × free_bytes``, capped at
    ``pairs`` (the scan's (sample, layer) pairs: a bigger batch would only be padding)."""
    budget = fraction * free_bytes
    best = next((b for b in CANDIDATES if b * per_row_bytes <= budget), CANDIDATES[-1])
    return max(1, min(best, pairs))


def cache_slots(longest_prompt: int, max_new_tokens: int, bucket: int) -> int:
    """The static cache length the decoder allocates for this prompt length (``decode.generate``)."""
    return -(-(longest_prompt + max_new_tokens) // bucket) * bucket


def text_sizes(config) -> dict:
    """Sizes of a model config's text decoder that the KV cache and activations scale with."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    return {"n_layers": text.num_hidden_layers, "kv_heads": getattr(text, "num_key_value_heads", None) or heads,
            "head_dim": getattr(text, "head_dim", None) or text.hidden_size // heads, "hidden": text.hidden_size,
            "intermediate": getattr(text, "intermediate_size", None) or 4 * text.hidden_size}


def auto_batch_size(adapter, longest: int, *, max_new_tokens: int, pairs: int, static: bool) -> int:
    """The thin device wrapper: ``static`` (the static-cache decoder will run, on CUDA) picks from
    ``torch.cuda.mem_get_info`` on the model's device (plus the caching allocator's unused blocks)
    and ``longest``, the prompt tokens of the dataset's longest prompt (0: unknown); anything else gets :data:`FALLBACK`, as ``--batch-size 8``."""
    if not static or longest <= 0:
        return FALLBACK
    import torch

    from ..models.decode import LEN_BUCKET

    param = next(adapter.model.parameters())
    t = text_sizes(adapter.model.config)
    nbytes = param.element_size()
    slots = cache_slots(longest, max_new_tokens, LEN_BUCKET)
    per_row = row_bytes(slots, slot_bytes(t["n_layers"], t["kv_heads"], t["head_dim"], nbytes), t["hidden"],
                        t["intermediate"], nbytes)
    try:
        free, _ = torch.cuda.mem_get_info(param.device)
        # blocks torch's caching allocator keeps but no tensor uses are free to this process too
        free += torch.cuda.memory_reserved(param.device) - torch.cuda.memory_allocated(param.device)
    except (RuntimeError, AssertionError):  # no answer from the driver: the fixed default, on every rank
        return FALLBACK
    return pick_batch_size(free, per_row, pairs)


def resolve_batch_size(adapter, samples, pairs: int, *, cache: str, max_new_tokens: int, do_sample: bool = False,
                       top_p: float = 1.0) -> int:
    """``auto`` for a loaded ``adapter`` and the scan's ``samples``: the static-cache decoder will run
    when the family has one (``_use_static``) and says yes on CUDA for these settings. The cache
    length is the longest prompt's text tokens (every prompt tokenised, no images) plus the most image
    tokens of the 8 longest prompts tokenised with their images (image token counts vary with the
    image in some families; an unreadable image is skipped: its rows fail later, with their reason). A decoder kept from an earlier scan is released first, so
    its cache counts as free (``layersafe paper`` scans its sets with one adapter)."""
    from ..data.base import load_image

    use_static = getattr(adapter, "_use_static", None)
    dev = getattr(adapter, "device", None)
    on_cuda = getattr(dev, "type", None) == "cuda"
    static = bool(use_static and on_cuda and use_static(cache, do_sample, top_p, dev))
    longest = 0
    if static:
        adapter.release_cache()
        tok = getattr(adapter, "tokenizer", None) or adapter.processor.tokenizer
        text = {s.id: len(tok(adapter.build_prompt(s.prompt), add_special_tokens=False)["input_ids"]) for s in samples}
        image_tokens = None
        for s in sorted(samples, key=lambda s: text[s.id])[-8:]:
            try:
                item = adapter.tokenize(adapter.build_prompt(s.prompt), load_image(s.image))
            except Exception:
                continue
            image_tokens = max(image_tokens or 0, int(item["input_ids"].shape[-1]) - text[s.id])
        if image_tokens is not None:  # the longest text with the most image tokens seen: an upper estimate
            longest = max(text.values()) + image_tokens
    return auto_batch_size(adapter, longest, max_new_tokens=max_new_tokens, pairs=pairs, static=static)
