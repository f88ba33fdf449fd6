"""Llama Guard prefix reuse on CUDA (docs/judges.md, prefix=auto): the shared prefix's cache + each
row's rest gives the whole rows' next-token distribution with the GPU's attention kernels, in fp32
and in bf16. Run on the GPU machine: python3 -m pytest -m gpu tests/test_judges_llamaguard_gpu.py"""

from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.gpu


def _model_and_rows(init):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=1000, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, initializer_range=init,
                      tie_word_embeddings=False, pad_token_id=0)
    model = LlamaForCausalLM(cfg).eval()
    rng = random.Random(0)
    prefix = [rng.randrange(1, 1000) for _ in range(250)]
    rows = [prefix + [rng.randrange(1, 1000) for _ in range(n)] for n in (1, 1, 7, 40, 63, 120, 121, 200)]
    return model, rows


def _probs(model, rows, reuse: bool, bs: int):
    import torch

    from layersafe.judges.llamaguard import FirstTokenLogits

    f = FirstTokenLogits(model, 0, reuse=reuse)
    if reuse:
        assert f.plan(rows) == 250
    return torch.cat([torch.softmax(f(rows[k:k + bs]).float(), -1) for k in range(0, len(rows), bs)])


def test_prefix_reuse_on_cuda_fp32():
    model, rows = _model_and_rows(0.5)
    model = model.to("cuda")
    ref = _probs(model, rows, False, len(rows))
    for bs in (1, 3, 8):
        diff = (_probs(model, rows, True, bs) - ref).abs().max().item()
        assert diff < 1e-4, (bs, diff)
    assert (ref[2] - ref[5]).abs().max().item() > 0.1  # rows differ: the comparison can fail


def test_prefix_reuse_on_cuda_bf16_adds_no_error():
    """In bf16 the two paths round differently (one bf16 ulp of a large logit moves a near-tied
    probability a lot: a fixed bound failed on the H200), so the check is relative: against the
    same model in fp32, prefix reuse in bf16 is no further off than whole rows in bf16."""
    import copy

    import torch

    model, rows = _model_and_rows(0.2)
    ref32 = _probs(model.to("cuda"), rows, False, len(rows))
    half = copy.deepcopy(model).to(torch.bfloat16)
    whole = (_probs(half, rows, False, len(rows)) - ref32).abs().max().item()
    for bs in (1, 3, 8):
        err = (_probs(half, rows, True, bs) - ref32).abs().max().item()
        assert err <= 2 * whole + 1e-3, (bs, err, whole)
    assert (ref32[2] - ref32[5]).abs().max().item() > 0.05
