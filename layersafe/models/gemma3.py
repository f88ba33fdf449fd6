"""Gemma 3 adapter (``Gemma3ForConditionalGeneration``). The injection base it shares with the
Idefics3 and Qwen2.5-VL adapters is in :mod:`layersafe.models.inject`.

Gemma 3's image encoder is SigLIP. The stock path projects ``post_layernorm(h_L)`` (SigLIP's
final LayerNorm on the last block's output) with ``multi_modal_projector`` (avg-pool to
``mm_tokens_per_image`` + RMSNorm + linear). ICET-l feeds ``projector(post_layernorm(h_l))``:
the same final norm for every layer, because the projector was trained on normalised states
(docs/design.md §4). Default layer = the last block, which equals stock generate token for token.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .base import Encoded, left_pad
from .inject import SiglipAdapter, run_vision
from .registry import register


@register
class Gemma3Adapter(SiglipAdapter):
    family = "gemma3"
    architectures = ("Gemma3ForConditionalGeneration",)
    model_types = ("gemma3",)
    chat_fallback = "<start_of_turn>user\n<start_of_image>{prompt}<end_of_turn>\n<start_of_turn>model\n"

    def __init__(self, model, processor, **kw):
        super().__init__(model, processor, **kw)
        self._setup(model.model.vision_tower, model.model.multi_modal_projector, model.config.image_token_id)
        self.connector_desc = f"the projector (pool to {model.config.mm_tokens_per_image} tokens)"

    def tokenize(self, input_text: str, image) -> dict:
        enc = self.processor(images=[image], text=[input_text], return_tensors="pt")
        # token_type_ids mark image tokens: stock generate gives them bidirectional attention.
        return {"input_ids": enc["input_ids"][0], "pixel_values": enc["pixel_values"][0],
                "token_type_ids": enc["token_type_ids"][0]}

    @torch.no_grad()
    def encode(self, items, layers: Sequence[int]) -> Encoded:
        pixel_values = torch.stack([it["pixel_values"] for it in items])
        hs = run_vision(self.vision, pixel_values)
        return Encoded(hidden={l: hs[l] for l in layers}, n_images=pixel_values.shape[0])

    @torch.no_grad()
    def features(self, enc: Encoded, layer: int, index) -> list[torch.Tensor]:
        return list(self.project(enc.hidden[layer][list(index)]))

    def _generate_inputs(self, items, ids) -> dict:
        tt, _ = left_pad([it["token_type_ids"] for it in items], 0, ids.shape[1])
        return {"token_type_ids": tt.to(ids.device)}
