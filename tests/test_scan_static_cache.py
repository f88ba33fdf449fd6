"""The static-cache decoder (layersafe.models.decode) gives stock generate's tokens.

On CPU the decode step runs eagerly; on CUDA the same step is replayed as a CUDA graph
(benchmarks/bench_scan.py checks that path on the GPU)."""

import pytest
import torch

from layersafe.errors import UserError
from layersafe.io import read_jsonl
from layersafe.models.base import left_pad
from layersafe.models.decode import StaticDecoder
from layersafe.scan import ScanConfig, run_scan


def scan(adapter, dataset, out, **kw):
    cfg = dict(model="unused", dataset=str(dataset), layers="all", out=str(out), max_new_tokens=12,
               batch_size=4, judges=[])
    cfg.update(kw)
    run_scan(ScanConfig(**cfg), adapter=adapter, progress=False, log=lambda m: None)
    rows = read_jsonl(out / "generations.jsonl")
    return {(r["sample_id"], r["layer"]): (r["response"], r["response_tokens"], r["finish_reason"]) for r in rows}


@pytest.mark.parametrize("batch_size", [1, 4])
def test_static_scan_equals_dynamic_scan(tiny_adapter, small_dataset, tmp_path, batch_size):
    dyn = scan(tiny_adapter, small_dataset, tmp_path / "dyn", cache="dynamic", batch_size=batch_size)
    sta = scan(tiny_adapter, small_dataset, tmp_path / "sta", cache="static", batch_size=batch_size)
    assert len(dyn) == 5 * 7
    assert sta == dyn
    assert len({v[0] for v in dyn.values()}) > 10  # real, varied text, not one repeated answer


def batch_embeds(adapter, prompts, layer):
    from layersafe.data.base import load_image

    items = [adapter.tokenize(adapter.build_prompt(p), load_image("skimage:" + img))
             for p, img in zip(prompts, ["coffee", "astronaut", "moon"])]
    feats = adapter.features(adapter.encode(items, [layer]), layer, range(len(items)))
    ids, attn = left_pad([it["input_ids"] for it in items], adapter.tokenizer.pad_token_id)
    emb = adapter.model.get_input_embeddings()(ids)
    mask = (ids == adapter.image_token_id).unsqueeze(-1).expand_as(emb)
    return emb.masked_scatter(mask, torch.cat(list(feats))), attn


@torch.no_grad()
def test_stops_at_eos_like_generate(tiny_adapter):
    """Rows that stop at different steps (before and after the early-stop check at step 16) keep
    the tokens generate gives them, up to and including the stop token."""
    import copy

    model, pad = tiny_adapter.model, tiny_adapter.tokenizer.pad_token_id
    emb, attn = batch_embeds(tiny_adapter, ["Hi", "Write a long story about a dragon please", "What?"], 3)
    gc = copy.deepcopy(model.generation_config)
    gc.eos_token_id = None
    free = model.generate(inputs_embeds=emb, attention_mask=attn, max_new_tokens=40, do_sample=False,
                          generation_config=gc, pad_token_id=pad).tolist()
    stops = sorted({free[0][4], free[1][18], free[2][33]})  # stop tokens met at different steps
    gc.eos_token_id = stops
    ref = model.generate(inputs_embeds=emb, attention_mask=attn, max_new_tokens=40, do_sample=False,
                         generation_config=gc, pad_token_id=pad).tolist()
    got = StaticDecoder(model).generate(emb, attn, max_new_tokens=40, eos_ids=stops).tolist()
    ends = []
    for r, g in zip(ref, got):
        n = next(i for i, t in enumerate(r) if t in stops) + 1
        assert g[:n] == r[:n]
        ends.append(n)
    assert len(set(ends)) == 3 and max(ends) > 16, ends


@torch.no_grad()
def test_sampling_draws_from_softmax_over_temperature(tiny_adapter):
    """First sampled token of 4000 copies of one prompt vs softmax(logits/T) from a forward pass."""
    model, T, n = tiny_adapter.model, 1.7, 4000
    emb, attn = batch_embeds(tiny_adapter, ["Describe the image"], 2)
    p = torch.softmax(model(inputs_embeds=emb, attention_mask=attn).logits[0, -1].float() / T, -1)
    torch.manual_seed(0)
    got = StaticDecoder(model).generate(emb.expand(n, -1, -1), attn.expand(n, -1), max_new_tokens=1,
                                        temperature=T)[:, 0]
    freq = torch.bincount(got, minlength=p.numel()).float() / n
    tv = 0.5 * (freq - p).abs().sum().item()
    assert p.max() < 0.5  # a spread distribution, so the check means something
    assert tv < 0.08, tv  # sampling noise alone gives about 0.05 here; T ignored gives far more


def test_static_refuses_truncated_sampling(tiny_adapter, small_dataset, tmp_path):
    with pytest.raises(UserError, match="static cache"):
        scan(tiny_adapter, small_dataset, tmp_path / "s", cache="static", do_sample=True, top_p=0.9)


def test_bad_cache_mode(tiny_adapter, small_dataset, tmp_path):
    with pytest.raises(UserError, match="--cache"):
        scan(tiny_adapter, small_dataset, tmp_path / "s", cache="paged")


@torch.no_grad()
def test_reused_longer_cache_gives_same_tokens(tiny_adapter):
    """A decoder whose cache was sized for a longer call reuses it (masked extra slots)."""
    model = tiny_adapter.model
    emb, attn = batch_embeds(tiny_adapter, ["Hi", "What is this?", "Describe"], 4)
    dec = StaticDecoder(model)
    long = dec.generate(emb, attn, max_new_tokens=150)
    cache = dec._st.cache
    short = dec.generate(emb, attn, max_new_tokens=6)
    assert dec._st.cache is cache  # reused, not rebuilt
    assert short.tolist() == StaticDecoder(model).generate(emb, attn, max_new_tokens=6).tolist()
    assert short.tolist() == long[:, :6].tolist()


def test_llava_next_static_equals_dynamic(tmp_path):
    """LLaVA-NeXT shares LlavaAdapter.generate, so it takes the static path too."""
    from family_builders import build_tiny_llava_next

    from layersafe.models import load_vlm

    model_dir = build_tiny_llava_next(tmp_path / "next")
    ad = load_vlm(str(model_dir), device="cpu", dtype="float32")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"id": "s{i}", "prompt": "{p}", "image": "skimage:{img}"}}\n' for i, (p, img) in
                            enumerate([("Describe it", "coffee"), ("How do I pick a lock?", "astronaut"),
                                       ("What colour is it?", "rocket")])))
    dyn = scan(ad, data, tmp_path / "dyn", cache="dynamic", max_new_tokens=8, layers="0,2,4")
    sta = scan(ad, data, tmp_path / "sta", cache="static", max_new_tokens=8, layers="0,2,4")
    assert len(dyn) == 9 and sta == dyn


def test_seeded_gumbel_draws_from_softmax_and_ignores_the_batch():
    """argmax(z/T + noise) over 50 000 seeds matches softmax(z/T) (each share within 4.5 standard
    errors); a row's noise depends on its seed, step and token only."""
    from layersafe.models.decode import seeded_gumbel

    z, T, n = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, -3.0]), 0.7, 50_000
    p = torch.softmax(z / T, -1)
    counts = torch.bincount((z / T + seeded_gumbel(torch.arange(n), 5, 6)).argmax(-1), minlength=6).float()
    se = (p * (1 - p) / n).sqrt()
    assert ((counts / n - p).abs() <= 4.5 * se + 1e-4).all(), (counts / n, p)
    a, b = seeded_gumbel(torch.tensor([11, 7]), 3, 6), seeded_gumbel(torch.tensor([7, 2, 9]), 3, 6)
    assert torch.equal(a[1], b[0])
    assert not torch.equal(a[1], seeded_gumbel(torch.tensor([7]), 4, 6)[0])  # a new step, new noise
    g = seeded_gumbel(torch.arange(n), 0, 2).flatten()
    assert abs(g.mean().item() - 0.5772) < 0.02 and abs(g.std().item() - 1.2825) < 0.02  # Gumbel(0, 1)


def test_seeded_sampling_same_tokens_static_dynamic_and_alone(tiny_adapter):
    """Seeded sampling: the static decoder and stock generate draw the same tokens, and a row
    draws the same tokens alone as in a batch with other (differently padded) rows."""
    from layersafe.data.base import load_image

    ad = tiny_adapter
    prompts = ["Hi", "Write a long story about a dragon please", "What?"]
    items = [ad.tokenize(ad.build_prompt(p), load_image("skimage:" + img)) for p, img in zip(prompts, ["coffee", "astronaut", "moon"])]
    feats = ad.features(ad.encode(items, [3]), 3, range(3))
    gc = ad.model.generation_config
    old, gc.top_k = gc.top_k, 0
    try:
        kw = dict(max_new_tokens=10, do_sample=True, temperature=1.5, sample_seeds=[5, 6, 7])
        dyn = [g.tokens for g in ad.generate(items, feats, cache="dynamic", **kw)]
        sta = [g.tokens for g in ad.generate(items, feats, cache="static", **kw)]
        alone = ad.generate(items[1:2], feats[1:2], cache="dynamic", **{**kw, "sample_seeds": [6]})[0].tokens
        other = [g.tokens for g in ad.generate(items, feats, cache="dynamic", **{**kw, "sample_seeds": [1, 2, 3]})]
    finally:
        gc.top_k = old
    assert sta == dyn and alone == dyn[1]
    assert other != dyn and len({tuple(t) for t in dyn}) == 3
