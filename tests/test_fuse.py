"""Opt-in kernel fusion (layersafe/models/fuse.py, issue 21): with ``fuse=True`` the static-cache
decoder gives stock ``generate``'s greedy tokens in fp32 (prefill and decode through the compiled
functions, windowed decode kept), patches nothing after the call, and falls back with one warning
for decoders it does not target; on a GPU (``pytest -m gpu``) the same through the CUDA graphs."""

import warnings

import pytest
import torch
from transformers import GemmaConfig, GemmaForCausalLM

from layersafe.models import decode, fuse
from layersafe.models.decode import StaticDecoder

torch.set_num_threads(1)  # 2 shared cores


def _counting(monkeypatch):
    """Record each (name, dynamic) call of the compiled functions."""
    calls = {}
    real = fuse.compiled

    def spy(name, dynamic):
        fn = real(name, dynamic)

        def counted(*a, **k):
            calls[name, dynamic] = calls.get((name, dynamic), 0) + 1
            return fn(*a, **k)
        return counted

    monkeypatch.setattr(fuse, "compiled", spy)
    return calls


TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=128)


@torch.no_grad()
def test_fused_tokens_equal_unfused_and_generate(tiny_adapter, monkeypatch):
    from test_decode_window import _embeds, _stock
    from transformers.models.llama import modeling_llama

    model = tiny_adapter.model
    emb, attn = _embeds(tiny_adapter)
    N = 24
    monkeypatch.setattr(decode, "DECODE_WINDOW", 8)  # window changes every 8 steps
    calls = _counting(monkeypatch)
    rope = modeling_llama.apply_rotary_pos_emb
    dec = StaticDecoder(model, fuse=True)
    fused = dec.generate(emb, attn, max_new_tokens=N).tolist()
    cfg = model.config.get_text_config(decoder=True)
    L = cfg.num_hidden_layers
    # prefill (dynamic) once, then N - 1 eager steps (static). Per forward: the first layer's input
    # norm alone; every other norm (2 a layer, the last one the final norm) fused with the residual
    # add before it. Each step writes its keys and values with one kernel a layer.
    assert calls == {("rms_norm", True): 1, ("add_rms_norm", True): 2 * L, ("silu_mul", True): L,
                     ("rotary", True): L, ("rms_norm", False): N - 1, ("add_rms_norm", False): (N - 1) * 2 * L,
                     ("silu_mul", False): (N - 1) * L, ("rotary", False): (N - 1) * L,
                     ("kv_write", False): (N - 1) * L}
    # a second call on the same cache (now initialised) writes its prefill with one kernel a layer
    calls.clear()
    assert dec.generate(emb, attn, max_new_tokens=N).tolist() == fused
    assert calls[("kv_fill", True)] == L
    # nothing stays patched: the modules run their class forward again
    assert modeling_llama.apply_rotary_pos_emb is rope
    assert not any("forward" in m.__dict__ for m in dec.decoder.modules())
    plain = StaticDecoder(model).generate(emb, attn, max_new_tokens=N).tolist()
    assert fused == plain == _stock(model, emb, attn, N)
    # a second call with another batch size and prompt length: the prefill's dynamic-shape kernel
    # is reused; only the step's static one is compiled for batch 2 (if not cached already)
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list as entries

    n = len(entries(fuse.rms_norm.__code__))
    emb2, attn2 = emb[:2, 10:].contiguous(), attn[:2, 10:]  # contiguous, as the adapters' embeddings
    short = dec.generate(emb2, attn2, max_new_tokens=N).tolist()
    assert len(entries(fuse.rms_norm.__code__)) <= n + 1
    assert short == _stock(model, emb2, attn2, N)


def test_scan_fuse_kernels_option(tiny_adapter, small_dataset, tmp_path, monkeypatch):
    """``fuse_kernels`` reaches the scan's static decoder, and the responses equal the unfused scan's."""
    from test_scan_static_cache import scan

    calls = _counting(monkeypatch)
    try:
        off = scan(tiny_adapter, small_dataset, tmp_path / "off", cache="static", layers="0,3")
        assert calls == {} and not tiny_adapter._static.fuse
        on = scan(tiny_adapter, small_dataset, tmp_path / "on", cache="static", layers="0,3", fuse_kernels=True)
        assert tiny_adapter._static.fuse and calls[("rms_norm", True)] > 0
        assert on == off and len(on) == 5 * 2
    finally:  # the adapter is shared by other tests
        tiny_adapter.fuse_kernels = False
        tiny_adapter.release_cache()


@torch.no_grad()
def test_fused_with_lora_equals_unfused(monkeypatch):
    """L-PPO's LoRA in every language-model linear (bench_scan --decode-lora): the fused MLP calls
    the LoRA-wrapped projections, so the tokens stay the unfused ones."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_scan import add_lora

    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import make_random_llava

    torch.manual_seed(0)
    model, processor = make_random_llava(dtype=torch.float32, device=torch.device("cpu"), vision_layers=1,
                                         vision_hidden=32, text_layers=2, text_hidden=64, image_size=32,
                                         patch_size=16, initializer_range=0.5)
    assert add_lora(LlavaAdapter(model, processor, name="t", device=torch.device("cpu")), 4) == 14
    model.eval()
    calls = _counting(monkeypatch)
    emb = model.get_input_embeddings()(torch.randint(3, 100, (3, 9)))
    attn = torch.ones(3, 9, dtype=torch.long)
    attn[1, :4] = 0
    fused = StaticDecoder(model, fuse=True).generate(emb, attn, max_new_tokens=8).tolist()
    assert calls[("silu_mul", False)] == 7 * 2  # 7 steps x 2 layers
    assert fused == StaticDecoder(model).generate(emb, attn, max_new_tokens=8).tolist()


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2", "qwen3"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_targets_match_transformers_eagerly(family, dtype):
    """The pure functions equal each family's modules bit for bit (eagerly, no compile)."""
    import importlib

    mod = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    prefix = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}[family]
    config = getattr(importlib.import_module(f"transformers.models.{family}"), prefix + "Config")(**TINY)
    decoder = getattr(mod, prefix + "Model")(config).to(dtype)
    plan, why = fuse._plan(decoder)
    assert why == "" and len(plan["mlps"]) == 2
    # the layers' forward is replaceable: each hands its output to the next layer's input norm, the
    # last one to the final norm
    assert [(a, b) for a, b in plan["layers"]] == list(zip(decoder.layers, [decoder.layers[1].input_layernorm,
                                                                              decoder.norm]))
    # 2 per layer + the final norm; Qwen3 adds q_norm and k_norm per layer
    assert len(plan["norms"]) == (9 if family == "qwen3" else 5)
    x = torch.randn(3, 5, 32).to(dtype)
    n = decoder.norm
    torch.nn.init.normal_(n.weight)
    assert torch.equal(n(x), fuse.rms_norm(x, n.weight, n.variance_epsilon))


def _compiled_vs_eager_bf16(device):
    """Compiled vs eager in bf16: rotary bit for bit (eager's intermediate roundings kept:
    ``emulate_precision_casts``); RMSNorm (the mean's reduction order) and silu*up (the device's
    exp) within one bf16 rounding. On the CPU all three come out bit for bit."""
    g = torch.Generator().manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=g).to(device, torch.bfloat16)  # noqa: E731
    # the limit Fusion.active sets: earlier tests' variants must not push these past dynamo's default 8
    with torch._dynamo.config.patch(recompile_limit=fuse.RECOMPILE_LIMIT):
        q, k, cos, sin = rnd(3, 4, 5, 16), rnd(3, 2, 5, 16), rnd(3, 5, 16), rnd(3, 5, 16)
        for a, b in zip(fuse.compiled("rotary", False)(q, k, cos, sin), fuse.rotary(q, k, cos, sin)):
            assert torch.equal(a, b)
        gate, up = rnd(3, 5, 48), rnd(3, 5, 48)
        x, w = rnd(3, 5, 512) * 3, rnd(512)
        r = rnd(3, 5, 512) * 3
        (hs, hn), (es, en) = fuse.compiled("add_rms_norm", False)(x, r, w, 1e-6), fuse.add_rms_norm(x, r, w, 1e-6)
        assert torch.equal(hs, es)  # the sum: one bf16 rounding, as eager's
        for a, b in [(fuse.compiled("silu_mul", False)(gate, up), fuse.silu_mul(gate, up)),
                     (fuse.compiled("rms_norm", False)(x, w, 1e-6), fuse.rms_norm(x, w, 1e-6)), (hn, en)]:
            assert ((a.float() - b.float()).abs() <= b.float().abs() * 2**-7).all()
            if device == "cpu":
                assert torch.equal(a, b)


def test_compiled_bf16_keeps_eager_roundings():
    _compiled_vs_eager_bf16("cpu")


def _tiny_gemma():
    torch.manual_seed(0)
    cfg = GemmaConfig(**TINY, attn_implementation="sdpa")
    return GemmaForCausalLM(cfg).eval()


@torch.no_grad()
def test_unknown_architecture_runs_unfused_with_one_warning(monkeypatch):
    model = _tiny_gemma()
    calls = _counting(monkeypatch)
    emb = model.get_input_embeddings()(torch.randint(0, 64, (2, 7)))
    attn = torch.ones(2, 7, dtype=torch.long)
    attn[0, :2] = 0
    dec = StaticDecoder(model, fuse=True)
    with pytest.warns(RuntimeWarning, match="kernel fusion off: GemmaModel is not a llama/mistral/qwen2/qwen3") as w:
        fused = dec.generate(emb, attn, max_new_tokens=6).tolist()
    assert len(w) == 1 and calls == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # checked once per decoder: no second warning
        again = dec.generate(emb, attn, max_new_tokens=6).tolist()
    assert fused == again == StaticDecoder(model).generate(emb, attn, max_new_tokens=6).tolist()


@pytest.mark.gpu
@torch.no_grad()
def test_gpu_fused_graphs_equal_generate_fp32(tiny_adapter, monkeypatch):
    """fp32 on the GPU: the fused prefill and the captured fused (windowed) steps give stock
    ``generate``'s greedy tokens; a second, smaller batch reuses the compiled prefill. And the
    Triton kernels keep eager's bf16 roundings."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from test_decode_window import _embeds, _stock

    _compiled_vs_eager_bf16("cuda")
    emb, attn = _embeds(tiny_adapter, "cuda")
    model = tiny_adapter.model.to("cuda")
    try:
        N = 150
        monkeypatch.setattr(decode, "DECODE_WINDOW", 16)
        calls = _counting(monkeypatch)
        dec = StaticDecoder(model, fuse=True)
        out = dec.generate(emb, attn, max_new_tokens=N).tolist()
        assert dec._st.graph is not None and len(dec._st.graphs) >= 5  # captured window graphs
        assert calls[("rms_norm", False)] > 0 and calls[("rms_norm", True)] > 0
        assert out == _stock(model, emb, attn, N)
        short = dec.generate(emb[:2, 20:], attn[:2, 20:], max_new_tokens=N - 20).tolist()
        assert short == _stock(model, emb[:2, 20:], attn[:2, 20:], N - 20)
    finally:
        tiny_adapter.model.to("cpu")


def test_past_the_recompile_limit_a_function_runs_unfused(monkeypatch):
    """Dynamo fails (fullgraph) once a function has more compiled variants than its limit; the fused
    function then runs eagerly, with one warning, and gives the same numbers."""
    import warnings

    fuse._compiled.cache_clear()
    monkeypatch.setattr(fuse, "_unfused", set())
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    f = fuse.compiled("silu_mul", False)
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            # a new dtype is a recompile (a new size might not be: dynamo remembers which dims of
            # this function's code changed before, in earlier tests, and compiles those dynamic)
            for n in (torch.float32, torch.float64, torch.bfloat16):
                g, u = torch.randn(2, 8, dtype=n), torch.randn(2, 8, dtype=n)
                if n == torch.float32:  # compiled (SiLU's exp may round differently)
                    torch.testing.assert_close(f(g, u), fuse.silu_mul(g, u), rtol=1e-6, atol=1e-7)
                else:  # past the limit: the eager function itself
                    assert torch.equal(f(g, u), fuse.silu_mul(g, u))
        assert fuse._unfused == {("silu_mul", False)}
        assert [str(w.message) for w in said if "unfused" in str(w.message)] == [
            "kernel fusion: silu_mul runs unfused from now on (FailOnRecompileLimitHit)"]
    finally:
        fuse._compiled.cache_clear()


def test_inside_active_the_recompile_limit_is_raised(tiny_adapter):
    before = torch._dynamo.config.recompile_limit
    with fuse.Fusion(tiny_adapter.model.get_decoder()).active(dynamic=True):
        assert torch._dynamo.config.recompile_limit == max(fuse.RECOMPILE_LIMIT, before) >= 64
    assert torch._dynamo.config.recompile_limit == before


def test_active_nests(tiny_adapter):
    """An inner block over the same decoder leaves the outer one's fused modules in place."""
    dec = tiny_adapter.model.get_decoder()
    f = fuse.Fusion(dec)
    norm = next(m for m in dec.modules() if type(m).__name__.endswith("RMSNorm"))
    with f.active(dynamic=True):
        outer = norm.__dict__["forward"]
        with f.active(dynamic=True):
            assert norm.__dict__["forward"] is outer
        assert norm.__dict__["forward"] is outer
    assert "forward" not in norm.__dict__


def _tiny_llama(seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**TINY, initializer_range=0.5, attn_implementation="sdpa")).eval()
    return model


@torch.no_grad()
def test_layer_forward_equals_the_layers_own_and_hands_over_the_next_norm():
    """The fused layer forward, eagerly: the layer's output bit for bit; without autograd the next
    norm's output is left for it (and taken once); with autograd nothing is handed over."""
    model = _tiny_llama()
    dec = model.get_decoder()
    layer, nxt = dec.layers[0], dec.layers[1].input_layernorm
    x = torch.randn(2, 5, 32)
    pos = torch.arange(5)[None].expand(2, 5)
    kw = {"position_ids": pos, "position_embeddings": dec.rotary_emb(x, pos)}
    want = layer(x, **kw)
    box: dict = {}
    got = fuse._layer_forward(layer, nxt, fuse.add_rms_norm, box)(x, **kw)
    assert torch.equal(got, want)
    assert fuse._take(box, got, dec.norm) is None  # for the next layer's norm only
    assert torch.equal(fuse._take(box, got, nxt), nxt(want)) and box == {}
    with torch.enable_grad():
        got = fuse._layer_forward(layer, nxt, fuse.add_rms_norm, box)(x, **kw)
    assert torch.equal(got, want) and box == {}


@torch.no_grad()
def test_a_changed_layer_forward_keeps_the_layers_unfused(monkeypatch):
    """A decoder layer whose forward is not Llama's (here: the MLP's residual scaled) fails the
    probe: its layers keep their own forward, the other fusions still run, tokens stay stock."""
    from transformers.models.llama import modeling_llama

    model = _tiny_llama()
    own = modeling_llama.LlamaDecoderLayer.forward

    def scaled(self, hidden_states, **kw):
        return own(self, hidden_states, **kw) * 0.5

    monkeypatch.setattr(modeling_llama.LlamaDecoderLayer, "forward", scaled)
    plan, why = fuse._plan(model.get_decoder())
    assert why == "" and plan["layers"] == []
    calls = _counting(monkeypatch)
    emb = model.get_input_embeddings()(torch.randint(3, 60, (2, 7)))
    attn = torch.ones(2, 7, dtype=torch.long)
    attn[0, :3] = 0
    fused = StaticDecoder(model, fuse=True).generate(emb, attn, max_new_tokens=6).tolist()
    assert ("add_rms_norm", False) not in calls and calls[("rms_norm", False)] == 5 * 5
    assert fused == StaticDecoder(model).generate(emb, attn, max_new_tokens=6).tolist()


def test_kv_write_equals_index_copy():
    """The compiled decode-step write puts k and v at the slot, and nothing else changes."""
    g = torch.Generator().manual_seed(0)
    keys, values = torch.randn(3, 2, 10, 8, generator=g), torch.randn(3, 2, 10, 8, generator=g)
    k, v = torch.randn(3, 2, 1, 8, generator=g), torch.randn(3, 2, 1, 8, generator=g)
    slot = torch.tensor([6])
    want_k, want_v = keys.clone().index_copy_(2, slot, k), values.clone().index_copy_(2, slot, v)
    with torch._dynamo.config.patch(recompile_limit=fuse.RECOMPILE_LIMIT):
        fuse.compiled("kv_write", False)(keys, values, k, v, slot)
    assert torch.equal(keys, want_k) and torch.equal(values, want_v)
    # the prefill's slice copies, from head-transposed sources, at two offsets and lengths
    for at, n in ((0, 5), (2, 7)):
        k, v = (torch.randn(3, n, 2, 8, generator=g).transpose(1, 2) for _ in range(2))
        want_k, want_v = keys.clone(), values.clone()
        want_k[:, :, at:at + n], want_v[:, :, at:at + n] = k, v
        with torch._dynamo.config.patch(recompile_limit=fuse.RECOMPILE_LIMIT):
            fuse.compiled("kv_fill", True)(keys, values, k, v, at)
        assert torch.equal(keys, want_k) and torch.equal(values, want_v)


@torch.no_grad()
def test_a_new_batch_size_compiles_nothing():
    """The decode-step kernels are compiled batch-polymorphic from their first compile: after decode
    steps at one batch size (and a prefill that has seen two, so its kernels are polymorphic too), a
    call at another batch size compiles no graph at all. Without the batch dim marked dynamic up
    front, the decode kernels would recompile there (automatic dynamic shapes need a change first)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()  # forget which dims earlier tests saw change (dynamo keeps that per function)
    fuse._compiled.cache_clear()
    model = _tiny_llama(seed=1)
    dec = StaticDecoder(model, fuse=True)

    def run(b, n):
        emb = model.get_input_embeddings()(torch.randint(3, 60, (b, 6)))
        attn = torch.ones(b, 6, dtype=torch.long)
        attn[0, :2] = 0
        with torch._dynamo.config.patch(recompile_limit=fuse.RECOMPILE_LIMIT):
            fused = dec.generate(emb, attn, max_new_tokens=n).tolist()
        assert fused == StaticDecoder(model).generate(emb, attn, max_new_tokens=n).tolist()

    run(3, 1)  # prefills only (no decode step)
    run(4, 1)
    run(3, 4)  # the decode kernels' first compile, at batch 3
    before = counters["stats"]["unique_graphs"]
    run(5, 4)
    assert counters["stats"]["unique_graphs"] == before


@torch.no_grad()
def test_hooks_on_the_layers_keep_their_forward():
    """A hook on a layer's norm must see every call: with one, the layers keep their own forward
    (the fused one would skip the post-attention norm module and hand the next norm its output)."""
    model = _tiny_llama(seed=2)
    dec = model.get_decoder()
    seen = []
    h = dec.layers[1].post_attention_layernorm.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        plan, _ = fuse._plan(dec)
        assert fuse._hooked(plan["layers"])
        f = fuse.Fusion(dec)
        with f.active(dynamic=True):
            assert "forward" not in dec.layers[0].__dict__ and "forward" in dec.norm.__dict__
        emb = model.get_input_embeddings()(torch.randint(3, 60, (2, 5)))
        attn = torch.ones(2, 5, dtype=torch.long)
        fused = StaticDecoder(model, fuse=True).generate(emb, attn, max_new_tokens=3).tolist()
        assert len(seen) == 3  # the prefill and 2 steps
    finally:
        h.remove()
    assert not fuse._hooked(plan["layers"])
    assert fused == StaticDecoder(model).generate(emb, attn, max_new_tokens=3).tolist()


@torch.no_grad()
@pytest.mark.parametrize("attn_impl", ["sdpa", "eager"])
def test_batch_of_one_and_eager_attention_give_stock_tokens(attn_impl):
    """A batch of 1 (its size specialised, not marked dynamic) and eager attention (the mask added
    to the scores, with ``finfo.min``) decode, fused and unfused, to stock ``generate``'s tokens."""
    from test_decode_window import _stock
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    model = LlamaForCausalLM(LlamaConfig(**TINY, initializer_range=0.5, attn_implementation=attn_impl)).eval()
    for b in (1, 3):
        emb = model.get_input_embeddings()(torch.randint(3, 60, (b, 7)))
        attn = torch.ones(b, 7, dtype=torch.long)
        attn[-1, :2] = 0 if b > 1 else 1
        want = _stock(model, emb, attn, 6)
        assert StaticDecoder(model).generate(emb, attn, max_new_tokens=6).tolist() == want
        with torch._dynamo.config.patch(recompile_limit=fuse.RECOMPILE_LIMIT):
            assert StaticDecoder(model, fuse=True).generate(emb, attn, max_new_tokens=6).tolist() == want


@pytest.mark.gpu
@torch.no_grad()
@pytest.mark.parametrize("attn_impl", ["sdpa", "eager"])
def test_gpu_batch_of_one_and_eager_attention_give_stock_tokens(attn_impl, monkeypatch):
    """On the GPU in fp32, through the captured (windowed) CUDA graphs: a batch of 1 and eager
    attention decode, fused and unfused, to stock ``generate``'s tokens; and a batch of 1 after a
    batch of 3 (the batch-polymorphic kernels meeting the size-1 specialisation)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from test_decode_window import _stock
    from transformers import LlamaConfig, LlamaForCausalLM

    monkeypatch.setattr(decode, "DECODE_WINDOW", 16)
    torch.manual_seed(3)
    model = LlamaForCausalLM(LlamaConfig(**TINY, initializer_range=0.5, attn_implementation=attn_impl))
    model = model.eval().to("cuda")
    N = 40  # several 16-slot windows
    with torch._dynamo.config.patch(recompile_limit=fuse.RECOMPILE_LIMIT):
        fused = StaticDecoder(model, fuse=True)
        for b in (1, 3, 1):
            emb = model.get_input_embeddings()(torch.randint(3, 60, (b, 7), device="cuda"))
            attn = torch.ones(b, 7, dtype=torch.long, device="cuda")
            if b > 1:
                attn[-1, :2] = 0
            want = _stock(model, emb, attn, N)
            assert StaticDecoder(model).generate(emb, attn, max_new_tokens=N).tolist() == want
            assert fused.generate(emb, attn, max_new_tokens=N).tolist() == want
        assert fused._st.graph is not None  # the steps ran from captured graphs
