"""The static decoder frees a KV cache as soon as it lets go of it, without waiting for Python's
cyclic garbage collector: a cache replaced by a longer one, and the cache of a released decoder
(``adapter.release_cache()``, what ``align --decode-cache release`` relies on). A reference cycle
through the cache's update wrapper used to keep the old tensors alive, so on a GPU a new cache was
allocated beside the old one (peak memory two caches; batch 128 of LLaVA-1.5-7B ran out of memory)."""

import gc
import weakref

import pytest
import torch

from layersafe.models.decode import StaticDecoder

torch.set_num_threads(1)  # 2 shared cores


@pytest.fixture()
def no_gc():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _kv(dec):
    return [weakref.ref(t) for layer in dec._st.cache.layers for t in (layer.keys, layer.values)]


@torch.no_grad()
def test_a_replaced_or_dropped_cache_is_freed_at_once(tiny_adapter, no_gc):
    model = tiny_adapter.model
    H = model.config.get_text_config().hidden_size
    g = torch.Generator().manual_seed(0)
    dec = StaticDecoder(model)
    dec.generate(torch.randn(2, 10, H, generator=g), torch.ones(2, 10, dtype=torch.long), max_new_tokens=4)
    first = _kv(dec)
    assert len(first) == 2 * model.config.get_text_config().num_hidden_layers and all(r() is not None for r in first)
    long = torch.randn(2, 600, H, generator=g)  # needs a longer cache than REUSE_SLACK covers: a new state
    import transformers

    real_init, at_alloc = transformers.StaticCache.__init__, []

    def init(self, *a, **k):  # on a GPU the new cache is filled while the state is built (graph capture)
        at_alloc.append(all(r() is None for r in first))
        real_init(self, *a, **k)

    transformers.StaticCache.__init__ = init
    try:
        dec.generate(long, torch.ones(2, 600, dtype=torch.long), max_new_tokens=4)
    finally:
        transformers.StaticCache.__init__ = real_init
    assert at_alloc == [True]  # the old cache was gone before the new one was made
    second = _kv(dec)
    del dec
    assert all(r() is None for r in second)


@torch.no_grad()
def test_release_cache_frees_the_kv_tensors(tiny_adapter, no_gc):
    from layersafe.data.base import Sample
    from layersafe.rl.onpolicy import project_views, tokenize_samples

    items = tokenize_samples(tiny_adapter, [Sample(id="a", prompt="hi", image="skimage:coffee")])
    (feats,) = project_views(tiny_adapter, items, [[2]])
    tiny_adapter.generate(items, feats, max_new_tokens=3, cache="static")
    refs = _kv(tiny_adapter._static)
    tiny_adapter.release_cache()
    assert all(r() is None for r in refs)
