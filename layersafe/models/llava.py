"""LLaVA family adapter (``LlavaForConditionalGeneration``: LLaVA-1.5, BakLLaVA, ...).

ICET-l (paper §3): feed ``P(e_l)`` — the projector applied to encoder hidden state l, with the
model's own feature-select strategy ("default" drops CLS) — in place of ``P(e_default)``.
Features are injected through ``inputs_embeds`` (image-token positions replaced with
``masked_scatter``), which gives the same tokens as ``generate(..., vision_feature_layer=l)``
on every transformers version we support (docs/design.md §4).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import torch

from .base import (CACHE_MODES, Encoded, VLMAdapter, decode_generations, embeds_at_image_tokens, eos_ids, left_pad,
                   row_seeds, shared_prefix, stock_sampling)
from .decode import StaticDecoder
from .registry import register

LLAVA15_FALLBACK = "USER: <image>\n{prompt} ASSISTANT:"


@register
class LlavaAdapter(VLMAdapter):
    family = "llava"
    chat_fallback = LLAVA15_FALLBACK  # checkpoints without a chat template (models/templates.py)
    architectures = ("LlavaForConditionalGeneration",)
    model_types = ("llava",)
    static_cache = True  # generate(inputs_embeds=...) over a plain decoder: models/decode.py applies
    prefix_reuse = True

    def __init__(self, model, processor, **kw):
        super().__init__(model, processor, **kw)
        self._static = None  # StaticDecoder, built on first use (it keeps its cache and CUDA graph)
        cfg = model.config
        self.vision_tower = model.model.vision_tower
        self.projector = model.model.multi_modal_projector
        self.select_strategy = cfg.vision_feature_select_strategy
        self.image_token_id = cfg.image_token_id
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:
            # Llama tokenizers often ship without a pad token; any id works under the mask.
            self.tokenizer.pad_token = self.tokenizer.eos_token
        layer = cfg.vision_feature_layer
        if not isinstance(layer, int):
            from ..errors import UserError

            raise UserError(
                f"{self.name}: vision_feature_layer={layer!r} concatenates several layers; "
                "layersafe scans models that use a single encoder layer"
            )
        self._default_layer = layer if layer >= 0 else self.num_layers + 1 + layer

    @property
    def num_layers(self) -> int:
        return int(self.model.config.vision_config.num_hidden_layers)

    @property
    def default_layer(self) -> int:
        return self._default_layer

    def tokenize(self, input_text: str, image) -> dict:
        enc = self.processor(images=[image], text=[input_text], return_tensors="pt")
        return {"input_ids": enc["input_ids"][0], "pixel_values": enc["pixel_values"][0]}

    @torch.no_grad()
    def encode(self, items, layers: Sequence[int]) -> Encoded:
        """Run the vision tower once with all hidden states; keep the requested layers."""
        pixel_values = torch.stack([it["pixel_values"] for it in items])
        dtype = next(self.vision_tower.parameters()).dtype
        dev = next(self.vision_tower.parameters()).device
        out = self.vision_tower(pixel_values.to(dev, dtype), output_hidden_states=True, return_dict=True)
        hs = out.hidden_states
        hidden = {}
        for layer in layers:
            h = hs[layer]
            hidden[layer] = h[:, 1:] if self.select_strategy == "default" else h
        return Encoded(hidden=hidden, n_images=pixel_values.shape[0])

    @torch.no_grad()
    def features(self, enc: Encoded, layer: int, index) -> list[torch.Tensor]:
        # Same projector for every layer (paper: ICET-l feeds P(e_l)); one call per batch.
        return list(self.projector(enc.hidden[layer][list(index)]))

    @torch.no_grad()
    def generate(self, items, features, *, max_new_tokens, do_sample=False, temperature=1.0, top_p=1.0,
                 cache="dynamic", sample_seeds=None, prefix_keys=None, cache_prompt_len=None):
        """``sample_seeds`` (one int per item, with ``do_sample``): each row's draw depends only on its
        seed, not on the rest of the batch (untruncated softmax(logits/T) only). ``prefix_keys`` (one
        hashable per item, e.g. (image, layer)): items with equal keys have the same image features,
        so with the static cache their common prompt start is computed once (docs/design.md §4.4).
        ``cache_prompt_len``: the static cache is sized for prompts at least this long
        (``StaticDecoder.generate``)."""
        tok = self.tokenizer
        embed = self.model.get_input_embeddings()
        dev = embed.weight.device
        seeds = row_seeds(self.model, len(items), do_sample, sample_seeds, top_p, dev)
        static = self._use_static(cache, do_sample, top_p, dev)
        split = shared_prefix(items, prefix_keys, self.image_token_id) if static and prefix_keys else None
        if split is not None and len({tuple(features[i].shape) for i in split[1]}) > 1:
            split = None  # prefixes of different lengths (LLaVA-NeXT tiles): the batch runs whole
        if split is not None:
            self._ensure_static()
            embeds, attn, prefix = self._prefix_inputs(items, features, *split)
            out = self._static.generate(embeds, attn, prefix=prefix, max_new_tokens=max_new_tokens,
                                        eos_ids=eos_ids(self.model), temperature=temperature if do_sample else None,
                                        seeds=seeds, cache_prompt_len=cache_prompt_len)
            return decode_generations(self.model, tok, out)
        ids, attn = left_pad([it["input_ids"] for it in items], tok.pad_token_id)
        ids, attn = ids.to(dev), attn.to(dev)
        embeds = self._embed_with_features(ids, features)
        if static:
            self._ensure_static()
            out = self._static.generate(embeds, attn, max_new_tokens=max_new_tokens, eos_ids=eos_ids(self.model),
                                        temperature=temperature if do_sample else None, seeds=seeds,
                                        cache_prompt_len=cache_prompt_len)
            return decode_generations(self.model, tok, out)
        out = self.model.generate(inputs_embeds=embeds, attention_mask=attn,
                                  **stock_sampling(self.model, tok, seeds, max_new_tokens=max_new_tokens,
                                                   do_sample=do_sample, temperature=temperature, top_p=top_p))
        return decode_generations(self.model, tok, out)

    def _ensure_static(self) -> None:
        if self._static is None:
            self._static = StaticDecoder(self.model, fuse=getattr(self, "fuse_kernels", False))

    def _embed_with_features(self, ids: torch.Tensor, features) -> torch.Tensor:
        """Token embeddings of ``ids`` with ``features`` (one tensor per row, in row order) at the
        image-token positions, as LLaVA's own forward scatters its image features."""
        embeds = self.model.get_input_embeddings()(ids)
        mask = (ids == self.image_token_id).unsqueeze(-1).expand_as(embeds)
        feats = torch.cat([f.reshape(-1, f.shape[-1]) for f in features]).to(embeds.device, embeds.dtype)
        if mask.sum() != feats.numel():
            raise RuntimeError(f"image tokens ({int(mask.sum()) // embeds.shape[-1]}) do not match features "
                               f"({feats.shape[0]}); processor and model config disagree")
        return embeds.masked_scatter(mask, feats)

    def _prefix_inputs(self, items, features, q: int, first: list[int], rows: list[int]):
        """StaticDecoder.generate's inputs with a shared prefix: the U prefixes (prompt start to the
        last image token, with the image features), each row's rest left-padded, and the mask."""
        embed = self.model.get_input_embeddings()
        dev = embed.weight.device
        pre = torch.stack([items[i]["input_ids"][:q] for i in first]).to(dev)
        pre_embeds = self._embed_with_features(pre, [features[i] for i in first])
        ids, attn = left_pad([it["input_ids"][q:] for it in items], self.tokenizer.pad_token_id)
        ids, attn = ids.to(dev), attn.to(dev)
        attn = torch.cat([attn.new_ones(len(items), q), attn], 1)
        return embed(ids), attn, (pre_embeds, torch.tensor(rows, dtype=torch.long, device=dev))

    def release_cache(self) -> None:
        self._static = None

    def holds_decoder(self) -> bool:
        return self._static is not None

    @contextmanager
    def train_inputs(self, model, items, prompt_ids, prompt_mask, response_ids, response_mask, features):
        """``inputs_embeds`` with the features at the prompt's image tokens, as generate() gets them."""
        yield embeds_at_image_tokens(model, self.image_token_id, prompt_ids, prompt_mask, response_ids,
                                     response_mask, features)

    def _use_static(self, cache, do_sample, top_p, dev) -> bool:
        """``auto``: the static-cache decoder on CUDA (where it is faster), stock generate elsewhere.
        It samples only from the untruncated softmax(logits/T), so top-k/top-p sampling stays stock."""
        if cache not in CACHE_MODES:
            raise ValueError(f"cache={cache!r}: use one of {CACHE_MODES}")
        if cache == "dynamic" or (cache == "auto" and dev.type != "cuda"):
            return False
        top_k = self.model.generation_config.top_k
        plain = not do_sample or (top_p >= 1.0 and not top_k)
        if plain and StaticDecoder.supports(self.model):
            return True
        if cache == "static":
            from ..errors import UserError

            raise UserError("the static cache decodes greedily or samples with top_k=0 and top_p=1, "
                            "with sdpa or eager attention; use the dynamic cache for this setting")
        return False

