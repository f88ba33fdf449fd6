"""Decoding over a static KV cache, with the one-token step replayed as a CUDA graph.

Why: stock ``generate`` with the dynamic cache spends most of each decode step in Python and
host syncs (26-48 ms a step at batch 64 for a 7B LLaVA on an H200, against an 8.4 ms HBM
floor; this path: 13.7 ms; docs/benchmarks.md). Here the cache is transformers' own ``StaticCache`` (fixed shapes,
written in place at its on-device ``cumulative_length``), the attention mask is built on the
device from a step counter, and on CUDA the whole step -- decoder, ``lm_head``, token choice,
counters -- is captured once as a CUDA graph and replayed: the host does not wait on the GPU
until the end, except for an all-rows-stopped check every ``STOP_CHECK_EVERY`` steps. Each step's
attention reads only the cache slots up to the live length rounded up to ``DECODE_WINDOW`` (one
graph per window), and the prefill's only the prompt's slots, not the whole padded cache.
On CPU the same step runs eagerly; tests compare its tokens with stock ``generate``.
``fuse=True`` (opt-in) runs the layers' RMSNorms (each with the residual add before it), rotary
embedding, SiLU-times-up and cache writes as compiled kernels, in the prefill and in the captured
steps (layersafe/models/fuse.py).

Token choice: greedy (argmax), or sampling from softmax(logits / T) with no top-k/top-p
truncation (the exponential-race form of the Gumbel-max trick, as vLLM does), or the same
sampling with per-row seeds (:func:`seeded_gumbel`). Callers fall back to stock ``generate`` for
anything else.
"""

from __future__ import annotations

import inspect
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch

STOP_CHECK_EVERY = 16  # steps between host checks that every row has produced a stop token
LEN_BUCKET = 64  # cache length granularity: nearby prompt lengths reuse one captured graph
REUSE_SLACK = 256  # a cache up to this many slots longer than needed is reused, not re-captured
# Decode attention reads only the first W cache slots, W = the live length rounded up to this
# (one captured graph per W): masked slots past the live length are not read at all (issue 21).
# 0 turns it off (every step reads the whole cache); read at each generate call.
# 16: ~9 graphs for 128 new tokens, each captured once per cache in ~3 steps' time; against 32 it
# reads ~8 fewer stale slots a step (batch 128 on an H200: 16.36 -> 16.25 ms; 8: 16.19 ms with twice
# the graphs; docs/benchmarks.md).
DECODE_WINDOW = 16


# --- per-row seeded sampling ------------------------------------------------------------------
# A row's draw must not depend on which other rows share its batch (or process): L-PPO run on
# N processes has to sample what one process samples. So the noise is a counter-based hash of
# (row seed, step, token id) -- no generator state, the same on CPU and CUDA, graph-capturable.
_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for int64 ``x`` in [0, 2**32), in 16-bit halves so nothing overflows int64."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 (C. Wellons): a 32-bit integer hash with full avalanche."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def seeded_gumbel(seeds: torch.Tensor, step, vocab: int) -> torch.Tensor:
    """Gumbel(0, 1) noise ``[B, vocab]`` (float32) that depends only on each row's seed, the
    decode step and the token id. ``argmax(logits / T + noise)`` is a draw from softmax(logits / T)."""
    step = torch.as_tensor(step, dtype=torch.long, device=seeds.device)
    row = _hash32((seeds.long() & _M32) ^ _hash32((step + 0x9E3779B9) & _M32))  # [B]
    tok = _mul32(torch.arange(vocab, device=seeds.device), 0x9E3779B1)  # [V]
    h = _hash32(_hash32((row[:, None] + tok[None, :]) & _M32) ^ row[:, None])
    u = ((h >> 8).float() + 0.5) * (1.0 / (1 << 24))  # 24 bits: exact in float32, never 0 or 1
    return -torch.log(-torch.log(u))


def _window_cache(cache, dec: "StaticDecoder") -> None:
    """Make each cache layer's update return only the first ``dec._window`` slots (all when None);
    the slots are still written in place in the full tensors. The wrapper holds the layer and the
    decoder weakly: a strong reference would make a cycle (layer -> wrapper -> layer, decoder ->
    cache -> wrapper -> decoder) that keeps a dropped cache's GPU tensors alive until Python's
    cyclic GC happens to run, so a new cache would be allocated beside the old one."""
    dec_ref = weakref.ref(dec)

    def windowed(layer):
        layer_ref = weakref.ref(layer)

        def update(key_states, value_states, *a, **k):
            dec = dec_ref()
            if dec is None:  # the cache was kept past its decoder (only the decoder may drive it)
                raise RuntimeError("this static KV cache's StaticDecoder is gone: generate through a new decoder")
            rows = dec._expand
            if rows is not None:  # a shared prefix: computed once per group, written into every row of it
                _write(dec, layer_ref(), key_states[rows], value_states[rows], dec._write_at, a, k)
                return key_states, value_states  # the prefix attends over itself only
            keys, values = _write(dec, layer_ref(), key_states, value_states, dec._write_at, a, k)
            w = dec._window
            return (keys, values) if w is None else (keys[:, :, :w], values[:, :, :w])
        return update

    def _write(dec, layer, key_states, value_states, at, a, k):
        # Anything but a plain StaticLayer goes through the layer's own update.
        n = key_states.shape[-2]
        if not _plain_static(layer):
            return type(layer).update(layer, key_states, value_states, *a, **k)
        if n > 1 and at is not None:
            # A prefill's tokens go to slots [at, at + n) as slice copies (``at``: where the decoder
            # has just reset the counter): index_copy_ along the slot axis moved them at a fifth of
            # the copy bandwidth (issue 21, docs/benchmarks.md).
            dec._kernel("kv_fill", True)(layer.keys, layer.values, key_states, value_states, at)
        elif n == 1:
            # A decode step writes at the decoder's own slot counter (what every layer's count would be;
            # StaticLayer.update's arange + add for the slot index, and each layer's counter add,
            # would be three more kernels per layer in every captured step). The layers' counters
            # then stay at the prompt's length until the next prefill resets them.
            step = dec._slot is not None
            slot = dec._slot if step else layer.cumulative_length.view(1)
            dec._kernel("kv_write", False)(layer.keys, layer.values, key_states, value_states, slot)
            if step:
                return layer.keys, layer.values
        else:
            return type(layer).update(layer, key_states, value_states, *a, **k)
        layer.cumulative_length.add_(n)
        return layer.keys, layer.values

    for layer in cache.layers:
        layer.update = windowed(layer)


def _reset_past(cache, P: int) -> None:
    """``cache.reset()`` for a prefill of P tokens: the write counters to 0 and the slots from P on
    zeroed (masked, but a window reads some of them before they are written: stale non-finite
    values would leak through the attention's P @ V as NaN). Slots [0, P) are not zeroed: the
    prefill overwrites them in every row (issue 21: the whole-cache zeroing was 12.8 ms of a batch-128
    prefill). Layers other than plain ``StaticLayer`` get their own full reset."""
    for layer in cache.layers:
        if _plain_static(layer):
            layer.keys[:, :, P:].zero_()
            layer.values[:, :, P:].zero_()
            layer.cumulative_length.zero_()
        else:
            layer.reset()


def _static_update():
    from transformers.cache_utils import StaticLayer

    return StaticLayer.update


def _plain_static(layer) -> bool:
    """A plain ``StaticLayer`` (sliding-window layers write elsewhere) whose tensors and one-element
    on-device write counter exist: the cases the decoder writes and resets itself."""
    c = getattr(layer, "cumulative_length", None)
    return (type(layer).update is _static_update() and getattr(layer, "is_initialized", False)
            and isinstance(c, torch.Tensor) and c.numel() == 1)


@dataclass
class _State:
    key: tuple
    cache: object
    pad: torch.Tensor  # [B, L] bool: key slot holds a real token (generated slots are True)
    slots: torch.Tensor  # [L] 0..L-1
    cur: torch.Tensor  # [] slot of the token being fed (= the cache's cumulative length)
    pos: torch.Tensor  # [B, 1] its position id
    tok: torch.Tensor  # [B, 1] the token being fed
    nxt: torch.Tensor  # [B] the token chosen by the step
    inv_temp: torch.Tensor  # [] 1/T (sampling only)
    seeds: torch.Tensor  # [B] per-row sampling seeds (seeded sampling only)
    n: torch.Tensor  # [] index of the new token being chosen (seeded sampling only)
    packed: tuple = ()  # where the fused projections' packed weights lived when the graphs were captured
    graph: object = None  # the whole-cache step
    graphs: dict = field(default_factory=dict)  # window W -> the step reading slots [0, W) only


class StaticDecoder:
    """Greedy or plain-temperature decoding for a transformers causal (V)LM from ``inputs_embeds``.

    The captured graph replays the module code path taken at capture time: build a new
    ``StaticDecoder`` after changing the model's structure (merging or disabling adapters).
    Weights updated in place (an optimizer step on LoRA weights) are seen by later replays.
    """

    def __init__(self, model, *, use_graph: bool | None = None, fuse: bool = False):
        self.model = model
        self.decoder = model.get_decoder()
        self.fuse = fuse
        if fuse:
            from .fuse import Fusion

            self._fusion = Fusion(self.decoder)
        self.lm_head = model.get_output_embeddings()
        # transformers 5.24 renamed the decoder's past_key_values to cache (old name deprecated).
        self._cache_kw = "cache" if "cache" in inspect.signature(self.decoder.forward).parameters else "past_key_values"
        self.use_graph = use_graph
        self._st: _State | None = None
        self._window: int | None = None  # slots the step attends over (None: the whole cache)
        self._expand: torch.Tensor | None = None  # [B] prefix row of each batch row, while a prefix is written
        self._write_at: int | None = None  # first slot of the multi-token write under way (prefill), if known
        self._slot: torch.Tensor | None = None  # [1] the decode step's cache slot (= _State.cur), during a step

    @staticmethod
    def supports(model) -> bool:
        """Masks are passed as 4-D tensors, which the sdpa and eager attention paths take as is."""
        impl = getattr(model.config.get_text_config(decoder=True), "_attn_implementation", None) or "sdpa"
        return impl in ("sdpa", "eager") and hasattr(model, "get_decoder")

    # ---- masks -----------------------------------------------------------------------------
    def _to_attn_mask(self, keep: torch.Tensor, dtype) -> torch.Tensor:
        """The additive float mask (0 where ``keep``, else very negative) every layer's attention adds.
        Made once per forward, not per layer: torch's SDPA turns a boolean mask into this same
        float mask (0 / -inf in the query's dtype) inside every call -- one more kernel in each of
        the layers of every decode step (issue 21, docs/benchmarks.md)."""
        impl = getattr(self.model.config.get_text_config(decoder=True), "_attn_implementation", None) or "sdpa"
        # eager attention adds the mask to the scores: its finite minimum keeps a fully masked row finite
        fill = torch.finfo(dtype).min if impl == "eager" else float("-inf")
        return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(~keep, fill)

    def _choose(self, logits: torch.Tensor, st: _State, sample) -> torch.Tensor:
        """``sample``: None/False = greedy, "seeded" = per-row seeded draw, anything else = torch RNG draw."""
        logits = logits.float()
        if not sample:
            return logits.argmax(-1)
        if sample == "seeded":
            return (logits * st.inv_temp + seeded_gumbel(st.seeds, st.n, logits.shape[-1])).argmax(-1)
        probs = torch.softmax(logits * st.inv_temp, -1)
        # argmax(p / E), E ~ Exp(1), is a draw from p (no host sync, unlike torch.multinomial).
        return (probs / torch.empty_like(probs).exponential_()).argmax(-1)

    # ---- one decode step (what the CUDA graph holds) ---------------------------------------
    def _step(self, st: _State, sample, dtype) -> None:
        w = self._window or st.key[1]
        keep = st.pad[:, None, None, :w] & (st.slots[:w] <= st.cur)[None, None, None, :]
        self._slot = st.cur.view(1)
        try:
            h = self.decoder(input_ids=st.tok, attention_mask=self._to_attn_mask(keep, dtype), position_ids=st.pos,
                             use_cache=True, **{self._cache_kw: st.cache}).last_hidden_state
        finally:
            self._slot = None
        st.nxt.copy_(self._choose(self.lm_head(h[:, -1]), st, sample))
        st.tok.copy_(st.nxt[:, None])
        st.n.add_(1)
        st.cur.add_(1)
        st.pos.add_(1)

    def _state(self, B: int, L: int, device, dtype, sample, P: int, N: int) -> _State:
        key = (B, L, str(device), dtype, sample)
        old = self._st
        # A somewhat longer cache serves too: its extra slots stay masked (and past the windows, unread).
        # Not once the fused projections were packed elsewhere (fuse.py): the graphs read the old storage.
        if old is not None and old.key[0] == B and old.key[2:] == key[2:] and L <= old.key[1] <= L + REUSE_SLACK \
                and old.packed == self._packed():
            return old
        del old  # free the old cache and graphs before allocating new ones (the capture below allocates)
        self._st = None
        from transformers import StaticCache

        z = lambda *s: torch.zeros(s, dtype=torch.long, device=device)  # noqa: E731
        st = _State(key=key, cache=StaticCache(config=self.model.config, max_cache_len=L),
                    pad=torch.ones(B, L, dtype=torch.bool, device=device),
                    slots=torch.arange(L, device=device), cur=z(), pos=z(B, 1), tok=z(B, 1), nxt=z(B),
                    inv_temp=torch.ones((), device=device), seeds=z(B), n=z())
        _window_cache(st.cache, self)
        st.packed = self._packed()
        if self._graphs_on(device):
            st.graph = self._capture(st, sample, dtype, None)
            # Captured now, with the whole-cache graph, so all share its module path; a later call
            # with a shorter prompt replays the whole-cache graph for windows not captured here.
            for w in self._windows(P, N, L, DECODE_WINDOW):
                st.graphs[w] = self._capture(st, sample, dtype, w)
        self._st = st
        return st

    def _packed(self) -> tuple:
        return self._fusion.layout() if self.fuse else ()

    def _kernel(self, name: str, dynamic: bool):
        """fuse.py's function ``name``: compiled when this decoder fuses, else the same ops run eagerly."""
        from . import fuse

        return fuse.compiled(name, dynamic) if self.fuse and self._fusion.enabled else getattr(fuse, name)

    def _fused(self, *, dynamic: bool):
        """The fused kernels while inside (``fuse=True``); ``dynamic`` for the prefill's changing shapes."""
        return self._fusion.active(dynamic=dynamic) if self.fuse else nullcontext()

    def _graphs_on(self, device) -> bool:
        return self.use_graph if self.use_graph is not None else device.type == "cuda"

    @contextmanager
    def _attending(self, window: int | None):
        """Attention inside reads cache slots [0, window) only (None: the whole cache)."""
        self._window = window
        try:
            yield
        finally:
            self._window = None

    @contextmanager
    def _writing_at(self, slot: int):
        """The multi-token cache writes inside start at ``slot`` (each layer's counter, reset before
        the prefill, says the same on the device)."""
        self._write_at = slot
        try:
            yield
        finally:
            self._write_at = None

    def _capture(self, st: _State, sample, dtype, window: int | None):
        """The step reading ``window`` slots (None: all) as a CUDA graph. Runs steps on the cache:
        call it only before the cache is reset for a prefill."""
        device = st.slots.device
        with self._attending(window):
            # Warm up on a side stream (allocates the cache, picks kernels), then capture.
            s = torch.cuda.Stream(device)
            s.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(s):
                for _ in range(2):
                    st.cur.zero_()  # stay inside the window (the cache is reset before use)
                    st.cache.reset()
                    self._step(st, sample, dtype)
            torch.cuda.current_stream(device).wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):  # own memory pool: a decode step's activations are small
                self._step(st, sample, dtype)
        return g

    @staticmethod
    def _windows(P: int, N: int, L: int, every: int) -> list[int]:
        """The attention windows (< L) of a call with prompt length P and N new tokens, ascending:
        multiples of ``every`` from the first above P to the first reaching P + N - 1."""
        if every <= 0:
            return []
        return list(range(-(-(P + 1) // every) * every, min(L, P + N - 1 + every), every))

    def _write_prefix(self, st: _State, embeds: torch.Tensor, rows, dtype) -> None:
        """Run the U shared prefixes ``[U, Q, D]`` (causal, no padding, positions 0..Q-1) and write
        each one's keys and values into the cache slots [0, Q) of its rows (``rows[b]`` = the
        prefix of batch row b): the prefill's largest part, done once per prefix, not per row."""
        U, Q, _ = embeds.shape
        dev = embeds.device
        rows = torch.as_tensor(rows, dtype=torch.long, device=dev)
        if rows.shape != (st.key[0],) or int(rows.min()) < 0 or int(rows.max()) >= U:
            raise ValueError(f"prefix rows must give each of the {st.key[0]} batch rows one of {U} prefixes")
        q = torch.arange(Q, device=dev)
        causal = (q[None, :] <= q[:, None])[None, None].expand(U, 1, Q, Q)
        self._expand = rows
        try:
            with self._writing_at(0), self._fused(dynamic=True):
                self.decoder(inputs_embeds=embeds, attention_mask=self._to_attn_mask(causal, dtype),
                             position_ids=q[None].expand(U, Q), use_cache=True, **{self._cache_kw: st.cache})
        finally:
            self._expand = None

    # ---- public ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, *, max_new_tokens: int,
                 eos_ids=(), temperature: float | None = None, seeds=None, prefix=None,
                 cache_prompt_len: int | None = None) -> torch.Tensor:
        """``[B, max_new_tokens]`` new token ids for a left-padded batch (greedy when ``temperature``
        is None; with ``seeds``, one int per row, sampling is seeded per row). Tokens after a row's
        first stop token are arbitrary: cut there.

        ``prefix=(prefix_embeds [U, Q, D], rows [B])``: rows sharing their first Q tokens (system
        prompt + image) get them from one of U prefixes, whose keys and values are computed once
        and written into each of its rows' cache slots [0, Q) (docs/design.md §4.4, prefix reuse).
        ``inputs_embeds`` is then only the rest of each row ``[B, S]`` (left-padded: the pads sit
        between prefix and text, masked) and ``attention_mask`` covers both, ``[B, Q + S]``."""
        B, S, _ = inputs_embeds.shape
        Q = 0 if prefix is None else int(prefix[0].shape[1])
        P = Q + S
        if attention_mask.shape != (B, P):
            raise ValueError(f"attention_mask {tuple(attention_mask.shape)}: expected {(B, P)}")
        N = max_new_tokens
        dev, dtype = inputs_embeds.device, inputs_embeds.dtype
        sample = None if temperature is None else "seeded" if seeds is not None else "torch"
        # ``cache_prompt_len``: size the cache (and capture the windows) for prompts this long at least,
        # e.g. the longest of a data-parallel global batch, so that every process keeps one cache as
        # long as one process holding the whole batch would (no re-capture when a later step's rows
        # are longer than this process's first ones). Which slots are read does not change.
        Pc = max(P, cache_prompt_len or 0)
        L = -(-(Pc + N) // LEN_BUCKET) * LEN_BUCKET
        with self._fused(dynamic=False):  # a new state captures its graphs here
            st = self._state(B, L, dev, dtype, sample, P, N + Pc - P)  # windows from P's to Pc + N's
        L = st.key[1]
        windows = self._windows(P, N, L, DECODE_WINDOW)
        _reset_past(st.cache, P)
        attn = attention_mask.bool()
        st.pad.fill_(True)
        st.pad[:, :P] = attn
        if sample:
            st.inv_temp.fill_(1.0 / temperature)
        if sample == "seeded":
            st.seeds.copy_(torch.as_tensor(seeds, dtype=torch.long))
        st.n.fill_(0)

        # Prefill (eager: its shape changes with every batch). Pad queries also see themselves,
        # so no row of the mask is empty; real tokens never see pad keys.
        q = torch.arange(P, device=dev)
        keep = (attn[:, None, None, :] & (st.slots[None, None, None, :P] <= q[None, None, :, None])) \
            | (st.slots[:P][None, None, None, :] == q[None, None, :, None])
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        # The prompt's attention reads only its P slots (those past it are not yet written);
        # DECODE_WINDOW = 0 keeps the old whole-cache read.
        if DECODE_WINDOW <= 0:
            keep = torch.cat([keep, keep.new_zeros(B, 1, P, L - P)], -1)
        if prefix is not None:
            self._write_prefix(st, *prefix, dtype)
            keep, positions = keep[:, :, Q:], positions[:, Q:]
        with self._attending(P if DECODE_WINDOW > 0 else None), self._writing_at(Q), self._fused(dynamic=True):
            h = self.decoder(inputs_embeds=inputs_embeds, attention_mask=self._to_attn_mask(keep, dtype),
                             position_ids=positions, use_cache=True, **{self._cache_kw: st.cache}).last_hidden_state
        out = torch.empty(B, N, dtype=torch.long, device=dev)
        out[:, 0] = self._choose(self.lm_head(h[:, -1]), st, sample)
        st.tok.copy_(out[:, :1])
        st.n.fill_(1)
        st.cur.fill_(P)
        st.pos.copy_(attention_mask.long().sum(-1, keepdim=True))
        eos = torch.tensor(sorted(set(eos_ids)), dtype=torch.long, device=dev)

        n = 1
        wi = 0
        while n < N:
            # this step feeds the token at slot P + n - 1: it attends over slots [0, P + n)
            while wi < len(windows) and windows[wi] < P + n:
                wi += 1
            w = windows[wi] if wi < len(windows) else None
            if st.graph is not None:
                st.graphs.get(w, st.graph).replay()
            else:
                with self._attending(w), self._fused(dynamic=False):
                    self._step(st, sample, dtype)
            out[:, n] = st.nxt
            n += 1
            if len(eos) and n % STOP_CHECK_EVERY == 0 and bool(torch.isin(out[:, :n], eos).any(1).all()):
                break  # every row has stopped: the rest would be thrown away
        if n < N:
            out[:, n:] = eos[0]
        return out
