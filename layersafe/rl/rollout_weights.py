"""Rollouts decoded with the LoRA delta merged into a copy of the adapted weights (``--rollout-weights``).

Why: a decode step at batch 64 is latency-bound, and peft's LoRA path adds several small kernels
per adapted linear (input cast, A, B, scale, add; 224 adapted linears in a 7B LLaVA with LoRA on all
seven projections) to every step (docs/lppo.md, "Merged rollout weights"). Merged, each linear is
one matmul. The base weights are never modified (peft's
``merge``/``unmerge`` in bf16 would drift them by a rounding step per rollout): the merged weights
``W + s·B·A`` (eq. of LoRA, Hu et al. 2021) go into a separate buffer per layer, the layer's weight
points at it for the rollout and at the base weight again afterwards, and the adapter layers are
disabled meanwhile so the delta is not added twice.

Sampling from the merged weights is sampling from the policy up to the rounding of ``W + s·B·A`` to
the weights' dtype (exact in fp32 up to summation order). PPO's old log-probs are recomputed by the
training forward after the rollout anyway (rl/lppo.py), so the ratio and KL never mix the two paths.

The buffers keep their addresses across rollouts: a CUDA graph captured during a merged rollout
(models/decode.py) reads them, and each rollout rewrites them in place from the current LoRA weights.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def _lora_linears(peft_model) -> list:
    """The adapted linear layers of ``peft_model`` (peft's LoRA ``Linear`` wrappers), in module order."""
    from peft.tuners.lora import Linear

    return [m for m in peft_model.modules() if isinstance(m, Linear)]


class MergedRolloutWeights:
    """Merged weight buffers for the LoRA layers of one peft model, refreshed at every :meth:`active`."""

    def __init__(self, peft_model):
        self.peft = peft_model
        self.layers = _lora_linears(peft_model)
        self._bufs: list[torch.Tensor] | None = None

    def nbytes(self) -> int:
        """Memory the buffers take: one copy of every adapted base weight."""
        return sum(m.base_layer.weight.numel() * m.base_layer.weight.element_size() for m in self.layers)

    def mergeable(self) -> bool:
        """Plain LoRA on every layer, adapters enabled (a rollout run under ``disable_adapter``, e.g. of
        the base model, decodes the base weights and must not get the delta)."""
        return bool(self.layers) and all(
            not m.disable_adapters and not m.merged and not getattr(m, "lora_variant", {})
            and not getattr(m, "fan_in_fan_out", False) for m in self.layers)

    def release(self) -> None:
        """Free the buffers (a decoder captured on them must be freed first)."""
        self._bufs = None

    @contextmanager
    def active(self):
        """Inside: every adapted linear computes ``x (W + s·B·A)ᵀ`` with one matmul on the merged buffer."""
        if not self.mergeable():
            yield False
            return
        weights = [m.base_layer.weight for m in self.layers]
        if self._bufs is None:
            self._bufs = [torch.empty_like(w) for w in weights]
        originals = [w.data for w in weights]
        with torch.no_grad():
            for m, w, buf in zip(self.layers, weights, self._bufs):
                buf.copy_(w)
                for a in m.active_adapters:
                    if a in m.lora_A:
                        buf.add_(m.get_delta_weight(a))  # the sum in the delta's dtype (fp32 LoRA), one rounding
        try:
            for w, buf in zip(weights, self._bufs):
                w.data = buf
            with self.peft.disable_adapter():
                yield True
        finally:
            for w, orig in zip(weights, originals):
                w.data = orig
