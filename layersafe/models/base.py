"""The adapter interface every VLM family implements (docs/design.md §2 models/).

An adapter hides one family's plumbing behind five steps the scan engine needs:
build the prompt text, tokenise it with its image, encode a batch of images ONCE into the
encoder hidden states of every requested layer, project one layer's states into LM features,
and generate from those features.
"""

from __future__ import annotations

import copy

import typing
from contextlib import contextmanager
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
    stop_token: int | None = None  # the stop token that ended it (models with several EOS ids: Llama 3)


class VLMAdapter:
    """Base class. Layer numbering (docs/design.md §3): index into the encoder's ``hidden_states``;
    0 = patch embeddings, l = output of block l, ``num_layers`` = last block."""

    family: str = ""
    architectures: tuple[str, ...] = ()
    # Attribute of ``model.model`` that holds the language model: the only part that training
    # changes (LoRA targets match under it; full fine-tuning unfreezes it).
    language_model_name: str = "language_model"
    # Whether generate() can decode with the static-cache decoder (models/decode.py); the
    # others decode with stock generate, for the reason docs/families.md gives per family.
    static_cache: bool = False
    # Conversation template (models/templates.py): "hf" = the processor's chat template, else
    # ``chat_fallback`` (the family's format without a template); set with templates.set_template.
    template: str = "hf"
    system_prompt: str | None = None
    chat_fallback: str = "{prompt}"

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
        """The exact text given to the processor (recorded as ``input_text``): the conversation
        template in effect (``template``, ``system_prompt``; models/templates.py renders it)."""
        from .templates import render

        return render(self, text)

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
        cache_prompt_len: int | None = None,
    ) -> list[Generation]:
        """Generate for a batch: ``items[i]`` (from ``tokenize``) with ``features[i]`` (from
        ``features``) in place of its stock image features. Left padding, greedy by default.
        ``cache`` (one of ``CACHE_MODES``): families without a static path treat ``static`` as an
        error and ``auto`` as ``dynamic``. ``cache_prompt_len``: a static-cache decoder sizes its
        cache for prompts at least this long (families without one ignore it)."""
        raise NotImplementedError

    # generate() takes ``prefix_keys``: rows sharing image features compute their common prompt start once
    prefix_reuse = False

    def preprocessing_copy(self) -> "VLMAdapter":
        """A shallow copy with its own processor (and tokenizer) for ``build_prompt``/``tokenize`` in
        a background thread while this adapter generates: a fast tokenizer must not be used from two
        threads at once. It shares the model and holds no decoder (a released one stays freed)."""
        other = copy.copy(self)
        if hasattr(other, "_static"):
            other._static = None
        other.processor = copy.deepcopy(self.processor)
        if getattr(self, "tokenizer", None) is getattr(self.processor, "tokenizer", False):
            other.tokenizer = other.processor.tokenizer  # type: ignore[attr-defined]
        return other

    def release_cache(self) -> None:
        """Free memory kept between generate calls (the static KV cache and its CUDA graph)."""

    def holds_decoder(self) -> bool:
        """Whether a decoder (static KV cache, CUDA graph) is kept between generate calls now."""
        return False

    # --- training -------------------------------------------------------------------------
    def language_model(self, model=None) -> torch.nn.Module:
        return getattr((model if model is not None else self.model).model, self.language_model_name)

    def recompute_in_backward(self, model=None, enabled: bool = True) -> list[str]:
        """Turn activation recomputation on (or off) for the few modules of the VLM ``model``
        (default ``self.model``; peft injects LoRA in place, so the trainer's ``raw`` model) that
        hold most of this family's training activations for little compute: they keep only their
        inputs and rerun their forward in the backward pass. It acts only in training mode with
        gradients on (not in rollouts or reference passes). Returns those modules' names in
        ``model``; default: none (every family but Mllama)."""
        return []

    def require_recompute(self, model=None) -> list[str]:
        """``--family-recompute``: :meth:`recompute_in_backward`, or a one-line error for a family
        that has nothing to recompute (the flag would otherwise do nothing without saying so)."""
        names = self.recompute_in_backward(model)
        if not names:
            from ..errors import UserError

            raise UserError(f"--family-recompute: the {self.family or type(self).__name__} adapter has no layers to "
                            "recompute (only Llama 3.2 Vision has: its cross-attention layers); drop the flag")
        return names

    @contextmanager
    def train_inputs(self, model, items, prompt_ids, prompt_mask, response_ids, response_mask, features):
        """Inputs of one teacher-forced forward of ``model`` (this adapter's VLM, LoRA-wrapped or a
        frozen copy) over ``[left-padded prompt | right-padded response]``, with ``features[i]``
        (from ``features``) in place of row i's stock image features, as ``generate`` feeds them:
        yields the keyword arguments of ``model(**kw)``, so position P-1+t predicts response token
        t exactly as during generation. A context manager because some families inject through a
        hook that must be active during the forward. ``items`` are the rows' ``tokenize`` outputs."""
        raise NotImplementedError
        yield {}  # pragma: no cover


# --- helpers shared by the adapters' generate() ---------------------------------------------
def left_pad(seqs: Sequence[torch.Tensor], pad_value, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors of different lengths (dim 0) with LEFT padding, as batched generation needs
    (docs/design.md §4), to ``width`` (default: the longest). Returns ``(padded [B, T, ...],
    attention_mask [B, T])``."""
    width = max(len(x) for x in seqs) if width is None else width
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


def embeds_at_image_tokens(model, image_token_id: int, prompt_ids, prompt_mask, response_ids, response_mask,
                           features) -> dict:
    """LLaVA's training inputs: ``inputs_embeds`` for [left-padded prompt | right-padded response]
    with the features scattered into the prompt's image-token positions (never into the response:
    a sampled image-token id there is an ordinary embedding, as during generation), the attention
    mask and positions from the mask, as generate() computes them for left-padded batches."""
    ids = torch.cat([prompt_ids, response_ids], 1)
    attn = torch.cat([prompt_mask, response_mask], 1)
    embeds = model.get_input_embeddings()(ids)
    is_img = torch.zeros_like(ids, dtype=torch.bool)
    is_img[:, :prompt_ids.shape[1]] = prompt_ids == image_token_id
    feats = torch.cat([f.reshape(-1, f.shape[-1]) for f in features]).to(embeds.device, embeds.dtype)
    n_img = is_img.sum()
    if n_img.device.type == "cpu":
        if int(n_img) != feats.shape[0]:
            raise RuntimeError(f"image tokens ({int(n_img)}) do not match cached features ({feats.shape[0]})")
    else:  # checked on the device: a host sync here would drain the GPU at every training forward.
        # A backstop only (a failure is a sticky device assert): the rollout's generate already
        # checked these rows' image tokens against their features on the host.
        torch._assert_async(n_img == feats.shape[0], "image tokens do not match cached features")
    embeds = embeds.masked_scatter(is_img.unsqueeze(-1).expand_as(embeds), feats)
    return {"inputs_embeds": embeds, "attention_mask": attn, "position_ids": mask_positions(attn)}


def shared_prefix(items: Sequence[dict], keys: Sequence, image_token_id: int) -> tuple[int, list[int], list[int]] | None:
    """How a batch splits into shared prefixes (docs/design.md §4.4): ``(q, first, rows)`` where every
    item's first q tokens run to its last image token, ``first`` lists one item per distinct key and
    ``rows[b]`` is the position in ``first`` of item b's key. Items with equal keys must hold the same
    image features (the caller's promise: same image, same layer); their first q token ids are checked
    equal here. None when nothing is shared or the items do not split alike (then the batch runs whole)."""
    if len(keys) != len(items) or len(set(keys)) == len(items):
        return None
    ids = [it["input_ids"] for it in items]
    img = [torch.nonzero(x == image_token_id).flatten() for x in ids]
    if any(len(i) == 0 for i in img):
        return None
    q = int(img[0][-1]) + 1
    if any(int(i[-1]) + 1 != q or len(x) <= q for i, x in zip(img, ids)):
        return None
    first: list[int] = []
    where: dict = {}
    rows = []
    for b, k in enumerate(keys):
        if k not in where:
            where[k] = len(first)
            first.append(b)
        elif not torch.equal(ids[b][:q], ids[first[where[k]]][:q]):
            return None
        rows.append(where[k])
    return q, first, rows


def mask_positions(attn: torch.Tensor) -> torch.Tensor:
    """1-D positions of a left-padded batch, from its attention mask (as generate() computes them)."""
    return (attn.cumsum(-1) - 1).clamp(min=0)


class SeededGumbel:
    """Logits processor for stock ``generate`` (greedy): scores/T + the per-row seeded Gumbel
    noise of the static decoder, so both paths draw the same tokens from the same logits, and a
    row's draw depends only on its seed, not on the rest of the batch."""

    def __init__(self, seeds: torch.Tensor, temperature: float):
        self.seeds, self.inv_temp, self.n = seeds, 1.0 / temperature, 0

    def __call__(self, input_ids, scores):
        from .decode import seeded_gumbel

        noise = seeded_gumbel(self.seeds.to(scores.device), self.n, scores.shape[-1])
        self.n += 1
        return scores.float() * self.inv_temp + noise


def row_seeds(model, n: int, do_sample: bool, sample_seeds, top_p: float, device) -> torch.Tensor | None:
    """``sample_seeds`` (one int per row, with ``do_sample``) as a tensor; None without them. Only
    the untruncated softmax(logits/T) can be drawn per row (top_p=1, top_k=0)."""
    if not (do_sample and sample_seeds is not None):
        return None
    if len(sample_seeds) != n or top_p < 1.0 or model.generation_config.top_k:
        raise ValueError("sample_seeds: one seed per item, and only with top_p=1 and top_k=0")
    return torch.as_tensor(list(sample_seeds), dtype=torch.long, device=device)


def stock_sampling(model, tokenizer, seeds, *, max_new_tokens, do_sample, temperature, top_p) -> dict:
    """Keyword arguments of stock ``generate``: greedy, sampling, or (``seeds``, from
    :func:`row_seeds`) greedy over seeded Gumbel-perturbed logits/T = a seeded draw per row."""
    kw = generation_kwargs(tokenizer, max_new_tokens=max_new_tokens, do_sample=do_sample and seeds is None,
                           temperature=temperature, top_p=top_p)
    if seeds is not None:
        from transformers import LogitsProcessorList

        kw["logits_processor"] = LogitsProcessorList([SeededGumbel(seeds, temperature)])
    return kw


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
        toks, reason, stop = [], "length", None
        for t in row:
            if t in eos_ids:
                reason, stop = "stop", t
                break
            toks.append(t)
        results.append(Generation(tokens=toks, text=tokenizer.decode(toks, skip_special_tokens=True).strip(),
                                  finish_reason=reason, stop_token=stop))
    return results
