"""Qwen2.5-VL adapter (``Qwen2_5_VLForConditionalGeneration``).

The vision transformer works on a window-permuted token order: patch embeddings are grouped
into merge units (2x2 patches) and reordered window by window before block 1; the stock path
then applies the patch merger to the last block's output and undoes the order,
``merger(h_L)[argsort(window_index)]``. ICET-l feeds ``merger(h_l)[argsort(window_index)]``,
with ``h_0`` the (permuted) input of block 1 (docs/design.md §3-4). The merger's RMSNorm is part of
the merger, so no extra norm is needed. Default layer = the last block = stock.

The language model uses 3-D rotary positions computed from ``input_ids`` and
``image_grid_thw``; generate() therefore passes both alongside ``inputs_embeds`` so that
transformers computes the same positions as for stock ``generate(pixel_values=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .base import Encoded, left_pad
from .inject import InjectingAdapter
from .registry import register


@dataclass
class PatchEncoded(Encoded):
    """``hidden[l]`` is ``[all patches, D]`` in natural (un-windowed) order; image i owns
    ``patches[i]`` consecutive rows."""

    patches: list[int]


def window_index(visual, grid_thw: torch.Tensor) -> torch.Tensor:
    """The merge-unit order the vision blocks see (a method in transformers 4.x, a function in 5.x)."""
    if hasattr(visual, "get_window_index"):
        return visual.get_window_index(grid_thw)[0]
    from transformers.vision_utils import get_vision_window_index

    cfg = visual.config
    return get_vision_window_index(grid_thw, cfg.spatial_merge_size, cfg.window_size, cfg.patch_size)[0]


@register
class Qwen2_5_VLAdapter(InjectingAdapter):
    family = "qwen2_5_vl"
    architectures = ("Qwen2_5_VLForConditionalGeneration",)
    model_types = ("qwen2_5_vl",)
    chat_fallback = ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{prompt}<|im_end|>\n"
                     "<|im_start|>assistant\n")

    def __init__(self, model, processor, **kw):
        super().__init__(model, processor, **kw)
        self.visual = model.model.visual
        self.image_token_id = model.config.image_token_id
        self.unit = model.config.vision_config.spatial_merge_size ** 2

    @property
    def num_layers(self) -> int:
        return int(self.model.config.vision_config.depth)

    @property
    def default_layer(self) -> int:
        return self.num_layers  # stock: merger on the last block's output

    def layer_meaning(self) -> str:
        full = list(self.model.config.vision_config.fullatt_block_indexes)
        return (f"0 = patch embeddings, l = output of vision block l (1..{self.num_layers}; blocks "
                f"{[b + 1 for b in full]} use full attention, the others windowed); each layer goes through "
                f"the patch merger (RMSNorm + MLP, 2x2 patches -> 1 token) in image order; "
                f"default {self.default_layer} = stock")

    def tokenize(self, input_text: str, image) -> dict:
        enc = self.processor(images=[image], text=[input_text], return_tensors="pt")
        item = {"input_ids": enc["input_ids"][0], "pixel_values": enc["pixel_values"],
                "image_grid_thw": enc["image_grid_thw"][0]}
        if "mm_token_type_ids" in enc:  # transformers 5.x locates image tokens with these
            item["mm_token_type_ids"] = enc["mm_token_type_ids"][0]
        return item

    @torch.no_grad()
    def encode(self, items, layers: Sequence[int]) -> PatchEncoded:
        """One vision pass for all images; block inputs/outputs are caught with hooks (the stock
        forward returns only the merged last layer)."""
        p = next(self.visual.parameters())
        pixel_values = torch.cat([it["pixel_values"] for it in items]).to(p.device, p.dtype)
        grid = torch.stack([it["image_grid_thw"] for it in items]).to(p.device)
        caught: dict[int, torch.Tensor] = {}

        def keep(layer):
            def hook(module, args, kwargs, output=None):
                h = output if layer else (args[0] if args else kwargs["hidden_states"])
                caught[layer] = h[0] if isinstance(h, tuple) else h
            return hook

        blocks = self.visual.blocks
        handles = [blocks[0].register_forward_pre_hook(keep(0), with_kwargs=True) if l == 0
                   else blocks[l - 1].register_forward_hook(keep(l), with_kwargs=True) for l in set(layers)]
        try:
            self.visual(pixel_values, grid_thw=grid)
        finally:
            for h in handles:
                h.remove()
        # Undo the window order once here; the merger works per merge unit, so
        # merger(natural) == merger(h_l)[argsort(window_index)].
        rev = torch.argsort(window_index(self.visual, grid)).to(p.device)
        hidden = {}
        for l in layers:
            h = caught[l]
            hidden[l] = h.reshape(-1, self.unit, h.shape[-1])[rev].reshape(-1, h.shape[-1])
        return PatchEncoded(hidden=hidden, n_images=len(items), patches=[int(g.prod()) for g in grid])

    @torch.no_grad()
    def features(self, enc: PatchEncoded, layer: int, index) -> list[torch.Tensor]:
        chunks = enc.hidden[layer].split(enc.patches)
        merged = self.visual.merger(torch.cat([chunks[i] for i in index]))
        return list(merged.split([enc.patches[i] // self.unit for i in index]))

    def _train_positions(self, ids, attn) -> dict:
        return {}  # the model computes its 3-D rope positions from input_ids, grid and mask, as in generate

    def _generate_inputs(self, items, ids) -> dict:
        # Stock generate computes 3-D rope positions from input_ids + image_grid_thw (+ token
        # types in 5.x): the injected path gets the same inputs, minus pixel_values.
        extra = {"image_grid_thw": torch.stack([it["image_grid_thw"] for it in items]).to(ids.device)}
        if all("mm_token_type_ids" in it for it in items):
            extra["mm_token_type_ids"] = left_pad([it["mm_token_type_ids"] for it in items], 0, ids.shape[1])[0].to(ids.device)
        return extra
