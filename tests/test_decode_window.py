"""Decode attention over the live cache slots only (``DECODE_WINDOW``, issue 21): the same greedy
tokens as stock ``generate`` and as the whole-cache step, while the attention (prefill and decode)
really sees fewer slots; on a GPU (``pytest -m gpu``) the same through the captured graphs, in fp32."""

import copy

import pytest
import torch

from layersafe.models import decode
from layersafe.models.decode import StaticDecoder

torch.set_num_threads(1)  # 2 shared cores


def _embeds(adapter, device="cpu"):
    from test_scan_static_cache import batch_embeds

    emb, attn = batch_embeds(adapter, ["Hi", "Write a long story about a dragon please", "What?"], 3)
    return emb.to(device), attn.to(device)


def _stock(model, emb, attn, n):
    # generate fills a None eos_token_id back in from the model's own generation config, so a row
    # would stop at EOS while StaticDecoder (given no eos_ids) runs on: clear it there for the call
    gc = copy.deepcopy(model.generation_config)
    gc.update(eos_token_id=None, max_new_tokens=n, do_sample=False, pad_token_id=0)
    saved, model.generation_config.eos_token_id = model.generation_config.eos_token_id, None
    try:
        return model.generate(inputs_embeds=emb, attention_mask=attn, generation_config=gc).tolist()
    finally:
        model.generation_config.eos_token_id = saved


def test_windows_cover_each_step():
    # P = 615, N = 128, cache 768: windows 640 and 704, then 768 (the whole cache) from slot 704 on
    assert StaticDecoder._windows(615, 128, 768, 64) == [640, 704]
    assert StaticDecoder._windows(615, 128, 1024, 64) == [640, 704, 768]  # a reused longer cache
    assert StaticDecoder._windows(615, 128, 768, 0) == []
    assert StaticDecoder._windows(10, 1, 64, 8) == [16]


@torch.no_grad()
def test_windowed_tokens_equal_generate_and_whole_cache(tiny_adapter, monkeypatch):
    model = tiny_adapter.model
    emb, attn = _embeds(tiny_adapter)
    P, N = emb.shape[1], 60
    seen, prefill = [], []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, *a, **kw):
        if q.shape[-2] < P:  # decode steps (grouped-query packing may fold heads into q's length)
            seen.append(k.shape[-2])
        else:
            prefill.append(k.shape[-2])
        return real_sdpa(q, k, v, *a, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    monkeypatch.setattr(decode, "DECODE_WINDOW", 8)  # many window changes within 60 tokens
    win = StaticDecoder(model).generate(emb, attn, max_new_tokens=N).tolist()
    windowed_reads, prefill_reads = list(seen), list(prefill)
    monkeypatch.setattr(decode, "DECODE_WINDOW", 0)
    seen.clear()
    prefill.clear()
    whole = StaticDecoder(model).generate(emb, attn, max_new_tokens=N).tolist()
    L = -(-(P + N) // decode.LEN_BUCKET) * decode.LEN_BUCKET
    assert set(seen) == set(prefill) == {L}  # off: every step and the prefill read the whole cache
    # on: the step feeding slot c reads the first multiple of 8 above c (c = P .. P + N - 2)
    layers = model.config.get_text_config(decoder=True).num_hidden_layers
    want = [min(L, (c // 8 + 1) * 8) for c in range(P, P + N - 1) for _ in range(layers)]
    assert windowed_reads == want and sum(want) < len(want) * L
    assert prefill_reads == [P] * layers  # the prompt reads its own P slots
    assert win == whole == _stock(model, emb, attn, N)


@torch.no_grad()
def test_reused_decoder_shorter_prompt_equals_generate(tiny_adapter):
    """A decoder reused for a shorter prompt gives stock generate's tokens, also past an EOS that
    generate must not stop at (the reference runs on after token id 2 in one row)."""
    model = tiny_adapter.model
    emb, attn = _embeds(tiny_adapter)
    dec = StaticDecoder(model)
    dec.generate(emb, attn, max_new_tokens=150)
    ref = _stock(model, emb[:, 20:], attn[:, 20:], 130)
    eos = model.generation_config.eos_token_id
    assert any(eos in r[:-1] for r in ref)
    assert dec.generate(emb[:, 20:], attn[:, 20:], max_new_tokens=130).tolist() == ref


@torch.no_grad()
def test_cache_prompt_len_sizes_the_cache_for_longer_prompts(tiny_adapter, monkeypatch):
    """``cache_prompt_len`` (L-PPO passes the global batch's longest prompt to each process): the
    first call's cache is sized for it, a later call with prompts that long reuses that cache
    instead of building a new one, and the tokens equal stock generate's."""
    model = tiny_adapter.model
    monkeypatch.setattr(decode, "LEN_BUCKET", 8)  # the tiny prompts' lengths fall in different buckets
    emb, attn = _embeds(tiny_adapter)
    P, N = emb.shape[1], 12
    short_emb, short_attn = emb[:, 30:], attn[:, 30:]  # this process's first rows: shorter
    plain = StaticDecoder(model)
    plain.generate(short_emb, short_attn, max_new_tokens=N)
    assert plain._st.key[1] < P + N  # sized for its own prompts only: the longer ones need a new cache
    dec = StaticDecoder(model)
    first = dec.generate(short_emb, short_attn, max_new_tokens=N, cache_prompt_len=P).tolist()
    st = dec._st
    assert st.key[1] == -(-(P + N) // 8) * 8
    later = dec.generate(emb, attn, max_new_tokens=N, cache_prompt_len=P).tolist()
    assert dec._st is st  # reused, no new cache or graph
    assert first == _stock(model, short_emb, short_attn, N)
    assert later == _stock(model, emb, attn, N)


@pytest.mark.gpu
@torch.no_grad()
def test_gpu_graph_windows_equal_generate_fp32(tiny_adapter, monkeypatch):
    """fp32 on the GPU through the CUDA graphs: windowed = whole-cache = stock ``generate``; a
    reused decoder with a shorter prompt falls back to the whole-cache graph and agrees too."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    emb, attn = _embeds(tiny_adapter, "cuda")  # built on the CPU model, then moved
    model = tiny_adapter.model.to("cuda")
    try:
        N = 150
        ref = _stock(model, emb, attn, N)
        monkeypatch.setattr(decode, "DECODE_WINDOW", 16)
        dec = StaticDecoder(model)
        win = dec.generate(emb, attn, max_new_tokens=N).tolist()
        assert dec._st.graph is not None and len(dec._st.graphs) >= 5  # the step ran as window graphs
        monkeypatch.setattr(decode, "DECODE_WINDOW", 0)
        whole = StaticDecoder(model).generate(emb, attn, max_new_tokens=N).tolist()
        assert win == whole == ref
        monkeypatch.setattr(decode, "DECODE_WINDOW", 16)
        short = dec.generate(emb[:, 20:], attn[:, 20:], max_new_tokens=N - 20).tolist()  # reuses the cache
        assert short == _stock(model, emb[:, 20:], attn[:, 20:], N - 20)
    finally:
        tiny_adapter.model.to("cpu")
