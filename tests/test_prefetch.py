"""Image prefetch in align (``onpolicy.PREFETCH``): the next step's images are loaded and
preprocessed in a background thread while the step scores and learns. The run logs exactly what a
run without prefetch logs; the thread prepares the next step's global batch with its own processor
copy; a bad image in a later step stops the run at that step with the same one line; a run with
``--fuse-kernels`` rollouts logs what an unfused one logs (fp32)."""

import copy
import json
import threading

import pytest
import torch

from layersafe.errors import UserError
from layersafe.rl import lppo, onpolicy
from test_rollout_weights import _adapter, _rows, base_model  # noqa: F401 (base_model: a fixture)

torch.set_num_threads(1)  # 2 shared cores

PROMPTS = ["how to pick a lock", "describe the photo in great detail", "what colour is it", "make a fake id card",
           "count the objects", "is it a cat", "write a poem about it", "how to make a weapon"]


def _data(path, bad=()):
    rows = [{"id": f"r{i}", "prompt": p, "harmful": i % 2 == 0,
             "image": "skimage:no_such_photo" if i in bad else "skimage:" + ("coffee", "rocket")[i % 2]}
            for i, p in enumerate(PROMPTS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(data, out, **kw):
    base = dict(model="tiny", data=str(data), layers="2,4", out=str(out), steps=3, batch_size=4, mini_batch_size=2,
                ppo_epochs=1, max_new_tokens=5, learning_rate=5e-3, lora_r=4, save_every=3)
    base.update(kw)
    return lppo.LPPOConfig(**base)


def test_prefetched_run_logs_what_an_unprefetched_run_logs(base_model, tmp_path, monkeypatch):
    data = _data(tmp_path / "d.jsonl")
    threads = []
    real = onpolicy.tokenize_samples

    def spy(ad, samples):
        threads.append((threading.current_thread() is threading.main_thread(), [s.id for s in samples]))
        return real(ad, samples)

    monkeypatch.setattr(onpolicy, "tokenize_samples", spy)
    logs = {}
    for on in (False, True):
        monkeypatch.setattr(onpolicy, "PREFETCH", on)
        threads.clear()
        run = lppo.train(_cfg(data, tmp_path / str(on)), adapter=_adapter(base_model), progress=False, log=lambda m: None)
        assert run["status"] == "complete"
        logs[on] = _rows(tmp_path / str(on))
        calls = list(threads)
        if on:  # step 1 in the rollout, steps 2 and 3 in the thread, each the step's drawn batch
            cfg = _cfg(data, tmp_path)
            want = [[s.id for s in onpolicy.draw_batch(*_pools(data), cfg, k)] for k in (1, 2, 3)]
            assert calls == [(True, want[0]), (False, want[1]), (False, want[2])]
            assert want[1] != want[0]
        else:
            assert [main for main, _ in calls] == [True] * 3
    assert len(logs[True]) == 3 and logs[True] == logs[False]
    assert logs[True][0]["policy_loss"] != logs[True][2]["policy_loss"]


def _pools(data):
    from layersafe.data.training import load_training_prompts

    return load_training_prompts(_cfg(data, "unused"), log=lambda m: None)


def test_a_bad_image_in_a_prefetched_step_stops_the_run_there(base_model, tmp_path, monkeypatch):
    """An image that goes bad after the start (the up-front check of every image passed: skipped
    here) stops the run at the step that draws it, with step 1 logged and checkpointed."""
    from layersafe.data import training

    monkeypatch.setattr(training, "check_images", lambda *a, **k: None)
    cfg = _cfg(tmp_path / "d.jsonl", tmp_path / "out", save_every=1)
    _data(tmp_path / "d.jsonl")
    step2 = {s.id for s in onpolicy.draw_batch(*_pools(tmp_path / "d.jsonl"), cfg, 2)}
    step1 = {s.id for s in onpolicy.draw_batch(*_pools(tmp_path / "d.jsonl"), cfg, 1)}
    bad = sorted(step2 - step1)[0]
    _data(tmp_path / "d.jsonl", bad={int(bad[1:])})
    with pytest.raises(UserError, match=f"cannot load training sample {bad} "):
        lppo.train(cfg, adapter=_adapter(base_model), progress=False, log=lambda m: None)
    assert [r["step"] for r in _rows(tmp_path / "out")] == [1]  # step 1 finished and was logged
    assert (tmp_path / "out" / "checkpoints" / "step-0000001").is_dir()
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "failed"


def test_the_thread_tokenises_with_its_own_processor(base_model, tmp_path):
    tr = lppo.LPPOTrainer(_cfg(_data(tmp_path / "d.jsonl"), tmp_path / "o"), adapter=_adapter(base_model),
                          log=lambda m: None)
    try:
        tr._prefetch_next(1)
        got = tr._prefetched(2)
        assert tr._prefetch_adapter.processor is not tr.adapter.processor
        assert tr._prefetch_adapter.tokenizer is tr._prefetch_adapter.processor.tokenizer
        want = onpolicy.tokenize_samples(tr.adapter, onpolicy.draw_batch(tr.samples, tr.benign, tr.cfg, 2))
        assert len(got) == len(want) == 4
        for g, w in zip(got, want):
            assert g.keys() == w.keys() and all(torch.equal(g[k], w[k]) for k in g if torch.is_tensor(g[k]))
        tr._prefetch_next(1)
        assert tr._prefetched(3) is None  # prefetched for another step: not used
        tr._prefetch_next(3)  # the last step: nothing to prefetch
        assert tr._prefetch is None
    finally:
        tr.close_prefetch()


def test_fused_rollouts_log_what_unfused_rollouts_log(base_model, tmp_path, monkeypatch):
    from layersafe.models import decode

    built = []
    real_init = decode.StaticDecoder.__init__

    def init(self, model, **kw):
        built.append(kw.get("fuse", False))
        real_init(self, model, **kw)

    monkeypatch.setattr(decode.StaticDecoder, "__init__", init)
    data = _data(tmp_path / "d.jsonl")
    logs = {}
    for fuse in (False, True):
        built.clear()
        ad = _adapter(base_model)
        run = lppo.train(_cfg(data, tmp_path / str(fuse), steps=2, cache="static", fuse_kernels=fuse), adapter=ad,
                         progress=False, log=lambda m: None)
        assert run["status"] == "complete" and ad.fuse_kernels is fuse
        assert json.loads((tmp_path / str(fuse) / "run.json").read_text())["config"]["fuse_kernels"] is fuse
        logs[fuse] = _rows(tmp_path / str(fuse))
        assert built and set(built) == {fuse}  # the rollouts' static decoder was built with the setting
        from layersafe.models import fuse as fusion

        assert not fusion._unfused  # the compiled kernels ran (no fall-back to eager)
    for a, b in zip(logs[False], logs[True]):  # same tokens; numbers up to fp32 summation order
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == (pytest.approx(a[k], rel=1e-4, abs=1e-6) if isinstance(a[k], float) else a[k]), k


@pytest.mark.gpu
def test_gpu_fused_merged_graph_rollouts_log_what_plain_rollouts_log(base_model, tmp_path):
    """On CUDA in fp32, through the kept CUDA graph on merged rollout weights: fused rollouts (the
    compiled kernels captured in the graph) give the run an unfused adapter-path run gives."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    data = _data(tmp_path / "d.jsonl")
    logs = {}
    for fuse, weights in ((False, "adapter"), (True, "merged")):
        model, processor = base_model
        from layersafe.models.llava import LlavaAdapter

        ad = LlavaAdapter(copy.deepcopy(model).to("cuda"), processor, name="tiny", device=torch.device("cuda"))
        out = tmp_path / f"{fuse}-{weights}"
        run = lppo.train(_cfg(data, out, cache="static", decode_cache="keep", fuse_kernels=fuse, device="cuda",
                              rollout_weights=weights, max_new_tokens=12), adapter=ad, progress=False,
                         log=lambda m: None)
        assert run["status"] == "complete"
        timing = [json.loads(line) for line in (out / "timing.jsonl").read_text().splitlines()]
        assert [t["rollout_merged"] for t in timing] == [int(weights == "merged")] * 3
        logs[fuse] = _rows(out)
    for a, b in zip(logs[False], logs[True]):
        assert a["response_length"] == b["response_length"]
        for k in a:
            assert b[k] == (pytest.approx(a[k], rel=1e-3, abs=1e-5) if isinstance(a[k], float) else a[k]), k


def test_the_prefetch_copy_does_not_keep_a_released_decoder(base_model, tmp_path):
    """``--decode-cache keep``: the adapter holds its static decoder when the first prefetch copies
    the adapter; releasing the decoder at the end must free it (no second reference in the copy)."""
    import gc
    import weakref

    tr = lppo.LPPOTrainer(_cfg(_data(tmp_path / "d.jsonl"), tmp_path / "o", cache="static", decode_cache="keep"),
                          adapter=_adapter(base_model), log=lambda m: None)
    gc.disable()
    try:
        tr.rollout(1)  # decodes through the static decoder, then starts step 2's prefetch
        assert tr.adapter._static is not None and tr._prefetch_adapter._static is None
        dec = weakref.ref(tr.adapter._static)
        tr._prefetched(2)
        tr.release_decoder()
        tr.close_prefetch()
        assert dec() is None and tr._prefetch_adapter is None
    finally:
        gc.enable()
        tr.close_prefetch()


def test_a_prefetch_failure_on_another_process_stops_this_one(base_model, tmp_path, monkeypatch):
    """Several processes agree on a prefetch failure: a process whose own prefetch succeeded still
    raises the other's line (instead of walking into the next collective alone)."""
    import accelerate.utils

    tr = lppo.LPPOTrainer(_cfg(_data(tmp_path / "d.jsonl"), tmp_path / "o"), adapter=_adapter(base_model),
                          log=lambda m: None)
    try:
        tr._prefetch_next(1)
        monkeypatch.setattr(type(tr), "rank_world", property(lambda self: (0, 2)))
        gathered = []

        def gather(x):
            gathered.append(list(x))
            return list(x) + ["cannot load training sample r3 (skimage:gone): no such photo"]

        monkeypatch.setattr(accelerate.utils, "gather_object", gather)
        with pytest.raises(UserError, match="cannot load training sample r3"):
            tr._prefetched(2)
        assert gathered == [[None]]  # this process's own prefetch succeeded
    finally:
        tr.close_prefetch()
