"""Llama 3.2 Vision adapter (``MllamaForConditionalGeneration``).

The vision encoder has a *local* stack (32 blocks in the real model) run per tile, then
``layernorm_post`` → post-tile positional embedding → a gated *global* stack (8 blocks) over all
tiles of the image. The projector input is the global output concatenated with local taps
(``intermediate_layers_indices``). The language model reads the projected states through
cross-attention, not as tokens.

Layer l (docs/design.md §3 numbering over the LOCAL stack: 0 = input to local block 1, l = output of
local block l) is the early exit "stop the local stack after block l, then run the rest of the
encoder unchanged": h_l → layernorm_post → post-tile embedding → global stack; every tap deeper
than l takes h_l (the blocks it would read do not run). At l = num_layers this is exactly the
stock encoder, so the default layer is the top. The local stack runs once per image for all
layers; the (shorter) global stack runs once per layer. docs/families.md gives the reasoning.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

import torch

from .base import (Encoded, VLMAdapter, check_cache_mode, decode_generations, left_pad, mask_positions, row_seeds,
                   stock_sampling)
from .registry import register


@dataclass
class MllamaEncoded(Encoded):
    """``hidden[l]``: local layer l, ``[n_images, tiles * padded_patches, D]`` as the stock encoder
    holds it; plus what the global stack needs."""

    aspect_ratio_ids: torch.Tensor  # [n_images, 1]
    attention_mask: torch.Tensor  # the stock tile mask, [n_images, 1, S, S]
    num_tiles: int


class _Captured(Exception):
    """Raised by the hook that grabs the local stack's input, so the stock forward stops there."""


@contextmanager
def _drop_states_after_prefill(model):
    """Pass injected ``cross_attention_states`` to the prefill step only. Stock generate forwards
    every model kwarg at every step, and the cross-attention layers would append the vision keys to
    the cache again each step; once the cache holds them, the layers read them from the cache (as
    stock generate does when it drops ``pixel_values`` after prefill)."""
    original = model.prepare_inputs_for_generation

    @functools.wraps(original)  # generate validates kwargs against this signature
    def prepare(*args, **kwargs):
        inputs = original(*args, **kwargs)
        cache = inputs.get("cache", inputs.get("past_key_values"))  # renamed in transformers 5.24
        if cache is not None and cache.get_seq_length() > 0:
            inputs["cross_attention_states"] = None
        return inputs

    model.prepare_inputs_for_generation = prepare
    try:
        yield
    finally:
        del model.prepare_inputs_for_generation


@register
class MllamaAdapter(VLMAdapter):
    family = "mllama"
    chat_fallback = "<|image|>{prompt}"  # base (non-instruct) checkpoints; the processor adds BOS
    architectures = ("MllamaForConditionalGeneration",)
    model_types = ("mllama",)

    def __init__(self, model, processor, **kw):
        super().__init__(model, processor, **kw)
        self.vision = model.model.vision_model
        self.projector = model.model.multi_modal_projector
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:  # any id works under the attention mask
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # The <|image|> token is an ordinary text token here: image features reach the LM only
        # through cross-attention, never at token positions.
        self.image_token_id = model.config.image_token_index
        n = self.num_layers
        self._taps = [i % n + 1 for i in self.vision.intermediate_layers_indices]  # in our numbering

    @property
    def num_layers(self) -> int:
        return int(self.model.config.vision_config.num_hidden_layers)

    @property
    def default_layer(self) -> int:
        return self.num_layers  # the stock model uses the whole local stack

    def layer_meaning(self) -> str:
        vc = self.model.config.vision_config
        return (f"local encoder stack ({vc.num_hidden_layers} blocks; the {vc.num_global_layers} global blocks always "
                f"run): 0 = tile patch embeddings, l = output of local block l, then layernorm_post, post-tile "
                f"embedding and the global stack; projector taps deeper than l (stock taps: local layers "
                f"{self._taps}) take layer l; default {self.num_layers} = stock")

    def tokenize(self, input_text: str, image) -> dict:
        enc = self.processor(images=[image], text=[input_text], return_tensors="pt")
        return {k: enc[k][0] for k in ("input_ids", "pixel_values", "aspect_ratio_ids", "aspect_ratio_mask",
                                       "cross_attention_mask")}

    @torch.no_grad()
    def _local_input(self, pixel_values, aspect_ratio_ids, aspect_ratio_mask):
        """The local stack's input and tile mask, computed by the stock forward (patch, tile and
        position embeddings, layernorm_pre, padding), which is stopped right there."""
        got = {}

        def grab(module, args, kwargs):
            got["h"] = args[0] if args else kwargs.get("hidden_states", kwargs.get("hidden_state"))
            got["mask"] = kwargs["attention_mask"] if "attention_mask" in kwargs else args[1]
            raise _Captured

        handle = self.vision.transformer.register_forward_pre_hook(grab, with_kwargs=True)
        try:
            self.vision(pixel_values=pixel_values, aspect_ratio_ids=aspect_ratio_ids,
                        aspect_ratio_mask=aspect_ratio_mask)
        except _Captured:
            pass
        finally:
            handle.remove()
        return got["h"], got["mask"]

    @torch.no_grad()
    def encode(self, items, layers: Sequence[int]) -> MllamaEncoded:
        param = next(self.vision.parameters())
        pv = torch.stack([it["pixel_values"] for it in items]).to(param.device, param.dtype)
        ar_ids = torch.stack([it["aspect_ratio_ids"] for it in items]).to(param.device)
        ar_mask = torch.stack([it["aspect_ratio_mask"] for it in items]).to(param.device)
        h0, mask = self._local_input(pv, ar_ids, ar_mask)
        # Per-block outputs (transformers 4.57-5.24), so stock tap i = states[i] is our layer i + 1.
        states = self.vision.transformer(h0, attention_mask=mask).hidden_states
        hs = (h0, *states)
        top = max(layers)
        keep = set(layers) | {t for t in self._taps if t <= top}
        return MllamaEncoded(hidden={l: hs[l] for l in keep}, n_images=len(items),
                             aspect_ratio_ids=ar_ids.reshape(len(items), -1), attention_mask=mask,
                             num_tiles=pv.shape[2])

    @torch.no_grad()
    def vision_output(self, enc: MllamaEncoded, layer: int, index) -> torch.Tensor:
        """The encoder output when exiting the local stack at ``layer``: ``[n, tiles, patches,
        vision_output_dim]``, what ``MllamaVisionModel`` returns (per image) at the top layer."""
        vm, idx = self.vision, list(index)
        h = enc.hidden[layer][idx]
        n, seq, dim = h.shape
        tiles = enc.num_tiles
        x = vm.layernorm_post(h).reshape(n, tiles, seq // tiles, dim)
        x = vm.post_tile_positional_embedding(x, enc.aspect_ratio_ids[idx]).reshape(n, seq, dim)
        x = vm.global_transformer(x, attention_mask=enc.attention_mask[idx])[0]
        taps = torch.stack([enc.hidden[min(t, layer)][idx] for t in self._taps], dim=-1)
        keep = vm.num_patches  # drop the padding patches added for the 8-multiple
        x = x.reshape(n, tiles, seq // tiles, dim)[:, :, :keep]
        taps = taps.reshape(n, tiles, seq // tiles, -1)[:, :, :keep]
        return torch.cat([x, taps], dim=-1)

    @torch.no_grad()
    def features(self, enc: MllamaEncoded, layer: int, index) -> list[torch.Tensor]:
        """Per image: projected cross-attention states ``[tiles, patches, text_hidden]``."""
        return list(self.projector(self.vision_output(enc, layer, index)))

    def _cross_attention(self, items, features, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked cross-attention states and the left-padded cross-attention mask, ``width``
        columns (padding rows attend to no tile; stock masks them out of cross-attention)."""
        dev = self.model.get_input_embeddings().weight.device
        xmask, _ = left_pad([it["cross_attention_mask"] for it in items], 0, width)
        states = torch.cat(features).to(dev, self.projector.weight.dtype)  # [batch * tiles, patches, H]
        return states, xmask.to(dev)

    @torch.no_grad()
    def generate(self, items, features, *, max_new_tokens, do_sample=False, temperature=1.0, top_p=1.0,
                 cache="dynamic", sample_seeds=None, cache_prompt_len=None):
        """``sample_seeds``: as LlavaAdapter.generate (a row's draw depends only on its seed).
        ``cache_prompt_len`` is ignored: no static-cache decoder here."""
        check_cache_mode(cache, self.family)
        tok = self.tokenizer
        dev = self.model.get_input_embeddings().weight.device
        ids, attn = left_pad([it["input_ids"] for it in items], tok.pad_token_id)
        states, xmask = self._cross_attention(items, features, ids.shape[1])
        seeds = row_seeds(self.model, len(items), do_sample, sample_seeds, top_p, dev)
        gen_kwargs = stock_sampling(self.model, tok, seeds, max_new_tokens=max_new_tokens, do_sample=do_sample,
                                    temperature=temperature, top_p=top_p)
        with _drop_states_after_prefill(self.model):
            out = self.model.generate(input_ids=ids.to(dev), attention_mask=attn.to(dev),
                                      cross_attention_mask=xmask, cross_attention_states=states, **gen_kwargs)
        return decode_generations(self.model, tok, out[:, ids.shape[1]:])

    def recompute_in_backward(self, model=None, enabled: bool = True) -> list[str]:
        """Checkpoint the cross-attention decoder layers only (8 of 40 in the 11B model): each holds
        its rows' keys and values over every image state (4 tiles x 1,601 per row), their RMS-norm
        intermediates and LoRA inputs, most of the learning phase's activation memory at a small
        share of its FLOPs; the self-attention layers keep theirs. transformers' per-layer switch
        (``GradientCheckpointingLayer``: on in training mode only), non-reentrant
        ``torch.utils.checkpoint``, which replays the forward under the same autocast and RNG state."""
        from torch.utils.checkpoint import checkpoint
        from transformers.models.mllama.modeling_mllama import MllamaCrossAttentionDecoderLayer

        prefix = f"model.{self.language_model_name}."
        names = []
        for name, module in self.language_model(model).named_modules():
            if isinstance(module, MllamaCrossAttentionDecoderLayer):
                module.gradient_checkpointing = enabled
                module._gradient_checkpointing_func = functools.partial(checkpoint, use_reentrant=False)
                names.append(prefix + name)
        return names

    @contextmanager
    def train_inputs(self, model, items, prompt_ids, prompt_mask, response_ids, response_mask, features):
        """Token ids, the projected states as ``cross_attention_states`` and the cross-attention
        mask, whose last prompt row is repeated over the response (as generate extends it step by
        step); positions from the mask."""
        ids = torch.cat([prompt_ids, response_ids], 1)
        attn = torch.cat([prompt_mask, response_mask], 1)
        states, xmask = self._cross_attention(items, features, prompt_ids.shape[1])
        xmask = torch.cat([xmask, xmask[:, -1:].expand(-1, response_ids.shape[1], *xmask.shape[2:])], 1)
        yield {"input_ids": ids, "attention_mask": attn, "position_ids": mask_positions(attn),
               "cross_attention_states": states, "cross_attention_mask": xmask}
