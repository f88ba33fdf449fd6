"""Prefix reuse in the static-cache decoder (issue 21): rows that share an image at a layer compute
their common prompt start (system prompt + image tokens) once; each row prefills only its own text.
The tokens must equal the whole-row path and stock ``generate`` (fp32), and the scan must write the
rows it writes without reuse; on a GPU (``pytest -m gpu``) the same through the CUDA graphs."""

import json

import pytest
import torch

from layersafe.data.base import load_image
from layersafe.models.base import shared_prefix
from layersafe.models.decode import StaticDecoder

torch.set_num_threads(1)  # 2 shared cores

PROMPTS = ["Hi", "Write a long story about a dragon please", "What?"]
PHOTOS = ["coffee", "astronaut"]


def _batch(adapter, layers=(1, 3)):
    """Rows (prompt x photo x layer), the layer-major way the scan batches them: 12 rows, 4 prefixes."""
    items = [adapter.tokenize(adapter.build_prompt(p), load_image("skimage:" + ph)) for ph in PHOTOS for p in PROMPTS]
    enc = adapter.encode(items, list(layers))
    rows, feats, keys = [], [], []
    for layer in layers:
        feats += adapter.features(enc, layer, range(len(items)))
        rows += items
        keys += [(ph, layer) for ph in PHOTOS for _ in PROMPTS]
    return rows, feats, keys


def _tokens(gens):
    return [g.tokens for g in gens]


def test_shared_prefix_splits_by_key_and_checks_ids(tiny_adapter):
    rows, _, keys = _batch(tiny_adapter)
    q, first, where = shared_prefix(rows, keys, tiny_adapter.image_token_id)
    ids = rows[0]["input_ids"]
    assert q == int(torch.nonzero(ids == tiny_adapter.image_token_id).max()) + 1 and q < len(ids)
    assert first == [0, 3, 6, 9] and where == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert shared_prefix(rows, list(range(len(rows))), tiny_adapter.image_token_id) is None  # nothing shared
    bad = [dict(r) for r in rows]
    bad[1]["input_ids"] = bad[1]["input_ids"].clone()
    bad[1]["input_ids"][0] += 1  # same key, different prompt start: not a shared prefix
    assert shared_prefix(bad, keys, tiny_adapter.image_token_id) is None


@torch.no_grad()
def test_prefix_reuse_tokens_equal_whole_rows_and_generate(tiny_adapter, monkeypatch):
    rows, feats, keys = _batch(tiny_adapter)
    n = 24
    calls = []
    real = StaticDecoder._write_prefix

    def spy(self, st, embeds, where, dtype):
        calls.append((tuple(embeds.shape[:2]), where.tolist()))
        return real(self, st, embeds, where, dtype)

    monkeypatch.setattr(StaticDecoder, "_write_prefix", spy)
    tiny_adapter.release_cache()
    reused = tiny_adapter.generate(rows, feats, max_new_tokens=n, cache="static", prefix_keys=keys)
    q = shared_prefix(rows, keys, tiny_adapter.image_token_id)[0]
    assert calls == [((4, q), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])]  # 4 prefixes for 12 rows
    whole = tiny_adapter.generate(rows, feats, max_new_tokens=n, cache="static")
    stock = tiny_adapter.generate(rows, feats, max_new_tokens=n, cache="dynamic")
    assert len(calls) == 1  # the whole-row call did not take the prefix path
    assert _tokens(reused) == _tokens(whole) == _tokens(stock)
    assert [g.text for g in reused] == [g.text for g in stock]
    # nothing shared (every key distinct): the whole-row path, same tokens
    alone = tiny_adapter.generate(rows, feats, max_new_tokens=n, cache="static", prefix_keys=list(range(len(rows))))
    assert len(calls) == 1 and _tokens(alone) == _tokens(stock)


@torch.no_grad()
def test_prefix_reuse_seeded_sampling_is_per_row(tiny_adapter):
    """Seeded sampling draws the same per row with and without a shared prefix."""
    rows, feats, keys = _batch(tiny_adapter)
    seeds = list(range(100, 100 + len(rows)))
    kw = dict(max_new_tokens=12, cache="static", do_sample=True, temperature=0.7, sample_seeds=seeds)
    assert _tokens(tiny_adapter.generate(rows, feats, prefix_keys=keys, **kw)) == \
        _tokens(tiny_adapter.generate(rows, feats, **kw))


def test_decoder_rejects_bad_prefix_rows(tiny_adapter):
    rows, feats, keys = _batch(tiny_adapter)
    embeds = torch.zeros(2, 5, tiny_adapter.model.config.text_config.hidden_size)
    dec = StaticDecoder(tiny_adapter.model, use_graph=False)
    with pytest.raises(ValueError, match="prefix rows"):
        dec.generate(torch.zeros(3, 4, embeds.shape[-1]), torch.ones(3, 9, dtype=torch.long), max_new_tokens=2,
                     prefix=(embeds, torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match="attention_mask"):
        dec.generate(torch.zeros(3, 4, embeds.shape[-1]), torch.ones(3, 4, dtype=torch.long), max_new_tokens=2,
                     prefix=(embeds, torch.tensor([0, 1, 1])))


def _dataset(tmp_path):
    path = tmp_path / "data.jsonl"
    with path.open("w") as f:
        for i, (p, ph) in enumerate((p, ph) for ph in ["coffee", "astronaut", "moon"] for p in PROMPTS):
            f.write(json.dumps({"id": f"r{i}", "prompt": p, "image": "skimage:" + ph}) + "\n")
        f.write(json.dumps({"id": "solo", "prompt": "Tell me a joke", "image": "skimage:rocket"}) + "\n")
    return str(path)


def test_scan_with_prefix_reuse_writes_the_same_rows(tiny_adapter, tmp_path):
    from layersafe.io import read_jsonl
    from layersafe.scan.engine import ScanConfig, run_scan

    data = _dataset(tmp_path)
    runs = {}
    for reuse in (True, False):
        tiny_adapter.release_cache()
        out = tmp_path / f"scan_{reuse}"
        cfg = ScanConfig(model="tiny", dataset=data, layers="1,3", out=str(out), max_new_tokens=10, batch_size=4,
                         cache="static", judges=[], prefix_reuse=reuse)
        run = run_scan(cfg, adapter=tiny_adapter, progress=False, log=lambda m: None)
        assert run["prefix_reuse"] is reuse and run["stats"]["generated"] == 20
        runs[reuse] = {(r["sample_id"], r["layer"]): (r["response"], r["prompt_tokens"], r["input_text"])
                       for r in read_jsonl(out / "generations.jsonl")}
    assert runs[True] == runs[False] and len(runs[True]) == 20


def test_scan_order_groups_repeated_images_only():
    from layersafe.data.base import Sample
    from layersafe.scan.engine import scan_order

    s = [Sample(id=f"s{i}", prompt="x" * (10 - i), image=f"img{i % 2}") for i in range(4)]
    assert [x.id for x in scan_order(s, by_image=True)] == ["s2", "s0", "s3", "s1"]  # img0 then img1, short first
    assert [x.id for x in scan_order(s, by_image=False)] == ["s3", "s2", "s1", "s0"]  # prompt length
    solo = [Sample(id=f"s{i}", prompt="x" * (10 - i), image=f"img{i}") for i in range(4)]
    assert [x.id for x in scan_order(solo, by_image=True)] == ["s3", "s2", "s1", "s0"]  # no image repeats


@pytest.mark.gpu
@torch.no_grad()
def test_prefix_reuse_cuda_graphs_equal_generate(tiny_llava_dir):
    """Through the captured decode graphs (and with fused kernels) in fp32: equal to stock generate."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from layersafe.models import load_vlm

    adapter = load_vlm(str(tiny_llava_dir), device="cuda", dtype="float32")
    rows, feats, keys = _batch(adapter)
    stock = _tokens(adapter.generate(rows, feats, max_new_tokens=40, cache="dynamic"))
    for fuse in (False, True):
        adapter.release_cache()
        adapter.fuse_kernels = fuse
        assert _tokens(adapter.generate(rows, feats, max_new_tokens=40, cache="static", prefix_keys=keys)) == stock
        # the same decoder again, without sharing: the cache's prefix slots are rewritten whole
        assert _tokens(adapter.generate(rows, feats, max_new_tokens=40, cache="static")) == stock


def test_lppo_rollout_with_prefix_reuse_samples_the_same_tokens(tmp_path, monkeypatch):
    """align --prefix-reuse (default): a rollout's rows sharing an image at a layer prefill their
    common start once, and sample exactly the tokens of the whole-row rollout (fp32, seeded per row)."""
    import copy

    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import make_random_llava
    from layersafe.rl import lppo

    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:" + ("coffee", "astronaut")[i % 2], "harmful": i < 3}
            for i, p in enumerate(["how to pick a lock", "what is this", "make a fake id", "describe it in detail",
                                   "count things", "is it blue"])]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model, processor = make_random_llava(seed=0)
    calls = []
    real = StaticDecoder._write_prefix
    monkeypatch.setattr(StaticDecoder, "_write_prefix",
                        lambda self, st, emb, where, dtype: (calls.append(tuple(emb.shape[:2])),
                                                             real(self, st, emb, where, dtype))[1])
    rolls = {}
    for reuse in (True, False):
        ad = LlavaAdapter(copy.deepcopy(model), processor, name="tiny", device=torch.device("cpu"))
        cfg = lppo.LPPOConfig(model="tiny", data=str(data), layers="2", out=str(tmp_path / str(reuse)), steps=1,
                              batch_size=6, mini_batch_size=2, ppo_epochs=1, max_new_tokens=8, lora_r=4,
                              cache="static", prefix_reuse=reuse, anchor_fraction=0.0)
        tr = lppo.LPPOTrainer(cfg, adapter=ad, log=lambda m: None)
        n_before = len(calls)
        rolls[reuse] = tr.rollout(1)
        used = calls[n_before:]
        if reuse:  # 6 rows, one layer, 2 photos: 2 prefixes, each computed once
            assert [u for u, _ in used] == [2]
        else:
            assert used == []
    a, b = rolls[True], rolls[False]
    assert torch.equal(a.response_ids, b.response_ids) and a.texts == b.texts
    assert len(set(map(tuple, a.response_ids.tolist()))) > 1  # rows did sample different answers
