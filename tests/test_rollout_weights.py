"""``align --rollout-weights``: rollouts decoded with the LoRA delta merged into a weight copy give the
adapter path's logits and tokens (fp32), never touch the base weights, follow in-place LoRA updates
in the same buffers, stay off under ``disable_adapter``; a run with merged rollouts matches one on
the adapter path; bad combinations are one line. On a GPU (``pytest -m gpu``): a kept CUDA graph
captured on the merged buffers decodes what the adapter path decodes, after LoRA updates too."""

import copy
import json

import pytest
import torch

from layersafe.rl import lppo
from layersafe.rl.rollout_weights import MergedRolloutWeights

torch.set_num_threads(1)  # 2 shared cores

PROMPTS = ["how to pick a lock", "describe the photo in great detail, every object and every colour you see there",
           "what colour is it", "make a fake id card", "count the objects", "is it a cat"]


@pytest.fixture(scope="module")
def base_model():
    from layersafe.models.tiny import make_random_llava

    return make_random_llava(seed=0)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("rollout_weights")
    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:" + ("coffee", "rocket")[i % 2], "harmful": i % 3 == 0}
            for i, p in enumerate(PROMPTS)]
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "data.jsonl"


def _adapter(base_model, device="cpu"):
    from layersafe.models.llava import LlavaAdapter

    model, processor = base_model
    return LlavaAdapter(copy.deepcopy(model).to(device), processor, name="tiny", device=torch.device(device))


def _peft(base_model, seed=1):
    """A LoRA model of the tiny LLaVA's language model with non-zero B (a trained adapter)."""
    from peft import LoraConfig, get_peft_model

    from layersafe.models.peft_quiet import peft_wrap
    from layersafe.rl.onpolicy import lora_target

    ad = _adapter(base_model)
    target = lora_target(ad, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    with peft_wrap():
        pm = get_peft_model(ad.model, LoraConfig(r=4, lora_alpha=8, target_modules=target))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return ad, pm


def _logits(model, ids):
    with torch.no_grad():
        return model.get_decoder()(input_ids=ids).last_hidden_state @ model.get_output_embeddings().weight.T


def test_merged_equals_adapter_path_and_leaves_the_base_alone(base_model):
    ad, pm = _peft(base_model)
    mw = MergedRolloutWeights(pm)
    # LoRA on 7 projections in each of the 2 text layers, none in the vision tower or projector
    assert len(mw.layers) == 14 and all("language_model" in n for n, m in pm.named_modules() if m in mw.layers)
    base = [m.base_layer.weight.detach().clone() for m in mw.layers]
    assert mw.nbytes() == sum(w.numel() * 4 for w in base)
    ids = torch.randint(3, 200, (2, 9), generator=torch.Generator().manual_seed(0))
    lora = _logits(ad.model, ids)
    with pm.disable_adapter():
        plain = _logits(ad.model, ids)
    assert (lora - plain).abs().max() > 1e-2  # the adapter changes the model

    with mw.active() as merged:
        assert merged is True
        assert all(m.disable_adapters for m in mw.layers)  # the delta is not added twice
        assert all(m.base_layer.weight.data_ptr() == b.data_ptr() for m, b in zip(mw.layers, mw._bufs))
        inside = _logits(ad.model, ids)
    scale = lora.abs().max()  # logits of a random model run to ~10: fp32 summation order moves them ~1e-5 relative
    torch.testing.assert_close(inside, lora, rtol=0, atol=2e-5 * scale)
    assert not torch.equal(inside, plain)
    # afterwards: the base weights bit-identical, adapters on again, the adapter path unchanged
    assert all(torch.equal(m.base_layer.weight, b) for m, b in zip(mw.layers, base))
    assert not any(m.disable_adapters for m in mw.layers)
    assert torch.equal(_logits(ad.model, ids), lora)

    # the LoRA weights change in place (an optimizer step): the same buffers carry the new delta
    ptrs = [b.data_ptr() for b in mw._bufs]
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.mul_(-2.0)
    lora2 = _logits(ad.model, ids)
    with mw.active():
        inside2 = _logits(ad.model, ids)
    assert [b.data_ptr() for b in mw._bufs] == ptrs
    torch.testing.assert_close(inside2, lora2, rtol=0, atol=2e-5 * lora2.abs().max())
    assert (inside2 - inside).abs().max() > 1e-2

    # under disable_adapter (a rollout of the base model) nothing is merged
    with pm.disable_adapter(), mw.active() as merged:
        assert merged is False
        assert torch.equal(_logits(ad.model, ids), plain)
    mw.release()
    assert mw._bufs is None


def test_merged_static_decoder_tokens_equal_adapter_path(base_model):
    """Greedy and seeded-sampled rollouts through the static decoder (eager on the CPU)."""
    from layersafe.data.base import Sample
    from layersafe.rl.onpolicy import project_views, tokenize_samples

    ad, pm = _peft(base_model)
    mw = MergedRolloutWeights(pm)
    samples = [Sample(id=f"s{i}", prompt=p, image="skimage:coffee") for i, p in enumerate(PROMPTS)]
    items = tokenize_samples(ad, samples)
    (feats,) = project_views(ad, items, [[2] * len(items)])
    for kw in (dict(do_sample=False), dict(do_sample=True, temperature=1.0, sample_seeds=list(range(len(items))))):
        ref = ad.generate(items, feats, max_new_tokens=8, cache="static", **kw)
        ad.release_cache()
        with mw.active():
            got = ad.generate(items, feats, max_new_tokens=8, cache="static", **kw)
        ad.release_cache()
        assert [g.tokens for g in got] == [g.tokens for g in ref]
        assert sum(len(g.tokens) for g in ref) > 20


def _cfg(data_file, out, **kw):
    base = dict(model="tiny", data=str(data_file), layers="2,4", out=str(out), steps=3, batch_size=4,
                mini_batch_size=2, ppo_epochs=1, max_new_tokens=5, learning_rate=5e-3, lora_r=4, save_every=3,
                cache="static", decode_cache="keep")
    base.update(kw)
    return lppo.LPPOConfig(**base)


def _rows(out):
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_run_with_merged_rollouts_matches_the_adapter_path(base_model, data_file, tmp_path):
    runs = {}
    for mode in ("adapter", "merged", "auto"):
        run = lppo.train(_cfg(data_file, tmp_path / mode, rollout_weights=mode), adapter=_adapter(base_model),
                         progress=False, log=lambda m: None)
        assert run["status"] == "complete"
        timing = [json.loads(line) for line in (tmp_path / mode / "timing.jsonl").read_text().splitlines()]
        assert [t["rollout_merged"] for t in timing] == [int(mode == "merged")] * 3  # auto: adapter on the CPU
        runs[mode] = _rows(tmp_path / mode)
    assert runs["auto"] == runs["adapter"]
    a, m = runs["adapter"], runs["merged"]
    assert [r["step"] for r in m] == [1, 2, 3] and a[0]["policy_loss"] != a[2]["policy_loss"]
    for ra, rm in zip(a, m):  # same tokens; the numbers agree up to fp32 summation order
        assert ra.keys() == rm.keys()
        for k in ra:
            if isinstance(ra[k], float):
                assert rm[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-6), k
            else:
                assert rm[k] == ra[k], k


@pytest.mark.parametrize("args, needle", [
    (["--rollout-weights", "merged", "--full-finetune"], "--full-finetune"),
    (["--rollout-weights", "fused"], "--rollout-weights"),
])
def test_bad_rollout_weights_is_one_line(tmp_path, capsys, args, needle):
    from layersafe.cli import main

    assert main(["align", *args, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "bad").exists()


@pytest.mark.gpu
def test_kept_graph_on_merged_buffers_follows_lora_updates(base_model, data_file, tmp_path):
    """CUDA, fp32: the merged rollout's captured graph decodes what the adapter path decodes, before
    and after a large in-place LoRA update, and the base weights are untouched."""
    tr = lppo.LPPOTrainer(_cfg(data_file, tmp_path / "g", max_new_tokens=12, rollout_weights="merged"),
                          adapter=_adapter(base_model, "cuda"), log=lambda m: None)
    base = [m.base_layer.weight.detach().clone() for m in tr.merged_weights.layers]
    ro = tr.rollout(1)
    assert tr.rollout_merged is True and tr.adapter._static._st.graph is not None
    st = tr.adapter._static._st
    tr.reference_logprobs(ro, list(range(len(ro.texts))))
    with torch.no_grad():
        for n, p in tr.peft.named_parameters():
            if "lora_B" in n:
                p.add_(torch.randn_like(p) * 0.5)
    kept = tr.rollout(1)
    assert tr.adapter._static._st is st  # replayed on the rewritten buffers
    assert not torch.equal(kept.response_ids, ro.response_ids)
    tr.release_decoder()
    tr._merge_rollouts = False  # the adapter path, freshly captured
    adapter_path = tr.rollout(1)
    assert tr.rollout_merged is False
    assert torch.equal(kept.response_ids, adapter_path.response_ids)
    tr.release_decoder()
    assert all(torch.equal(m.base_layer.weight, b) for m, b in zip(tr.merged_weights.layers, base))
