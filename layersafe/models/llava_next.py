"""LLaVA-NeXT adapter (``LlavaNextForConditionalGeneration``: LLaVA-1.6 Mistral/Vicuna/34B, ...).

Anyres: each image becomes a base tile plus a grid of high-resolution tiles, all encoded by the
same CLIP tower. ICET-l is the stock pipeline with ``vision_feature_layer=l``: every tile's
hidden state l goes through the projector, then the tiles of each image are unpadded and packed
with ``image_newline`` by the model's own ``pack_image_features``. The tower runs once on all real
tiles of a batch; only projection and packing repeat per layer, and the image's token count does
not depend on l. Generation (``inputs_embeds`` + ``masked_scatter``) is LLaVA's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .base import Encoded
from .llava import LlavaAdapter
from .registry import register


@dataclass
class TiledEncoded(Encoded):
    """``hidden[l]`` is ``[total_tiles, T, D]``; image i owns ``tiles[i]`` consecutive rows."""

    tiles: list[int]
    image_sizes: torch.Tensor  # [n_images, 2] original (height, width), for unpadding


@register
class LlavaNextAdapter(LlavaAdapter):
    family = "llava_next"
    architectures = ("LlavaNextForConditionalGeneration",)
    model_types = ("llava_next",)

    def layer_meaning(self) -> str:
        return ("CLIP hidden_states index, the same on every anyres tile: 0 = patch embeddings, l = output of "
                "block l; layer l's tiles are projected and packed with image_newline as the stock model does "
                f"(= generate(vision_feature_layer=l)); default = config vision_feature_layer "
                f"({self.model.config.vision_feature_layer})")

    def tokenize(self, input_text: str, image) -> dict:
        enc = self.processor(images=[image], text=[input_text], return_tensors="pt")
        return {"input_ids": enc["input_ids"][0], "pixel_values": enc["pixel_values"][0],
                "image_sizes": enc["image_sizes"][0]}

    def _num_tiles(self, image_size) -> int:
        from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

        cfg = self.model.config
        return image_size_to_num_patches(image_size, cfg.image_grid_pinpoints, cfg.vision_config.image_size)

    @torch.no_grad()
    def encode(self, items, layers: Sequence[int]) -> TiledEncoded:
        """One tower pass over the real tiles of every image (processor padding tiles dropped)."""
        tiles = [self._num_tiles(it["image_sizes"]) for it in items]
        param = next(self.vision_tower.parameters())
        pixel_values = torch.cat([it["pixel_values"][:n] for it, n in zip(items, tiles)]).to(param.device, param.dtype)
        hs = self.vision_tower(pixel_values, output_hidden_states=True, return_dict=True).hidden_states
        skip = 1 if self.select_strategy == "default" else 0  # "default" drops CLS
        hidden = {layer: hs[layer][:, skip:] for layer in layers}
        sizes = torch.stack([it["image_sizes"] for it in items])
        return TiledEncoded(hidden=hidden, n_images=len(items), tiles=tiles, image_sizes=sizes)

    @torch.no_grad()
    def features(self, enc: TiledEncoded, layer: int, index) -> list[torch.Tensor]:
        starts = [0]
        for n in enc.tiles:
            starts.append(starts[-1] + n)
        index = list(index)
        h = torch.cat([enc.hidden[layer][starts[i]:starts[i + 1]] for i in index])
        per_image = torch.split(self.projector(h), [enc.tiles[i] for i in index])
        inner = self.model.model
        packed, _ = inner.pack_image_features(per_image, enc.image_sizes[index], self.select_strategy,
                                              image_newline=inner.image_newline)
        return list(packed)
