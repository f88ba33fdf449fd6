"""The adapter interface every VLM family implements (docs/design.md §2 models/).

An adapter hides one family's plumbing behind five steps the scan engine needs:
build the prompt text, tokenise it with its image, encode a batch of images ONCE into the
encoder hidden states of every requested layer, project one layer's states into LM features,
and generate from those features.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..config import CacheMode

# KV cache of generate(): dynamic = stock generate; static = layersafe.models.decode (fixed-shape
# cache, CUDA-graph decode step); auto = static on CUDA where the adapter supports it.
CACHE_MODES: tuple[str, ...] = typing.get_args(CacheMode)  # one spelling: layersafe.config.CacheMode


@dataclass
class Encoded:
    """Encoder output for a batch of images: ``hidden[l]`` is layer l's states, ``[B, T, D]``."""

    hidden: dict[int, torch.Tensor]
    n_images: int


@dataclass
class Generation:
    tokens: list[int]  # generated ids, EOS and padding removed
    text: str
    finish_reason: str  # "stop" (EOS) or "length"


class VLMAdapter:
    """Base class. Layer numbering (docs/design.md §3): index into the encoder's ``hidden_states``;
    0 = patch embeddings, l = output of block l, ``num_layers`` = last block."""

    family: str = ""
    architectures: tuple[str, ...] = ()

    def __init__(self, model, processor, *, name: str, device: torch.device):
        self.model = model
        self.processor = processor
        self.name = name
        self.device = device

    # --- identity -------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        raise NotImplementedError

    @property
    def default_layer(self) -> int:
        raise NotImplementedError

    def layer_meaning(self) -> str:
        return "0 = patch embeddings, l = output of encoder block l"

    # --- steps ----------------------------------------------------------------------------
    def build_prompt(self, text: str) -> str:
        """The exact text given to the processor (recorded as ``input_text``)."""
        raise NotImplementedError

    def tokenize(self, input_text: str, image) -> dict[str, Any]:
        """One sample -> ``{"input_ids": 1-D LongTensor, "pixel_values": tensor, ...}``; any
        family-specific inputs (image sizes, grids, token types) go in the same dict."""
        raise NotImplementedError

    def encode(self, items: list[dict], layers: Sequence[int]) -> Encoded:
        """Run the image encoder ONCE for the images of ``items`` (outputs of ``tokenize``),
        keeping the hidden states of ``layers``."""
        raise NotImplementedError

    def features(self, enc: Encoded, layer: int, index: Sequence[int]) -> list[torch.Tensor]:
        """Projected LM features of layer ``layer`` for the images ``index`` of ``enc``: ``P(e_l)``."""
        raise NotImplementedError

    def generate(
        self, items: list[dict], features: list[torch.Tensor], *, max_new_tokens: int,
        do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, cache: str = "dynamic",
    ) -> list[Generation]:
        """Generate for a batch: ``items[i]`` (from ``tokenize``) with ``features[i]`` (from
        ``features``) in place of its stock image features. Left padding, greedy by default.
        ``cache`` (one of ``CACHE_MODES``): families without a static path treat ``static`` as an
        error and ``auto`` as ``dynamic``."""
        raise NotImplementedError

    def release_cache(self) -> None:
        """Free memory kept between generate calls (the static KV cache and its CUDA graph)."""


# --- helpers shared by the adapters' generate() ---------------------------------------------
def left_pad(seqs: Sequence[torch.Tensor], pad_value) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors of different lengths (dim 0) with LEFT padding, as batched generation needs
    (docs/design.md §4). Returns ``(padded [B, T, ...], attention_mask [B, T])``."""
    width = max(len(x) for x in seqs)
    out = torch.full((len(seqs), width, *seqs[0].shape[1:]), pad_value, dtype=seqs[0].dtype)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, x in enumerate(seqs):
        out[i, width - len(x):] = x
        attn[i, width - len(x):] = 1
    return out, attn


def right_pad(seqs: Sequence, pad_value) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists/tensors -> ``(ids [B, T], mask [B, T])`` with RIGHT padding (token t of every
    row at column t, as responses are scored); at least one column, so empty rows still stack."""
    width = max(1, max(len(x) for x in seqs))
    out = torch.full((len(seqs), width), pad_value, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, x in enumerate(seqs):
        out[i, :len(x)] = torch.as_tensor(x, dtype=torch.long)
        mask[i, :len(x)] = 1
    return out, mask


def generation_kwargs(tokenizer, *, max_new_tokens, do_sample, temperature, top_p) -> dict:
    kw = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=tokenizer.pad_token_id)
    if do_sample:
        kw.update(temperature=temperature, top_p=top_p)
    else:  # silence warnings from sampling knobs in generation_config
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw


def check_cache_mode(cache: str, family: str) -> None:
    """For adapters that only decode with stock generate (dynamic cache)."""
    if cache not in CACHE_MODES:
        raise ValueError(f"cache={cache!r}: use one of {CACHE_MODES}")
    if cache == "static":
        from ..errors import UserError

        raise UserError(f"the static-cache decoder is implemented for the LLaVA families, not {family}; use --cache auto or dynamic")


def eos_ids(model) -> list[int]:
    eos = model.generation_config.eos_token_id
    return [] if eos is None else list(eos) if isinstance(eos, (list, tuple)) else [eos]


def decode_generations(model, tokenizer, rows: torch.Tensor) -> list[Generation]:
    """Cut each generated row at its first stop token (any of generation_config's EOS ids)."""
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [tokenizer.eos_token_id])
    results = []
    for row in rows.tolist():
        toks, reason = [], "length"
        for t in row:
            if t in eos_ids:
                reason = "stop"
                break
            toks.append(t)
        results.append(Generation(tokens=toks, text=tokenizer.decode(toks, skip_special_tokens=True).strip(),
                                  finish_reason=reason))
    return results
