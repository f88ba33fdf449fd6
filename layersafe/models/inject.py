"""Feature injection shared by the adapters that generate through stock ``generate(input_ids=...)``
(Gemma 3, Idefics3, Qwen2.5-VL), and the SigLIP encoder helpers of Gemma 3 and Idefics3.

Instead of ``generate(inputs_embeds=...)`` (LLaVA's route), :class:`InjectingAdapter` runs stock
``generate`` without pixels and scatters the given features into the prefill's token embeddings
with a forward hook on the embedding layer (:func:`features_at_image_tokens`), so the model runs
its own text path (docs/design.md §4.1). :class:`SiglipAdapter` adds the SigLIP rule: ICET-l =
``connector(post_layernorm(h_l))``, default = the last block (docs/design.md §4.2).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from .base import VLMAdapter, check_cache_mode, decode_generations, left_pad, mask_positions, row_seeds, stock_sampling


def post_layernorm(vision_model) -> torch.nn.Module:
    """SigLIP's final LayerNorm: on the model in transformers 5.x, on ``.vision_model`` in 4.x."""
    ln = getattr(vision_model, "post_layernorm", None)
    return ln if ln is not None else vision_model.vision_model.post_layernorm


def run_vision(vision_model, pixel_values, **kw) -> tuple[torch.Tensor, ...]:
    """All hidden states (0 = embeddings, l = output of block l, before post_layernorm)."""
    p = next(vision_model.parameters())
    # Masks built beside CPU pixels (Idefics3's patch mask) go where the encoder is.
    kw = {k: v.to(p.device) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    out = vision_model(pixel_values=pixel_values.to(p.device, p.dtype), output_hidden_states=True,
                       return_dict=True, **kw)
    return out.hidden_states


@contextmanager
def features_at_image_tokens(embedding: torch.nn.Module, ids: torch.Tensor, image_token_id: int,
                             feats: torch.Tensor, prompt_width: int | None = None):
    """While active, the first call of ``embedding`` on ``ids`` (generate's prefill, or one
    training forward) returns the token embeddings with ``feats`` scattered over the image-token
    positions: exactly what the stock forward does with its own image features
    (``masked_scatter``), so the model runs its stock text path (masks, rope positions, token
    types) on ``input_ids``. Only the first ``prompt_width`` columns are searched for image tokens
    (a sampled image-token id in a response is an ordinary token). Yields a list that holds True
    once the features went in."""
    mask = ids == image_token_id
    if prompt_width is not None:
        mask[:, prompt_width:] = False
    mask = mask.unsqueeze(-1)
    if int(mask.sum()) * feats.shape[-1] != feats.numel():
        raise RuntimeError(f"image tokens ({int(mask.sum())}) do not match features ({feats.shape[0]}); "
                           "processor and model config disagree")
    done: list[bool] = []

    def hook(module, args, output):
        if done or output.shape[:2] != ids.shape:
            return None
        done.append(True)
        return output.masked_scatter(mask.expand_as(output), feats.to(output.device, output.dtype))

    handle = embedding.register_forward_hook(hook)
    try:
        yield done
    finally:
        handle.remove()


class InjectingAdapter(VLMAdapter):
    """Generation with given features in place of the stock image features: stock
    ``generate(input_ids, ...)`` without pixels, the features scattered into the prefill's token
    embeddings. Unlike ``generate(inputs_embeds=...)`` this works on every version for models
    whose 3-D rope needs ``input_ids`` (Qwen2.5-VL) or whose generate rejects ``inputs_embeds``
    (Gemma 3 on transformers 5.24). Subclasses set ``image_token_id`` and ``chat_fallback`` and
    may add family inputs in ``_generate_inputs``."""

    chat_fallback = "{prompt}"  # used when the processor has no chat template

    def __init__(self, model, processor, **kw):
        super().__init__(model, processor, **kw)
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token  # any id works under the mask

    def _generate_inputs(self, items, ids) -> dict:
        """Extra generate() inputs the family's stock forward needs (token types, grids, ...)."""
        return {}

    def _train_positions(self, ids, attn) -> dict:
        """Positions of a teacher-forced forward: 1-D from the mask, as generate() computes them
        for a left-padded batch (Qwen2.5-VL leaves them to the model: 3-D rope)."""
        return {"position_ids": mask_positions(attn)}

    @torch.no_grad()
    def generate(self, items, features, *, max_new_tokens, do_sample=False, temperature=1.0, top_p=1.0,
                 cache="dynamic", sample_seeds=None, cache_prompt_len=None):
        """``sample_seeds``: as LlavaAdapter.generate (a row's draw depends only on its seed).
        ``cache_prompt_len`` is ignored: no static-cache decoder here."""
        check_cache_mode(cache, self.family)
        tok = self.tokenizer
        embedding = self.model.get_input_embeddings()
        dev = embedding.weight.device
        ids, attn = left_pad([it["input_ids"] for it in items], tok.pad_token_id)
        ids, attn = ids.to(dev), attn.to(dev)
        feats = torch.cat([f.reshape(-1, f.shape[-1]) for f in features])
        seeds = row_seeds(self.model, len(items), do_sample, sample_seeds, top_p, dev)
        with features_at_image_tokens(embedding, ids, self.image_token_id, feats) as done:
            out = self.model.generate(input_ids=ids, attention_mask=attn, **self._generate_inputs(items, ids),
                                      **stock_sampling(self.model, tok, seeds, max_new_tokens=max_new_tokens,
                                                       do_sample=do_sample, temperature=temperature, top_p=top_p))
        if not done:
            raise RuntimeError(f"{self.name}: the image features were never injected (prefill not seen)")
        return decode_generations(self.model, tok, out[:, ids.shape[1]:])

    @contextmanager
    def train_inputs(self, model, items, prompt_ids, prompt_mask, response_ids, response_mask, features):
        """The stock forward on ``input_ids`` (+ the family inputs of ``_generate_inputs``, padded
        over the response columns with 0 = text), the features scattered into the prompt's
        image-token embeddings by the same hook as generation."""
        ids = torch.cat([prompt_ids, response_ids], 1)
        attn = torch.cat([prompt_mask, response_mask], 1)
        width = prompt_ids.shape[1]
        extra = {}
        for k, v in self._generate_inputs(items, prompt_ids).items():  # per-token ones padded to the prompt width
            if v.dim() == 2 and v.shape[1] == width:  # per-token inputs (token types)
                v = torch.cat([v, v.new_zeros(v.shape[0], ids.shape[1] - width)], 1)
            extra[k] = v
        feats = torch.cat([f.reshape(-1, f.shape[-1]) for f in features])
        with features_at_image_tokens(model.get_input_embeddings(), ids, self.image_token_id, feats, width) as done:
            yield {"input_ids": ids, "attention_mask": attn, **self._train_positions(ids, attn), **extra}
        if not done:
            raise RuntimeError(f"{self.name}: the image features were never injected in the training forward")


class SiglipAdapter(InjectingAdapter):
    """Families with a SigLIP encoder whose stock output is ``post_layernorm(h_last)``:
    ICET-l = ``connector(post_layernorm(h_l))``, default = the last block. Subclasses set
    ``vision``, ``connector``, ``image_token_id`` and describe the connector."""

    connector_desc = ""

    def _setup(self, vision, connector, image_token_id):
        self.vision, self.connector = vision, connector
        self.post_layernorm = post_layernorm(vision)
        self.image_token_id = image_token_id

    @property
    def num_layers(self) -> int:
        return int(self.model.config.vision_config.num_hidden_layers)

    @property
    def default_layer(self) -> int:
        return self.num_layers  # stock: last block + post_layernorm

    def layer_meaning(self) -> str:
        return (f"SigLIP hidden_states index: 0 = patch embeddings, l = output of block l (1..{self.num_layers}); "
                f"every layer goes through SigLIP's post_layernorm, then {self.connector_desc}; "
                f"default {self.default_layer} = stock")

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.connector(self.post_layernorm(hidden))
