"""Llama Guard prefix reuse on CUDA (docs/judges.md, prefix=auto): the shared prefix's cache + each
row's rest gives the whole rows' next-token distribution with the GPU's attention kernels, in fp32
and in bf16. Run on the GPU machine: python3 -m pytest -m gpu tests/test_judges_llamaguard_gpu.py"""

from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.gpu


# bf16 at initializer_range 0.5 gives logits of ~100 whose one-ulp rounding flips near-tied
# probabilities (failed at 3e-2 on the H200); 0.2 keeps rows distinct with moderate logits.
@pytest.mark.parametrize("dtype,init,tol", [("float32", 0.5, 1e-4), ("bfloat16", 0.2, 5e-3)])
def test_prefix_reuse_on_cuda(dtype, init, tol):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from layersafe.judges.llamaguard import FirstTokenLogits

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=1000, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, initializer_range=init,
                      tie_word_embeddings=False, pad_token_id=0)
    model = LlamaForCausalLM(cfg).to("cuda", getattr(torch, dtype)).eval()
    rng = random.Random(0)
    prefix = [rng.randrange(1, 1000) for _ in range(250)]
    rows = [prefix + [rng.randrange(1, 1000) for _ in range(n)] for n in (1, 1, 7, 40, 63, 120, 121, 200)]
    full, reuse = FirstTokenLogits(model, 0, reuse=False), FirstTokenLogits(model, 0, reuse=True)
    assert reuse.plan(rows) == 250
    ref = torch.softmax(full(rows).float(), -1)
    for bs in (1, 3, 8):
        got = torch.cat([torch.softmax(reuse(rows[k:k + bs]).float(), -1) for k in range(0, len(rows), bs)])
        assert (got - ref).abs().max().item() < tol, bs
    assert (ref[2] - ref[5]).abs().max().item() > 10 * tol  # rows differ: the comparison can fail
