"""Opt-in kernel fusion of the elementwise pieces of Llama-style decoder layers (issue 21).

Why: at batch 64 a 7B decode step is memory-bound, yet transformers' Llama runs ~25 tiny
elementwise kernels per layer between the matmuls (RMSNorm's fp32 upcast, pow, mean, rsqrt, casts
and weight multiply, twice a layer; rotary's slices, cat, multiplies and adds for q and k; SiLU
times up in the MLP). Inside a CUDA graph each still costs a few µs. Here three small pure
functions -- RMSNorm, ``apply_rotary_pos_emb`` and ``silu(gate) * up``, each exactly transformers'
math -- are compiled with ``torch.compile`` (inductor: one Triton kernel each on CUDA) and swapped
in only while :class:`Fusion.active` is entered; leaving restores the modules and the modeling
module's function. One compiled function serves every layer. The default compile mode (not
``reduce-overhead``): ``StaticDecoder`` captures its own CUDA graphs around the compiled kernels.
Each residual add runs inside the norm that reads its sum (``add_rms_norm``, through a replaced
decoder-layer forward, :func:`_layer_forward`), and a decode step's two cache writes run as one
kernel (``kv_write``), a prefill's as compiled in-place slice copies (``kv_fill``; both called
by ``decode.py``).

Numbers: the same ops in the same order; inductor keeps eager's intermediate low-precision
roundings (``emulate_precision_casts``), so only the reduction order of RMSNorm's mean (and on a
GPU the exp inside SiLU) can differ: one bf16 rounding at most (tests/test_fuse.py).

Packed projections (``PACK``): a decode step at batch 64-128 is a chain of skinny matmuls, and
cuBLAS streams a 4096-wide weight at well under the memory bandwidth (too few output tiles for the
GPU's SMs). So each attention's q/k/v and each MLP's gate/up weights are re-homed, once, as row
blocks of one tensor per layer (the modules' weights become views of it: the same Parameter
objects and values, no extra memory) and run as one matmul each in the decode steps inside
:meth:`Fusion.active`: 3 + 2 matmuls a layer become 2, with 3 and 2 times the output width. Only plain ``nn.Linear``
projections are packed (not peft's LoRA wrappers, nor modules with hooks, e.g. accelerate's
offload); their weights must then be updated in place (``copy_``, an optimizer step), as the CUDA
graphs already require; a weight replaced instead is packed again at the next entry. A packed matmul sums in the same order per output element as the separate ones, up to
the kernel cuBLAS picks for the wider shape (exact on the CPU; fp32 tokens equal on the GPU).

Targets the Llama, Mistral, Qwen2 and Qwen3 decoders; anything else (or modules whose eager
output differs from these functions on a probe input, e.g. a hub kernel or a changed transformers
version) runs unfused, with one warning.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
import types
import warnings
from collections import Counter
from contextlib import contextmanager

import torch
import torch.nn.functional as F

FAMILIES = ("llama", "mistral", "qwen2", "qwen3")  # transformers.models.<name>.modeling_<name>
PACK = True  # decode steps: q/k/v and gate/up as one matmul each inside Fusion.active; read at each entry
# The prefill's kernels: "dynamic" = every dim symbolic (one compile for all shapes), "auto" = only
# the dims seen to change (batch, length) symbolic, after one recompile. Read at each prefill.
PREFILL_SHAPES = "auto"  # "auto" halved the rotary kernel at batch 128 (72.7 -> 34.3 ms; docs/benchmarks.md)


# --- the pure functions (transformers' math, op for op) --------------------------------------
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm.forward."""
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def rotary(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, unsqueeze_dim: int = 1):
    """apply_rotary_pos_emb (with rotate_half inlined)."""
    cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)

    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    return q * cos + rot(q) * sin, k * cos + rot(k) * sin


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """LlamaMLP's act_fn(gate_proj(x)) * up_proj(x) for hidden_act silu."""
    return F.silu(gate) * up


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float):
    """A decoder layer's residual add (``residual + x``) and the RMSNorm that reads the sum next:
    ``(sum, normed sum)`` from one kernel instead of two."""
    h = residual + x
    return h, rms_norm(h, weight, eps)


def kv_write(keys: torch.Tensor, values: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slot: torch.Tensor) -> None:
    """StaticLayer.update's two ``index_copy_`` of one decode step (``slot``: [1] long, on the device)."""
    keys.index_copy_(2, slot, k)
    values.index_copy_(2, slot, v)


def kv_fill(keys: torch.Tensor, values: torch.Tensor, k: torch.Tensor, v: torch.Tensor, at: int) -> None:
    """A prefill's keys and values into slots [at, at + n) as slice copies, compiled: Triton
    kernels writing the slices in place (eagerly, the head-transposed sources take PyTorch's
    generic strided copy: 71 ms of a batch-128 prefill on an H200, 20 ms compiled)."""
    n = k.shape[-2]
    keys[:, :, at:at + n].copy_(k)
    values[:, :, at:at + n].copy_(v)


_FUNCS = {"rms_norm": rms_norm, "rotary": rotary, "silu_mul": silu_mul, "add_rms_norm": add_rms_norm,
          "kv_write": kv_write, "kv_fill": kv_fill}
# kv_write's two scatters are independent: inductor's combo kernels launch them as one kernel
_OPTIONS = {"kv_write": {"combo_kernels": True}}

# Dynamo counts compiled variants per code object and, past torch's default of 8, fails (fullgraph).
# One process may legitimately need more: a static variant per decode batch size (a scan's last
# chunk is smaller), per dtype and norm epsilon, for every model it fuses (a paper run fuses the
# VLM and the guard). Inside Fusion.active the limit is this; past it a function runs unfused.
RECOMPILE_LIMIT = 64
_unfused: set[tuple[str, bool]] = set()  # variants that hit the limit anyway: eager from then on (warned once)
# torch >= 2.7 names; before, the limit was cache_size_limit and the error FailOnCacheLimitHit
_LIMIT_KEY = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
_LIMIT_HIT = getattr(torch._dynamo.exc, "FailOnRecompileLimitHit", None) or getattr(
    torch._dynamo.exc, "FailOnCacheLimitHit", RuntimeError)


def compiled(name: str, dynamic: bool):
    """The compiled ``name``: for the decode step every size static but the batch (one compile
    serves every batch size: a scan's last, smaller chunk compiles nothing), shape-polymorphic for
    the prefill (whose batch and prompt length change every call) in the way ``PREFILL_SHAPES``
    says. Each variant compiles its own copy of the function's code, so their recompile counts are
    separate."""
    return _compiled(name, dynamic, PREFILL_SHAPES if dynamic else "batch")


@functools.cache
def _compiled(name: str, dynamic: bool, shapes: str):
    fn = _FUNCS[name]
    own = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    # "auto" is torch's automatic dynamic shapes: a dim becomes symbolic only once it has changed
    # between calls (batch and prompt length), so head count, head size and widths stay constants
    # in the kernels' index arithmetic.
    # "batch": automatic dynamic shapes with every tensor's first dim (the batch) marked dynamic
    # up front, so the first compile is already batch-polymorphic.
    mode = {"dynamic": True, "auto": None, "batch": None}[shapes]
    cfn = torch.compile(own, fullgraph=True, dynamic=mode,
                        options={"emulate_precision_casts": True, **_OPTIONS.get(name, {})})

    def call(*args):
        if (name, dynamic) not in _unfused:
            if shapes == "batch":
                for a in args:
                    if isinstance(a, torch.Tensor) and a.dim() >= 2:
                        torch._dynamo.maybe_mark_dynamic(a, 0)  # a batch of 1 still specialises
            try:
                return cfn(*args)
            except _LIMIT_HIT as e:  # only the limit: a compiler that fails for another reason is an error
                _unfused.add((name, dynamic))
                warnings.warn_explicit(f"kernel fusion: {name} runs unfused from now on ({type(e).__name__})",
                                       RuntimeWarning, "layersafe", 0)
        return fn(*args)

    return call


# --- finding and checking the modules ---------------------------------------------------------
def _family_module(decoder):
    mod = type(decoder).__module__
    fam = next((f for f in FAMILIES if mod == f"transformers.models.{f}.modeling_{f}"), None)
    return sys.modules[mod] if fam else None


def _plan(decoder) -> tuple[dict | None, str]:
    """(what to patch, "") or (None, why not)."""
    mod = _family_module(decoder)
    name = type(decoder).__name__
    if mod is None or not name.endswith("Model"):
        return None, f"{name} is not a {'/'.join(FAMILIES)} decoder"
    prefix = name[: -len("Model")]
    classes = [getattr(mod, prefix + s, None) for s in ("RMSNorm", "MLP", "Attention")]
    if None in classes:
        return None, f"{mod.__name__} has no {prefix}RMSNorm/MLP/Attention"
    norm_cls, mlp_cls, attn_cls = classes
    norms = [m for m in decoder.modules() if type(m) is norm_cls]
    mlps = [m for m in decoder.modules() if type(m) is mlp_cls]
    attns = [m for m in decoder.modules() if type(m) is attn_cls]
    if not norms or not mlps or not attns:
        return None, f"{name} has no {prefix}RMSNorm, MLP or Attention modules"
    if any("forward" in m.__dict__ for m in norms + mlps):  # hooked (e.g. accelerate): leave alone
        return None, f"{name}'s norm or MLP forward is already replaced (hooks)"
    attn_globals = inspect.unwrap(attn_cls.forward).__globals__
    if "apply_rotary_pos_emb" not in attn_globals:
        return None, f"{attn_cls.__name__}.forward does not call apply_rotary_pos_emb"
    why = _probe(norms[0], mlps[0], attn_globals["apply_rotary_pos_emb"])
    if why:
        return None, why
    return {"norms": norms, "mlps": mlps, "attns": attns, "globals": attn_globals, "shared": _shared(mlps, attns),
            "layers": _layer_plan(decoder, getattr(mod, prefix + "DecoderLayer", None), norm_cls)}, ""


def _shared(mlps, attns) -> set[int]:
    """ids of the projections used by more than one attention or MLP (weights tied across layers):
    they are never packed, since packing one group re-homes the weights another group's views hold."""
    seen = Counter(id(lin) for mods, names in ((mlps, ("gate_proj", "up_proj")), (attns, ("q_proj", "k_proj", "v_proj")))
                   for m in mods for lin in (getattr(m, n, None) for n in names) if lin is not None)
    return {i for i, n in seen.items() if n > 1}


def _layer_plan(decoder, layer_cls, norm_cls) -> list[tuple]:
    """``[(layer, the RMSNorm that reads its output)]`` when the decoder layers' forward can be
    replaced by :func:`_layer_forward` (it equals theirs on a probe input), else ``[]``: the other
    fusions still apply, the residual adds stay separate kernels."""
    layers = list(getattr(decoder, "layers", []))
    final = getattr(decoder, "norm", None)
    if layer_cls is None or not layers or type(final) is not norm_cls or not hasattr(decoder, "rotary_emb") \
            or any(type(m) is not layer_cls or "forward" in m.__dict__
                   or not all(type(getattr(m, a, None)) is norm_cls for a in ("input_layernorm", "post_attention_layernorm"))
                   for m in layers):
        return []
    nexts = [m.input_layernorm for m in layers[1:]] + [final]
    try:
        same = _probe_layer(decoder, layers[0], nexts[0])
    except Exception:  # a forward that needs inputs the probe does not give: leave the layers alone
        same = False
    return list(zip(layers, nexts)) if same else []


@torch.no_grad()
def _probe_layer(decoder, layer, nxt) -> bool:
    """Whether :func:`_layer_forward` (eager functions) gives the layer's own output, and the next
    norm of it, bit for bit on a small random input."""
    w = layer.input_layernorm.weight
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(2, 3, w.shape[-1], generator=g).to(w.device, w.dtype)
    pos = torch.arange(3, device=w.device)[None].expand(2, 3)
    kw = {"attention_mask": None, "position_ids": pos, "position_embeddings": decoder.rotary_emb(x, pos)}
    want = type(layer).forward(layer, x, **kw)
    if not isinstance(want, torch.Tensor):
        return False
    box: dict = {}
    got = _layer_forward(layer, nxt, add_rms_norm, box)(x, **kw)
    normed = _take(box, got, nxt)
    return torch.equal(got, want) and normed is not None and torch.equal(normed, nxt(want))


def _hooked(layers) -> bool:
    """Whether a hook could see or change what the fused layer forward skips or hands over: on a
    layer, its norms or the norm after it, or registered for every module. The fused forward does
    not call the post-attention norm module (nor the next norm, whose output it hands over), and a
    hook editing a layer's output in place would not reach a handed-over norm."""
    from torch.nn.modules import module as nn_module

    if nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks
               for layer, nxt in layers for m in (layer, layer.input_layernorm, layer.post_attention_layernorm, nxt))


def _take(box: dict, x: torch.Tensor, norm) -> torch.Tensor | None:
    """The normed ``x`` a layer left for ``norm`` (then forgotten), or None (always with autograd:
    a hand-over made without it would carry no gradient)."""
    s = box.get("next")
    if s is None or s[0] is not x or s[1] is not norm or torch.is_grad_enabled():
        return None
    box.clear()
    return s[2]


def _layer_forward(layer, nxt, add_norm, box: dict):
    """A Llama-style decoder layer's forward with each residual add fused into the RMSNorm that
    reads the sum (docs/design.md §4.4): the post-attention norm inside the layer, and -- without
    autograd -- ``nxt``, the next layer's input norm (or the final norm), whose output is left in
    ``box`` for it. Same ops in the same order as the layer's own forward (checked by
    :func:`_probe_layer`); a call it was not written for goes to the class forward."""
    post = layer.post_attention_layernorm

    def forward(hidden_states, *args, **kwargs):
        if args:  # the decoders pass all but the hidden states by keyword
            return type(layer).forward(layer, hidden_states, *args, **kwargs)
        normed = _take(box, hidden_states, layer.input_layernorm)
        if normed is None:
            normed = layer.input_layernorm(hidden_states)
        attn = layer.self_attn(hidden_states=normed, **kwargs)[0]
        h, normed = add_norm(attn, hidden_states, post.weight, post.variance_epsilon)
        out = layer.mlp(normed)
        if torch.is_grad_enabled():  # hand-overs only without autograd (see _take)
            return h + out
        h, normed = add_norm(out, h, nxt.weight, nxt.variance_epsilon)
        box["next"] = (h, nxt, normed)
        return h

    return forward


@torch.no_grad()
def _probe(norm, mlp, rope) -> str:
    """"" when the modules' eager outputs equal the pure functions' on a small random input."""
    w = norm.weight
    g = torch.Generator(device="cpu").manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=g).to(w.device, w.dtype)  # noqa: E731
    x = rnd(2, 3, w.shape[-1])
    if not torch.equal(norm(x), rms_norm(x, w, norm.variance_epsilon)):
        return f"{type(norm).__name__} does not compute LlamaRMSNorm's math"
    if not all(hasattr(mlp, a) for a in ("gate_proj", "up_proj", "down_proj")):
        return f"{type(mlp).__name__} is not a gated MLP"
    h = rnd(1, 2, mlp.gate_proj.in_features)
    if not torch.equal(mlp(h), mlp.down_proj(silu_mul(mlp.gate_proj(h), mlp.up_proj(h)))):
        return f"{type(mlp).__name__} is not down(silu(gate) * up)"
    q, k, cos, sin = rnd(2, 4, 3, 8), rnd(2, 2, 3, 8), rnd(2, 3, 8), rnd(2, 3, 8)
    if not all(torch.equal(a, b) for a, b in zip(rope(q, k, cos, sin), rotary(q, k, cos, sin))):
        return "apply_rotary_pos_emb differs from Llama's"
    return ""


# --- packed projections ---------------------------------------------------------------------
def _packable(linears) -> bool:
    """Plain, hook-free ``nn.Linear``s of one input width on one device and dtype, all with or all
    without bias. Trainable weights qualify: autograd and in-place optimizer steps work on views."""
    w0 = linears[0].weight
    return all(type(m) is torch.nn.Linear and "forward" not in m.__dict__
               and not m._forward_hooks and not m._forward_pre_hooks and m.weight.device == w0.device
               and m.weight.device.type != "meta" and m.weight.dtype == w0.dtype
               and m.in_features == linears[0].in_features and (m.bias is None) == (linears[0].bias is None)
               for m in linears)


class _Pack:
    """One matmul for several linears of the same input: their weights (and biases) re-homed as row
    blocks of one tensor, each module's ``weight`` a view of it (:meth:`intact` tells whether that
    still holds: a weight replaced, not updated in place, unpacks it). Only the modules hold the
    packed storage: once their weights are replaced (moved to another device, say), it is freed."""

    @torch.no_grad()
    def __init__(self, linears):
        self.linears = linears
        self.sizes = [m.out_features for m in linears]
        if self.intact():  # already packed (by another decoder's Fusion on this model): leave it be,
            return  # so that decoder's captured graphs keep reading live weights
        weight = torch.cat([m.weight for m in linears])
        bias = None if linears[0].bias is None else torch.cat([m.bias for m in linears])
        for m, w in zip(linears, weight.split(self.sizes)):
            m.weight.data = w
        if bias is not None:
            for m, b in zip(linears, bias.split(self.sizes)):
                m.bias.data = b

    @staticmethod
    def _whole(first: torch.Tensor, shape: tuple) -> torch.Tensor:
        """The packed tensor (contiguous, ``shape``), rebuilt from the storage of its first block."""
        storage, n = first.untyped_storage(), first.storage_offset() + math.prod(shape)
        if storage.nbytes() < n * first.element_size():  # set_ would grow (move) the weights' storage
            raise RuntimeError(f"packed projections: {tuple(shape)} does not fit the weights' storage")
        return first.new_empty(0).set_(storage, first.storage_offset(), shape)

    def intact(self) -> bool:
        """Whether every weight (and bias) is still the next row block of one storage."""
        for name in ("weight", "bias"):
            ts = [getattr(m, name) for m in self.linears]
            if ts[0] is None:
                continue
            ptr, step = ts[0].data_ptr(), ts[0].element_size() * (ts[0].shape[1] if ts[0].dim() == 2 else 1)
            for t, n in zip(ts, self.sizes):
                if t.data_ptr() != ptr or t.shape[0] != n or not t.is_contiguous() \
                        or t.untyped_storage().data_ptr() != ts[0].untyped_storage().data_ptr():
                    return False
                ptr += n * step
        return True

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        ms = self.linears
        if torch.is_grad_enabled() and any(p.requires_grad for m in ms for p in m.parameters()):
            # the rebuilt tensor is not the Parameters, and autograd needs those
            return [F.linear(x, m.weight, m.bias) for m in ms]
        rows = sum(self.sizes)
        bias = None if ms[0].bias is None else self._whole(ms[0].bias, (rows,))
        return list(F.linear(x, self._whole(ms[0].weight, (rows, ms[0].in_features)), bias).split(self.sizes, -1))


def _qkv_forwards(pack: _Pack):
    """Forwards for q_proj, k_proj, v_proj: q's call runs the packed matmul and keeps k's and v's
    outputs for their calls on the same input (the attention forward calls q, k, v in turn on one
    hidden-states tensor); a call on another input runs the module's own matmul."""
    box: dict = {}

    def q_fwd(x):
        q, box["k"], box["v"] = pack(x)
        box["x"] = x
        return q

    def kv_fwd(name, mod):
        def fwd(x):
            if box.get("x") is x and name in box:
                out = box.pop(name)
                if "k" not in box and "v" not in box:
                    box.pop("x")  # both taken: hold no activation past the attention
                return out
            return F.linear(x, mod.weight, mod.bias)
        return fwd

    q, k, v = pack.linears
    return q_fwd, kv_fwd("k", k), kv_fwd("v", v)


class Fusion:
    """The fused forwards of one decoder, swapped in only inside :meth:`active`."""

    def __init__(self, decoder):
        self.decoder = decoder
        self._checked = False
        self._plan: dict | None = None
        self._packs: dict[int, _Pack] = {}  # id(attention or MLP module) -> its packed projections
        self.packings = 0  # times weights were re-homed (packed, or a replaced weight packed again)

    @property
    def enabled(self) -> bool:
        """Whether the decoder's modules match (checked once, on the model's device)."""
        if not self._checked:
            self._checked = True
            self._plan, why = _plan(self.decoder)
            if self._plan is None:
                # one line on stderr ("layersafe:0: RuntimeWarning: ..."): no source line to quote
                warnings.warn_explicit(f"kernel fusion off: {why}; running unfused", RuntimeWarning, "layersafe", 0)
        return self._plan is not None

    def _pack(self, module, names) -> _Pack | None:
        """The packed projections ``names`` of ``module`` (packed on first use; re-packed when a
        weight was replaced), or None where they cannot be packed."""
        linears = [getattr(module, n, None) for n in names]
        if any(m is None for m in linears) or not _packable(linears) \
                or any(id(m) in self._plan["shared"] for m in linears):
            self._packs.pop(id(module), None)
            return None
        p = self._packs.get(id(module))
        if p is None or p.linears != linears or not p.intact():
            was = [m.weight.data_ptr() for m in linears]
            p = self._packs[id(module)] = _Pack(linears)
            self.packings += was != [m.weight.data_ptr() for m in linears]
        return p

    def layout(self) -> tuple:
        """Where each packed group's weights live now: CUDA graphs captured on one layout must not
        be replayed on another (a weight replaced and packed again frees the old storage)."""
        return tuple(m.weight.data_ptr() for p in self._packs.values() for m in p.linears)

    @contextmanager
    def active(self, *, dynamic: bool):
        """Inside, the decoder's RMSNorms, MLPs and rotary embedding run the compiled functions
        (``dynamic``: shape-polymorphic, for the prefill). Nothing of it outlives the block."""
        if not self.enabled or "forward" in self._plan["norms"][0].__dict__:  # off, or nested: already fused
            yield
            return
        p = self._plan
        norm_fn, mlp_fn, rope_fn = (compiled(n, dynamic) for n in ("rms_norm", "silu_mul", "rotary"))
        # Pack first (it allocates): nothing is patched yet if that fails.
        n_packs = self.packings
        # Decode steps only: the prefill's matmuls (~78 k rows at batch 128) are large already, and
        # there cuBLAS ran the packed q/k/v width 1 % slower (docs/benchmarks.md, 2026-12-01).
        pack = PACK and not dynamic
        gate_up = [self._pack(m, ("gate_proj", "up_proj")) if pack else None for m in p["mlps"]]
        qkv = [self._pack(a, ("q_proj", "k_proj", "v_proj")) if pack else None for a in p["attns"]]
        if self.packings != n_packs and torch.cuda.is_available():
            torch.cuda.empty_cache()  # the replaced weights' blocks: free memory is read to size batches
        box: dict = {}  # a layer's output normed for the next norm (_layer_forward)

        def norm_fwd(x, _n):
            normed = _take(box, x, _n) if box else None
            return norm_fn(x, _n.weight, _n.variance_epsilon) if normed is None else normed

        for n in p["norms"]:
            n.forward = functools.partial(norm_fwd, _n=n)
        patched = list(p["norms"])
        add_norm = compiled("add_rms_norm", dynamic)
        for layer, nxt in p["layers"] if not _hooked(p["layers"]) else ():
            layer.forward = _layer_forward(layer, nxt, add_norm, box)
            patched.append(layer)
        for m, gu in zip(p["mlps"], gate_up):
            if gu is None:
                m.forward = lambda x, _m=m: _m.down_proj(mlp_fn(_m.gate_proj(x), _m.up_proj(x)))
            else:
                m.forward = lambda x, _m=m, _p=gu: _m.down_proj(mlp_fn(*_p(x)))
            patched.append(m)
        for pk in filter(None, qkv):
            for lin, fwd in zip(pk.linears, _qkv_forwards(pk)):
                lin.forward = fwd
                patched.append(lin)
        g = p["globals"]
        orig_rope = g["apply_rotary_pos_emb"]
        g["apply_rotary_pos_emb"] = rope_fn
        try:
            limit = max(RECOMPILE_LIMIT, getattr(torch._dynamo.config, _LIMIT_KEY))
            with torch._dynamo.config.patch(**{_LIMIT_KEY: limit}):
                yield
        finally:
            box.clear()
            g["apply_rotary_pos_emb"] = orig_rope
            for m in patched:
                m.__dict__.pop("forward", None)
