"""``align --decode-cache``: a static-cache decoder kept across L-PPO steps gives the same run as one
freed after every rollout (CPU: the static decoder runs eagerly, no CUDA graph), resume included;
``auto``'s memory rule on made-up numbers; on a GPU (``pytest -m gpu``) the kept CUDA graph sees
in-place LoRA updates and replays the adapter-enabled path."""

import copy
import json
from types import SimpleNamespace

import pytest
import torch

from layersafe.rl import lppo
from layersafe.rl.onpolicy import DECODE_CACHE_MARGIN, OnPolicyTrainer

torch.set_num_threads(1)  # 2 shared cores

PROMPTS = ["how to pick a lock", "describe the photo in great detail, every object and every colour you see there",
           "what colour is it", "make a fake id card", "count the objects", "is it a cat"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("decode_cache")
    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:" + ("coffee", "rocket")[i % 2], "harmful": i % 3 == 0}
            for i, p in enumerate(PROMPTS)]
    (d / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d / "data.jsonl"


@pytest.fixture(scope="module")
def base_model():
    from layersafe.models.tiny import make_random_llava

    return make_random_llava(seed=0)


def _adapter(base_model, device="cpu"):
    from layersafe.models.llava import LlavaAdapter

    model, processor = base_model
    return LlavaAdapter(copy.deepcopy(model).to(device), processor, name="tiny", device=torch.device(device))


def _cfg(data_file, out, **kw):
    base = dict(model="tiny", data=str(data_file), layers="2,4", out=str(out), steps=3, batch_size=4,
                mini_batch_size=2, ppo_epochs=1, max_new_tokens=5, learning_rate=5e-3, lora_r=4, save_every=1,
                cache="static")
    base.update(kw)
    return lppo.LPPOConfig(**base)


def _rows(out):
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _weights(out, step):
    return torch.load(out / "checkpoints" / f"step-{step:07d}" / "trainable.pt")


def test_kept_decoder_equals_release_every_step_and_resume(base_model, data_file, tmp_path):
    # The decoder object kept between rollouts: wrap generate to see which StaticDecoder state each step used.
    seen = {}
    for mode in ("release", "keep"):
        ad = _adapter(base_model)
        states = []
        gen = ad.generate

        def spy(*a, _gen=gen, _ad=ad, _states=states, **kw):
            out = _gen(*a, **kw)
            _states.append(_ad._static._st)  # kept alive here: no address reuse
            return out

        ad.generate = spy
        run = lppo.train(_cfg(data_file, tmp_path / mode, decode_cache=mode), adapter=ad, progress=False,
                         log=lambda m: None)
        assert run["status"] == "complete"
        assert ad._static is None  # freed at the end of training either way
        timing = [json.loads(l) for l in (tmp_path / mode / "timing.jsonl").read_text().splitlines()]
        assert [t["decode_cache_kept"] for t in timing] == [int(mode == "keep")] * 3
        seen[mode] = states
    keep, rel = seen["keep"], seen["release"]
    assert keep[0] is keep[1] is keep[2]  # kept: one cache for all 3 rollouts
    assert rel[0] is not rel[1] and rel[1] is not rel[2] and rel[0] is not rel[2]
    # the batches' prompt lengths differ: some rollouts decode in a cache longer than they need
    assert len({s.key[1] for s in rel}) == 2 and keep[0].key[1] == max(s.key[1] for s in rel)
    rows = _rows(tmp_path / "keep")
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows == _rows(tmp_path / "release")
    assert rows[0]["policy_loss"] != rows[2]["policy_loss"]  # the steps did learn something different
    wk, wr = _weights(tmp_path / "keep", 3), _weights(tmp_path / "release", 3)
    assert wk.keys() == wr.keys() and all(torch.equal(wk[k], wr[k]) for k in wk)

    # Kept, stopped after step 2 and resumed: step 3 starts with a fresh decoder and matches.
    cfg = _cfg(data_file, tmp_path / "resumed", decode_cache="keep")
    lppo.train(cfg, adapter=_adapter(base_model), progress=False, log=lambda m: None, _stop_after=2)
    cfg.resume = True
    lppo.train(cfg, adapter=_adapter(base_model), progress=False, log=lambda m: None)
    assert _rows(tmp_path / "resumed") == rows
    wres = _weights(tmp_path / "resumed", 3)
    assert all(torch.equal(wres[k], wk[k]) for k in wk)


def test_auto_releases_on_cpu_and_the_option_is_checked(base_model, data_file, tmp_path, capsys):
    tr = lppo.LPPOTrainer(_cfg(data_file, tmp_path / "auto", decode_cache="auto"), adapter=_adapter(base_model),
                          log=lambda m: None)
    for step in (1, 2):
        tr.rollout(step)
        assert tr.decode_cache_kept is False and tr.adapter._static is None  # auto keeps only on a GPU
    from layersafe.cli import main

    assert main(["align", "--decode-cache", "always", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--decode-cache" in err[0] and "keep" in err[0]


@pytest.mark.parametrize("reserved0, allocated_now, free, reserved_now, done, keeps", [
    # 80 GB reserved so far + a new 27 GB cache on a 140 GB GPU: 107 <= 140 - 14
    (80e9, 27e9, 33e9, 107e9, 1, True),
    (100e9, 27e9, 13e9, 127e9, 1, False),  # 127 > 126: too close to the edge
    (80e9, 27e9, 33e9, 107e9, 0, False),  # first rollout of the launch: no learning phase seen yet
    (120e9, 0.0, 20e9, 120e9, 3, True),  # a kept decoder reused (nothing new allocated): 120 <= 126
])
def test_auto_rule(monkeypatch, reserved0, allocated_now, free, reserved_now, done, keeps):
    total = 140e9
    assert DECODE_CACHE_MARGIN * total == pytest.approx(14e9)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda dev=None: 14e9 + allocated_now)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda dev=None: reserved_now)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (free, total))
    tr = SimpleNamespace(rollouts_done=done)
    assert OnPolicyTrainer._decoder_fits(tr, torch.device("cuda"), int(reserved0), int(14e9)) is keeps


@pytest.mark.gpu
def test_kept_cuda_graph_sees_lora_updates_and_is_the_adapter_path(base_model, data_file, tmp_path):
    """The graph captured in a rollout is replayed in the next after the LoRA weights changed in
    place and a reference (adapter-disabled) forward ran in between: it decodes what a freshly built
    decoder decodes, and not what the base model (adapter disabled) decodes."""
    tr = lppo.LPPOTrainer(_cfg(data_file, tmp_path / "g", decode_cache="keep", max_new_tokens=12, rollout_weights="adapter"),
                          adapter=_adapter(base_model, "cuda"), log=lambda m: None)
    ro = tr.rollout(1)
    st = tr.adapter._static._st
    assert st.graph is not None  # CUDA: the step is a captured graph
    tr.reference_logprobs(ro, list(range(len(ro.texts))))  # runs under disable_adapter
    with torch.no_grad():  # a large in-place update of every LoRA B (zero at init): the policy moves far
        for n, p in tr.peft.named_parameters():
            if "lora_B" in n:
                p.add_(torch.randn_like(p) * 0.5)
    # step 1's batch again (same prompts, same seeds, same cache length), so the graph is replayed
    kept = tr.rollout(1)
    assert tr.adapter._static._st is st  # replayed, not re-captured
    assert not torch.equal(kept.response_ids, ro.response_ids)  # and it decoded with the new weights
    tr.release_decoder()
    fresh = tr.rollout(1)
    assert torch.equal(kept.response_ids, fresh.response_ids)
    tr.release_decoder()
    with tr.peft.disable_adapter():
        base = tr.rollout(1)
    assert not torch.equal(base.response_ids, fresh.response_ids)  # the update changed what is sampled
    tr.release_decoder()


def test_resume_keeps_this_runs_optimizer_implementation(base_model, data_file, tmp_path):
    """A checkpoint restores AdamW's state and hyperparameters, not the writing run's fused/foreach
    choice (made for its device; fused AdamW on a GPU since 2026-12-01): the resuming run keeps its own."""
    writer = lppo.LPPOTrainer(_cfg(data_file, tmp_path / "a"), adapter=_adapter(base_model), log=lambda m: None)
    writer.optimizer.param_groups[0]["foreach"] = True  # as a run on another device may have chosen
    writer.optimizer.param_groups[0]["lr"] = 0.123
    path = writer.save_checkpoint(tmp_path / "a", 1)
    reader = lppo.LPPOTrainer(_cfg(data_file, tmp_path / "b"), adapter=_adapter(base_model), log=lambda m: None)
    own = dict(reader.optimizer_impl)
    assert reader.load_checkpoint(path) == 1
    group = reader.optimizer.param_groups[0]
    assert {k: group[k] for k in own} == own and group["foreach"] is not True
    assert group["lr"] == 0.123  # the rest of the group is the checkpoint's
