"""Idefics3 / SmolVLM adapter (``Idefics3ForConditionalGeneration``).

The processor splits an image into crops (a grid of tiles plus a downscaled global view); the
SigLIP-style encoder runs on every crop and the stock path feeds
``connector(post_layernorm(h_L))`` (pixel shuffle + linear) per crop. ICET-l feeds
``connector(post_layernorm(h_l))``: the same final norm for every layer because the connector
was trained on normalised states (docs/design.md §4). Token count per crop does not depend on l.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .base import Encoded
from .inject import SiglipAdapter, run_vision
from .registry import register


@dataclass
class CropEncoded(Encoded):
    """``hidden[l]`` is ``[all crops, T, D]``; image i owns ``crops[i]`` consecutive crops."""

    crops: list[int]


@register
class Idefics3Adapter(SiglipAdapter):
    family = "idefics3"
    architectures = ("Idefics3ForConditionalGeneration",)
    model_types = ("idefics3",)
    chat_fallback = "User:<image>{prompt}<end_of_utterance>\nAssistant:"
    connector_desc = "the connector per image crop (pixel shuffle + linear)"
    language_model_name = "text_model"

    def __init__(self, model, processor, **kw):
        super().__init__(model, processor, **kw)
        self._setup(model.model.vision_model, model.model.connector, model.config.image_token_id)
        self.patch_size = model.config.vision_config.patch_size

    def tokenize(self, input_text: str, image) -> dict:
        enc = self.processor(images=[image], text=[input_text], return_tensors="pt")
        return {"input_ids": enc["input_ids"][0], "pixel_values": enc["pixel_values"][0],
                "pixel_attention_mask": enc["pixel_attention_mask"][0]}

    @torch.no_grad()
    def encode(self, items, layers: Sequence[int]) -> CropEncoded:
        """One encoder pass over every crop of every image (crops padded to a common size, as the
        processor pads a batch; the padding is masked)."""
        h = max(it["pixel_values"].shape[-2] for it in items)
        w = max(it["pixel_values"].shape[-1] for it in items)

        def pad(x):
            return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))

        pixel_values = torch.cat([pad(it["pixel_values"]) for it in items])
        pixel_mask = torch.cat([pad(it["pixel_attention_mask"]) for it in items])
        # A patch is real if any of its pixels is (as the stock get_image_features computes it).
        ps = self.patch_size
        patch_mask = pixel_mask.unfold(1, ps, ps).unfold(2, ps, ps).sum(dim=(-1, -2)) > 0
        hs = run_vision(self.vision, pixel_values, patch_attention_mask=patch_mask)  # run_vision moves it
        return CropEncoded(hidden={l: hs[l] for l in layers}, n_images=len(items),
                           crops=[it["pixel_values"].shape[0] for it in items])

    @torch.no_grad()
    def features(self, enc: CropEncoded, layer: int, index) -> list[torch.Tensor]:
        starts = [sum(enc.crops[:i]) for i in range(len(enc.crops))]
        rows = [r for i in index for r in range(starts[i], starts[i] + enc.crops[i])]
        out = self.project(enc.hidden[layer][rows])
        return [f.reshape(-1, f.shape[-1]) for f in out.split([enc.crops[i] for i in index])]
