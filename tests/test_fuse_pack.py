"""Packed projections (``fuse.PACK``, issue 21): inside ``Fusion.active`` each layer's q/k/v and
gate/up run as one matmul over weights re-homed as views of one tensor; the tokens equal the
unpacked decoder's and stock ``generate``'s, the model's parameters keep their objects and values,
a replaced weight is packed again, and what cannot be packed (LoRA wrappers, trainable weights,
PACK off) runs as before. Also the prefill's cache write as one slice copy (decode.py)."""

import pytest
import torch

from layersafe.models import decode, fuse
from layersafe.models.decode import StaticDecoder

torch.set_num_threads(1)  # 2 shared cores


def _tiny_llama(**kw):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      initializer_range=0.5, **kw)
    return LlamaForCausalLM(cfg).eval()  # weights require grad, as a loaded model's do


def _batch(model, B=3, S=9):
    g = torch.Generator().manual_seed(1)
    emb = model.get_input_embeddings()(torch.randint(3, 96, (B, S), generator=g))
    attn = torch.ones(B, S, dtype=torch.long)
    attn[1, :4] = 0  # a left-padded row
    return emb, attn


def _count_packed(monkeypatch):
    calls = []
    real = fuse._Pack.__call__

    def spy(self, x):
        calls.append(len(self.sizes))
        return real(self, x)

    monkeypatch.setattr(fuse._Pack, "__call__", spy)
    return calls


@torch.no_grad()
def test_packed_tokens_equal_unpacked_and_generate(monkeypatch):
    from test_decode_window import _stock

    model = _tiny_llama(attention_bias=True)  # q/k/v biases are packed too
    emb, attn = _batch(model)
    before = {n: (p, p.detach().clone()) for n, p in model.named_parameters()}
    calls = _count_packed(monkeypatch)
    N, L = 12, 2
    dec = StaticDecoder(model, fuse=True)
    packed = dec.generate(emb, attn, max_new_tokens=N).tolist()
    # N - 1 decode steps (the prefill keeps separate matmuls), each layer one q/k/v matmul (3
    # outputs) and one gate/up matmul (2)
    assert sorted(calls) == sorted([3, 2] * L * (N - 1))
    assert dec._fusion.packings == 2 * L
    monkeypatch.setattr(fuse, "PACK", False)
    unpacked = StaticDecoder(model, fuse=True).generate(emb, attn, max_new_tokens=N).tolist()
    assert len(calls) == 2 * L * (N - 1)  # PACK off: no packed matmul ran
    assert packed == unpacked == _stock(model, emb, attn, N)
    # the same Parameter objects and values; each layer's q/k/v weights are consecutive row blocks
    for n, p in model.named_parameters():
        assert p is before[n][0] and torch.equal(p, before[n][1]), n
    a = model.model.layers[0].self_attn
    q, k, v = a.q_proj.weight, a.k_proj.weight, a.v_proj.weight
    assert k.data_ptr() == q.data_ptr() + q.numel() * q.element_size()
    assert v.data_ptr() == k.data_ptr() + k.numel() * k.element_size()
    assert a.k_proj.bias.data_ptr() == a.q_proj.bias.data_ptr() + a.q_proj.bias.numel() * 4
    assert not any("forward" in m.__dict__ for m in model.modules())  # nothing stays patched


@torch.no_grad()
def test_in_place_update_is_seen_and_a_replaced_weight_is_repacked(monkeypatch, tmp_path):
    model = _tiny_llama()
    emb, attn = _batch(model)
    dec = StaticDecoder(model, fuse=True)
    dec.generate(emb, attn, max_new_tokens=4)
    assert dec._fusion.packings == 4
    a = model.model.layers[1].self_attn
    # updated in place: the packed tensor sees it (no re-pack)
    a.k_proj.weight.mul_(-1.5)
    out = dec.generate(emb, attn, max_new_tokens=8).tolist()
    assert dec._fusion.packings == 4
    assert out == StaticDecoder(model).generate(emb, attn, max_new_tokens=8).tolist()
    # replaced (not in place): that layer's projections are packed again, the new values used
    a.v_proj.weight.data = torch.randn_like(a.v_proj.weight) * 0.5
    out = dec.generate(emb, attn, max_new_tokens=8).tolist()
    assert dec._fusion.packings == 5
    assert out == StaticDecoder(model).generate(emb, attn, max_new_tokens=8).tolist()
    # a packed model saves and loads with plain transformers (views of one tensor per layer)
    from transformers import LlamaForCausalLM

    model.save_pretrained(tmp_path)
    again = LlamaForCausalLM.from_pretrained(tmp_path)
    for (n, p), (m, r) in zip(model.named_parameters(), again.named_parameters()):
        assert n == m and torch.equal(p, r), n


def test_trainable_weights_are_packed_and_an_optimizer_step_is_seen(monkeypatch):
    """A full fine-tune: the packed weights still train (grads reach the same Parameters, and an
    in-place optimizer step lands in the packed tensor the fused decoder reads)."""
    model = _tiny_llama().requires_grad_(True)
    emb, attn = _batch(model)
    emb = emb.detach()
    dec = StaticDecoder(model, fuse=True)
    with torch.no_grad():
        dec.generate(emb, attn, max_new_tokens=3)
    assert dec._fusion.packings == 4
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model(inputs_embeds=emb, attention_mask=attn).logits.square().mean().backward()
    q = model.model.layers[0].self_attn.q_proj.weight
    assert q.grad is not None and q.grad.abs().sum() > 0
    opt.step()
    calls = _count_packed(monkeypatch)
    with torch.no_grad():
        out = dec.generate(emb, attn, max_new_tokens=6).tolist()
        ref = StaticDecoder(model).generate(emb, attn, max_new_tokens=6).tolist()
    assert dec._fusion.packings == 4 and len(calls) == 2 * 2 * 5  # still packed, not re-packed
    assert out == ref


@torch.no_grad()
def test_hooked_or_mismatched_projections_are_not_packed(monkeypatch):
    model = _tiny_llama()
    emb, attn = _batch(model)
    model.model.layers[0].mlp.up_proj.register_forward_hook(lambda m, i, o: None)  # e.g. accelerate's
    calls = _count_packed(monkeypatch)
    dec = StaticDecoder(model, fuse=True)
    out = dec.generate(emb, attn, max_new_tokens=5).tolist()
    # layer 0's gate/up stays two matmuls; its q/k/v and layer 1's projections are packed
    assert dec._fusion.packings == 3
    assert sorted(set(calls)) == [2, 3] and calls.count(2) == 4 and calls.count(3) == 8
    assert out == StaticDecoder(model).generate(emb, attn, max_new_tokens=5).tolist()
    assert not fuse._packable([torch.nn.Linear(4, 4), torch.nn.Linear(5, 4)])  # different inputs
    assert not fuse._packable([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4, bias=False)])


def test_lora_projections_are_not_packed():
    """peft's LoRA wrappers compute more than the base weight: never packed (test_fuse.py checks the tokens)."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_tiny_llama(), LoraConfig(r=2, target_modules=["q_proj", "up_proj"]))
    emb, attn = _batch(model.base_model.model)
    dec = StaticDecoder(model.base_model.model, fuse=True)
    with torch.no_grad():
        dec.generate(emb, attn, max_new_tokens=3)
    assert dec._fusion.packings == 0


@torch.no_grad()
def test_prefill_writes_the_cache_as_one_slice(monkeypatch):
    """After the cache exists, the writes skip StaticLayer.update: a prefill's as slice copies, a
    decode step's at the on-device counter; the cache holds the same keys as through update."""
    from transformers.cache_utils import StaticLayer

    model = _tiny_llama()
    emb, attn = _batch(model)
    dec = StaticDecoder(model)
    first = dec.generate(emb, attn, max_new_tokens=6).tolist()  # CPU: the cache initialises lazily here
    keys = [layer.keys.clone() for layer in dec._st.cache.layers]
    widths = []
    real = StaticLayer.update

    def spy(self, k, v, *a, **kw):
        widths.append(k.shape[-2])
        return real(self, k, v, *a, **kw)

    monkeypatch.setattr(StaticLayer, "update", spy)
    monkeypatch.setattr(decode, "_static_update", lambda: spy)
    assert dec.generate(emb, attn, max_new_tokens=6).tolist() == first
    assert widths == []  # the prefill wrote slices, the decode steps index_copy_ at the counter
    for layer, k in zip(dec._st.cache.layers, keys):
        assert torch.equal(layer.keys, k)


@pytest.mark.gpu
@torch.no_grad()
def test_gpu_packed_graphs_equal_generate_fp32(tiny_adapter, monkeypatch):
    """fp32 on the GPU through the CUDA graphs: packed = unpacked = stock ``generate``."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from test_decode_window import _embeds, _stock

    emb, attn = _embeds(tiny_adapter, "cuda")
    model = tiny_adapter.model.to("cuda")
    try:
        N = 100
        monkeypatch.setattr(decode, "DECODE_WINDOW", 16)
        calls = _count_packed(monkeypatch)
        dec = StaticDecoder(model, fuse=True)
        out = dec.generate(emb, attn, max_new_tokens=N).tolist()
        assert dec._st.graph is not None and calls and dec._fusion.packings > 0
        assert out == _stock(model, emb, attn, N)
        monkeypatch.setattr(fuse, "PACK", False)
        assert StaticDecoder(model, fuse=True).generate(emb, attn, max_new_tokens=N).tolist() == out
    finally:
        tiny_adapter.model.to("cpu")


@torch.no_grad()
def test_stale_non_finite_cache_values_do_not_leak():
    """The prefill zeroes only the slots past the prompt (it overwrites the others): a cache left
    full of NaN by an earlier call gives the same tokens, and ends finite."""
    model = _tiny_llama()
    emb, attn = _batch(model)
    dec = StaticDecoder(model)
    first = dec.generate(emb, attn, max_new_tokens=7).tolist()
    for layer in dec._st.cache.layers:
        layer.keys.fill_(float("nan"))
        layer.values.fill_(float("nan"))
    assert dec.generate(emb, attn, max_new_tokens=7).tolist() == first
    assert all(torch.isfinite(layer.keys).all() and torch.isfinite(layer.values).all()
               for layer in dec._st.cache.layers)


@torch.no_grad()
def test_prefill_shapes_auto_gives_the_same_tokens_over_changing_shapes(monkeypatch):
    """PREFILL_SHAPES = "auto": the prefill kernels recompile once a dim changes; three batches of
    different sizes and lengths give the unfused tokens."""
    monkeypatch.setattr(fuse, "PREFILL_SHAPES", "auto")
    model = _tiny_llama()
    emb, attn = _batch(model, B=4, S=11)
    dec, plain = StaticDecoder(model, fuse=True), StaticDecoder(model)
    for b, s in ((4, 11), (4, 8), (2, 6)):
        e, m = emb[:b, -s:].contiguous(), attn[:b, -s:]
        assert dec.generate(e, m, max_new_tokens=5).tolist() == plain.generate(e, m, max_new_tokens=5).tolist()


@torch.no_grad()
def test_the_packed_storage_lives_only_in_the_modules():
    """The decoder keeps no reference to a packed tensor (only the modules hold its storage): once
    the weights are replaced (the model moved, say) it can be freed; the next call packs the new ones."""
    import weakref

    model = _tiny_llama()
    emb, attn = _batch(model)
    dec = StaticDecoder(model, fuse=True)
    dec.generate(emb, attn, max_new_tokens=3)
    a = model.model.layers[0].self_attn
    base = a.q_proj.weight.data_ptr()
    pack = dec._fusion._packs[id(a)]
    whole = pack._whole(a.q_proj.weight, (64 + 32 + 32, 64))  # q, then k and v (2 kv heads of 16)
    assert pack.intact() and whole.data_ptr() == base and torch.equal(whole[64:96], a.k_proj.weight)
    with pytest.raises(RuntimeError, match="does not fit"):
        pack._whole(a.q_proj.weight, (3 * 64, 64))
    del whole
    assert not any(isinstance(v, torch.Tensor) for v in vars(pack).values())
    gone = weakref.ref(pack)  # the decoder's record of the pack holds modules, not tensors
    for m in (a.q_proj, a.k_proj, a.v_proj):
        m.weight.data = m.weight.detach().clone()  # replaced: no longer one storage
    assert not pack.intact()
    out = dec.generate(emb, attn, max_new_tokens=6).tolist()
    assert dec._fusion.packings == 5 and dec._fusion._packs[id(a)].intact()
    del pack
    assert gone() is None  # replaced, and with it nothing of the old packed storage is kept
    assert out == StaticDecoder(model).generate(emb, attn, max_new_tokens=6).tolist()
    with torch.enable_grad():  # with grad on, the packed call gives the separate matmuls (autograd)
        x = torch.randn(2, 64)
        q = dec._fusion._packs[id(a)](x)[0]
        assert q.requires_grad and torch.equal(q, a.q_proj(x))


@torch.no_grad()
def test_a_second_decoder_adopts_the_packing_and_a_repack_drops_captured_state():
    """Two fused decoders on one model: the second adopts the first's packing (nothing re-homed,
    so the first's graphs keep reading live weights). After a weight is replaced and packed again,
    a decoder does not reuse state captured on the old layout."""
    model = _tiny_llama()
    emb, attn = _batch(model)
    a_dec, b_dec = StaticDecoder(model, fuse=True), StaticDecoder(model, fuse=True)
    first = a_dec.generate(emb, attn, max_new_tokens=5).tolist()
    ptrs = [m.weight.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Linear)]
    st = a_dec._st
    assert b_dec.generate(emb, attn, max_new_tokens=5).tolist() == first
    assert b_dec._fusion.packings == 0  # adopted, not copied
    assert [m.weight.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Linear)] == ptrs
    assert a_dec.generate(emb, attn, max_new_tokens=5).tolist() == first and a_dec._st is st  # reused
    v = model.model.layers[1].self_attn.v_proj
    v.weight.data = v.weight.detach().clone()  # replaced: b packs that layer again (new storage)
    assert b_dec.generate(emb, attn, max_new_tokens=5).tolist() == first and b_dec._fusion.packings == 1
    assert a_dec.generate(emb, attn, max_new_tokens=5).tolist() == first
    assert a_dec._st is not st  # a's state was captured on the old layout: rebuilt, not replayed


@torch.no_grad()
def test_shared_linears_are_patched_once_and_left_unpacked(monkeypatch):
    """Weights tied across layers: a Linear used by two layers' attentions, another by two MLPs.
    Packing it into both groups would re-home it back and forth (and patch it twice, whose second
    restore raised). The fused decoder gives stock tokens, packs neither group that holds a shared
    Linear, packs the others, and nothing stays patched after a call."""
    from test_decode_window import _stock

    model = _tiny_llama()
    layers = model.model.layers
    layers[1].self_attn.q_proj = layers[0].self_attn.q_proj
    layers[1].mlp.gate_proj = layers[0].mlp.gate_proj
    emb, attn = _batch(model)
    N = 8
    want = _stock(model, emb, attn, N)
    calls = _count_packed(monkeypatch)
    dec = StaticDecoder(model, fuse=True)
    for _ in range(2):  # a second call: nothing re-packed
        assert dec.generate(emb, attn, max_new_tokens=N).tolist() == want
        assert not any("forward" in m.__dict__ for m in model.modules())
    assert dec._fusion.packings == 0 and calls == []  # every group holds a shared Linear
    layers[1].mlp.gate_proj = torch.nn.Linear(64, 96, bias=False)  # untie the MLPs: they pack
    want = _stock(model, emb, attn, N)
    dec = StaticDecoder(model, fuse=True)
    assert dec.generate(emb, attn, max_new_tokens=N).tolist() == want
    assert dec._fusion.packings == 2 and sorted(calls) == [2] * 2 * (N - 1)
    assert layers[0].self_attn.q_proj.weight.data_ptr() == layers[1].self_attn.q_proj.weight.data_ptr()
