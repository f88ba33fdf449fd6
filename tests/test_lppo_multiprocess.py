"""L-PPO data parallel: two processes (torch.distributed.run, gloo on CPU) train one run together,
and train the SAME run as one process given the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from layersafe.rl import lppo


def _data(tmp_path):
    rows = [{"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}" + " now" * (i % 3),
             "image": "skimage:coffee", "harmful": True} for i in range(8)]
    rows += [{"id": f"b{i}", "prompt": f"What colour is object {i}?", "image": "skimage:rocket",
              "harmful": False} for i in range(8)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def _align(model, data, out, *, procs, port, extra):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    launch = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs), "--master_port", str(port)]
              if procs > 1 else [sys.executable])
    cmd = launch + ["-m", "layersafe", "align", "--model", str(model), "--data", str(data), "--out", str(out),
                    "--no-progress", *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_process_align_trains_one_run(tiny_llava_dir, tmp_path):
    out = tmp_path / "al"
    proc = _align(tiny_llava_dir, _data(tmp_path), out, procs=2, port=29531,
                  extra=["--layers", "3,4", "--steps", "2", "--batch-size", "4", "--mini-batch-size", "2",
                         "--ppo-epochs", "1", "--max-new-tokens", "3", "--save-every", "2"])
    assert proc.stdout.count("align complete") == 1  # only rank 0 reports
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "complete"
    ckpt = out / "checkpoints" / "step-0000002"
    assert (ckpt / "rng-0.safetensors").exists() and (ckpt / "rng-1.safetensors").exists()  # each rank's RNG
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    state = torch.load(ckpt / "trainable.pt", weights_only=True)
    assert state and all(torch.isfinite(v).all() for v in state.values())
    # rank 0's phase times, one row per step; run.json's summary leaves the warm-up step out
    timing = [json.loads(l) for l in (out / "timing.jsonl").read_text().splitlines()]
    assert [t["step"] for t in timing] == [1, 2]
    for t in timing:
        assert 0 < t["generate"] + t["score"] + t["learn"] <= t["seconds"] + 1e-3
        assert 0 < sum(t[f"rollout_{k}"] for k in ("tokenize", "encode", "decode", "gather")) <= t["generate"] + 1e-3
    assert run["timing"]["steps_timed"] == [2] and run["timing"]["global_batch"] == 8
    assert run["timing"]["samples_per_s"] == round(8 / timing[1]["seconds"], 3)


# Measured on CPU (float32, gloo, 2026-11-29): logged values differ by at most 1.9e-5 relative
# (counts and scores are equal exactly); the LoRA + value-head weights after steps 1 and 2
# (4 AdamW steps each, lr 1e-2) by at most 9.3e-6 and 2.6e-7 on average. The residue is
# batch-shape-dependent matmul rounding, which AdamW (each gradient element divided by its own
# magnitude) carries into near-zero elements at the scale of lr.
# 2026-11-30, with the outcome-based refusal reward (empty = -2, not +1) and lr 1e-2, one LoRA
# element differed by 1.1e-3 after step 1 (approx-KL 3.8 within the step): AdamW's first steps move
# each element by about lr * sign(g), and a gradient element at rounding level can flip its sign.
# At lr 1e-3: logged values within 1.3e-5 relative, weights within 2.8e-6 (mean 2.5e-9).
RTOL, ATOL = 1e-4, 2e-6
W_MAX, W_MEAN = 1e-4, 1e-6


def _often_stopping_model(src, dst, data, target=0.3):
    """The tiny model with its EOS logit raised along the mean final hidden state, so that
    sampled responses stop at different lengths: the processes' shares of a minibatch's tokens
    then differ, which the gradient weighting has to get right."""
    from layersafe.data import load_dataset
    from layersafe.models import load_vlm

    ad = load_vlm(str(src), device="cpu", dtype="float32")
    samples = load_dataset(str(data)).samples
    ro_items, feats = lppo.tokenize_and_project(ad, samples, [3] * len(samples))
    from layersafe.models.base import left_pad

    ids, attn = left_pad([it["input_ids"] for it in ro_items], ad.tokenizer.pad_token_id)
    embeds, attn, pos = lppo.build_embeds(ad.model, ad.image_token_id, ids, attn, ids[:, :0], attn[:, :0], feats)
    grab = {}
    hook = ad.model.lm_head.register_forward_pre_hook(lambda m, a: grab.__setitem__("h", a[0][:, -1]))
    eos = ad.tokenizer.eos_token_id
    with torch.no_grad():
        ad.model.lm_head.weight[eos] = 0
        for _ in range(40):
            p = ad.model(inputs_embeds=embeds, attention_mask=attn, position_ids=pos).logits[:, -1].softmax(-1)[:, eos]
            if abs(p.mean().item() - target) < 0.05:
                break
            h = grab["h"].mean(0)
            ad.model.lm_head.weight[eos] += (target - p.mean().item()) * 10 * h / h.norm() ** 2
    hook.remove()
    ad.model.save_pretrained(dst)
    ad.processor.save_pretrained(dst)
    return dst


@pytest.mark.parametrize("cache", ["auto", "static"])
def test_two_processes_equal_one_process_with_the_same_global_batch(tiny_llava_dir, tmp_path, cache):
    """2 processes × batch 4 (mini-batch 2) = 1 process × batch 8 (mini-batch 4): same prompts,
    layers and sampled responses, same losses, KL and score at step 1, and the same update
    (weights after steps 1 and 2, losses of step 2, which ran on the updated weights). ``static``:
    the static-cache decoder with prefix reuse, the rollout rows split between processes by
    (image, layer) (``rollout_parts``), not strided."""
    data = _data(tmp_path)
    model = _often_stopping_model(tiny_llava_dir, tmp_path / "model", data)
    common = ["--layers", "2,3,4", "--steps", "2", "--ppo-epochs", "2", "--max-new-tokens", "4",
              "--learning-rate", "0.001", "--save-every", "1", "--temperature", "1.3", "--dtype", "float32",
              "--cache", cache]
    _align(model, data, tmp_path / "one", procs=1, port=0,
           extra=common + ["--batch-size", "8", "--mini-batch-size", "4"])
    _align(model, data, tmp_path / "two", procs=2, port=29533,
           extra=common + ["--batch-size", "4", "--mini-batch-size", "2"])
    logs = {k: [json.loads(l) for l in (tmp_path / k / "log.jsonl").read_text().splitlines()] for k in ("one", "two")}
    for r1, r2 in zip(logs["one"], logs["two"]):
        # the rollouts are the same: lengths, stops and refusal rates are counts, equal exactly
        for k in ("response_length", "stop_rate", "refusal_rate_harmful", "refusal_rate_benign", "score",
                  "score_layer_2", "score_layer_3", "score_layer_4", "ppo_epochs_done"):
            assert r1[k] == r2[k], (r1["step"], k, r1[k], r2[k])
        for k in ("policy_loss", "value_loss", "kl", "approx_kl", "clipfrac", "entropy", "reward_total",
                  "explained_variance", "grad_norm", "value_clipfrac"):
            assert r1[k] == pytest.approx(r2[k], rel=RTOL, abs=ATOL), (r1["step"], k, r1[k], r2[k])
    worst = max(abs(r1[k] - r2[k]) / abs(r1[k]) for r1, r2 in zip(logs["one"], logs["two"]) for k in r1
                if k not in ("seconds", "lr") and isinstance(r1[k], float) and r1[k] != 0)
    print(f"logged values differ by at most {worst:.1e} relative")
    first = logs["one"][0]
    assert 0.2 <= first["stop_rate"] <= 0.8, first["stop_rate"]  # responses of different lengths
    assert first["policy_loss"] != 0 and first["value_loss"] > 0 and first["grad_norm"] > 0  # not a trivial match
    assert first["kl"] == 0 and logs["one"][1]["kl"] != 0  # LoRA starts at the reference, then moves

    for step in (1, 2):
        w1, w2 = (torch.load(tmp_path / k / "checkpoints" / f"step-{step:07d}" / "trainable.pt", weights_only=True)
                  for k in ("one", "two"))
        assert w1.keys() == w2.keys()
        diff = torch.cat([(w1[n] - w2[n]).abs().flatten() for n in w1])
        print(f"step {step}: weights differ by at most {diff.max():.1e}, on average {diff.mean():.1e}")
        assert diff.max() <= W_MAX and diff.mean() <= W_MEAN
        # the update is large enough for a wrong gradient to show: the value head starts at 0
        assert w1["value_head.weight"].abs().max() > 1e-3  # it moved (lr 1e-3: 3.7e-3 after step 1)


def test_ptx_two_processes_equal_one_process(tiny_llava_dir, tmp_path):
    """PPO-ptx under DDP: 2 processes × (batch 4, minibatch 2) = 1 process × (8, 4) with --ptx-coef.
    Each step draws one global ptx batch of 4 answers (answers of different lengths, so the two
    processes' shares of its tokens differ); each process learns on its half, weighted by its token
    share. The logged ptx_loss (and every other loss), the gradient norm and the weights after each
    step equal the one-process run's."""
    data = tmp_path / "h.jsonl"
    data.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}",
                                        "image": "skimage:coffee", "harmful": True}) + "\n" for i in range(8)))
    benign = tmp_path / "b.jsonl"
    answers = ["2", "a red rocket on a pad", "blue", "three small cups of coffee on a table", "yes", "no, it is not"]
    benign.write_text("".join(json.dumps({"id": f"b{i}", "prompt": f"What colour is object {i}?",
                                          "image": "skimage:rocket", "answer": a}) + "\n"
                              for i, a in enumerate(answers)))
    common = ["--layers", "2,3", "--steps", "2", "--ppo-epochs", "1", "--max-new-tokens", "3",
              "--learning-rate", "0.001", "--save-every", "1", "--dtype", "float32", "--benign-data", str(benign),
              "--ptx-coef", "2.0"]
    _align(tiny_llava_dir, data, tmp_path / "one", procs=1, port=0,
           extra=common + ["--batch-size", "8", "--mini-batch-size", "4"])
    _align(tiny_llava_dir, data, tmp_path / "two", procs=2, port=29537,
           extra=common + ["--batch-size", "4", "--mini-batch-size", "2"])
    logs = {k: [json.loads(l) for l in (tmp_path / k / "log.jsonl").read_text().splitlines()] for k in ("one", "two")}
    assert len(logs["one"]) == len(logs["two"]) == 2
    for r1, r2 in zip(logs["one"], logs["two"]):
        assert r1["response_length"] == r2["response_length"] and r1["score"] == r2["score"]
        for k in ("ptx_loss", "policy_loss", "value_loss", "kl", "approx_kl", "grad_norm"):
            assert r1[k] == pytest.approx(r2[k], rel=RTOL, abs=ATOL), (r1["step"], k, r1[k], r2[k])
    assert logs["one"][0]["ptx_loss"] > 1  # the answers' NLL under the random model: not a trivial match
    worst = max(abs(r1[k] - r2[k]) / abs(r1[k]) for r1, r2 in zip(logs["one"], logs["two"]) for k in r1
                if k not in ("seconds", "lr") and isinstance(r1[k], float) and r1[k] != 0)
    print(f"logged values differ by at most {worst:.1e} relative")
    for step in (1, 2):
        w1, w2 = (torch.load(tmp_path / k / "checkpoints" / f"step-{step:07d}" / "trainable.pt", weights_only=True)
                  for k in ("one", "two"))
        diff = torch.cat([(w1[n] - w2[n]).abs().flatten() for n in w1])
        print(f"step {step}: weights differ by at most {diff.max():.1e}, on average {diff.mean():.1e}")
        assert diff.max() <= W_MAX and diff.mean() <= W_MEAN


def test_a_bad_image_in_one_process_rows_stops_every_process(tiny_llava_dir, tmp_path):
    """Every process checks every training image up front, so a bad one stops both before any
    rollout: the same one line from each, exit 2. (One that goes bad mid-run, met by one process's
    rows, must not leave the other waiting in the gather: tests/test_prefetch.py.)"""
    rows = [{"id": f"h{i}", "prompt": f"Explain harmful thing {i}", "harmful": True,
             "image": "skimage:no_such_photo" if i == 5 else "skimage:coffee"} for i in range(8)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29539", "-m", "layersafe", "align", "--model", str(tiny_llava_dir), "--data", str(data),
                           "--out", str(tmp_path / "al"), "--no-progress", "--layers", "3", "--steps", "1",
                           "--batch-size", "4", "--mini-batch-size", "2", "--max-new-tokens", "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    said = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("layersafe: error:")]
    assert len(said) == 2 and len(set(said)) == 1, said  # both processes, the same line
    assert "1 of 2 images cannot be loaded, e.g. row h5" in said[0]  # found up front, before any rollout
    assert not (tmp_path / "al" / "checkpoints").exists()


def test_rollout_parts_keep_key_groups_together_and_cover_every_row():
    from layersafe.rl.onpolicy import rollout_parts, shard

    assert rollout_parts(6, 2) == [shard(6, 0, 2), shard(6, 1, 2)] == [[0, 2, 4], [1, 3, 5]]
    assert rollout_parts(5, 1, list("abcab")) == [[0, 1, 2, 3, 4]]
    # a: 0 2 5, b: 1 4, c: 3 6, d: 7 -- dealt round robin: a -> 0, b -> 1, c -> 0 (one row of room:
    # 6 spills into 1), d -> 1
    assert rollout_parts(8, 2, list("abacbacd")) == [[0, 2, 3, 5], [1, 4, 6, 7]]
    # harmful rows first, benign last (as draw_batch), 2 photos each: both processes get both parts
    keys = [("h", j % 2) for j in range(8)] + [("b", j % 2) for j in range(8)]
    parts = rollout_parts(16, 2, keys)
    assert [sum(j < 8 for j in p) for p in parts] == [4, 4]
    assert {keys[j] for j in parts[0]} == {("h", 0), ("b", 0)}  # each group whole on one process
    parts = rollout_parts(7, 3, [j % 2 for j in range(7)])
    assert sorted(j for p in parts for j in p) == list(range(7))
    assert [len(p) for p in parts] == [len(shard(7, r, 3)) for r in range(3)] == [3, 2, 2]


def test_a_nan_loss_with_a_finite_gradient_on_one_process_stops_every_process(tiny_llava_dir, tmp_path):
    """A NaN in one process's loss that adds nothing to the gradient (a constant term) leaves every
    gradient finite: that process must not stop alone and leave the other waiting in the next
    collective. Both exit 2 within the step, before any checkpoint."""
    script = tmp_path / "nan_on_rank1.py"
    script.write_text(
        "import dataclasses, os, sys\n"
        "from layersafe.rl import ppo\n"
        "real = ppo.policy_loss\n"
        "if os.environ['RANK'] == '1':\n"
        "    ppo.policy_loss = lambda *a, **k: dataclasses.replace(real(*a, **k), loss=real(*a, **k).loss + float('nan'))\n"
        "from layersafe.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    data = _data(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    root = str(Path(__file__).resolve().parents[1])  # a script's folder, not the cwd, heads sys.path: import this checkout
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    out = tmp_path / "al"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29559", str(script), "align", "--model", str(tiny_llava_dir), "--data", str(data),
                           "--out", str(out), "--no-progress", "--layers", "3", "--steps", "2", "--save-every", "1",
                           "--batch-size", "2", "--mini-batch-size", "1", "--max-new-tokens", "2"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    said = sorted(l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("layersafe: error:"))
    assert len(said) == 2, proc.stderr[-3000:]
    assert "the loss became nan at step 1" in said[0] and "non-finite on another process at step 1" in said[1]
    assert not (out / "checkpoints" / "latest").exists()
