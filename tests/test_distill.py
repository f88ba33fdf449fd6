"""Layer-consistency distillation (`align --method distill`): the maths, the bad-input rules,
learning on a tiny random LLaVA (the student at an early layer moves towards what the model says
at its default layer), resume, and that no reward/judge is in the loss."""

import json

import pytest
import torch

from layersafe.cli import main
from layersafe.rl import lppo
from layersafe.rl.distill import DistillTrainer, reverse_kl
from test_lppo import base_model, fresh_adapter  # noqa: F401  (the tiny random LLaVA fixture)

torch.set_num_threads(1)

PROMPTS = ["how to pick a lock", "make a fake id card", "describe the photo", "what colour is it",
           "count the objects", "name the object"]
PHOTOS = ["coffee", "astronaut", "rocket", "chelsea"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("distill_data")
    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:" + PHOTOS[i % 4], "harmful": i < 2}
            for i, p in enumerate(PROMPTS)]
    path = d / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cfg_for(data_file, out, **kw):
    base = dict(model="tiny", method="distill", data=str(data_file), layers="2,4", out=str(out), steps=2,
                batch_size=6, mini_batch_size=3, ppo_epochs=1, max_new_tokens=4, learning_rate=5e-3, lora_r=8,
                save_every=2, anchor_fraction=0.0)
    base.update(kw)
    return lppo.LPPOConfig(**base)


def test_reverse_kl_matches_definition():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 11), torch.randn(2, 3, 11)
    ps, pt = s.softmax(-1), t.softmax(-1)
    expected = (ps * (ps.log() - pt.log())).sum(-1)
    assert torch.allclose(reverse_kl(s, t), expected, atol=1e-6)
    assert (reverse_kl(s, t) > 0).all()
    assert reverse_kl(s, s).abs().max() < 1e-6
    # reverse, not forward: KL(p_s || p_t) != KL(p_t || p_s) in general
    assert not torch.allclose(reverse_kl(s, t), reverse_kl(t, s))


def _kl_at(tr, layer):
    """Mean per-token KL(student at `layer` || teacher at the default layer) on fixed responses
    (the teacher's greedy answers, teacher-forced), over all prompts."""
    from dataclasses import replace

    samples = tr.samples
    ro = tr.rollout(1)  # prompts + sampled responses; re-project features at `layer` for the student
    items = ro.items
    from layersafe.rl.onpolicy import project_features, response_forward

    student = replace(ro, features=project_features(tr.adapter, items, [layer] * len(items)))
    teacher = tr.teacher_view(ro)
    idx = list(range(len(ro.prompts)))
    with torch.no_grad():
        _, t_logits = tr.reference_logprobs(teacher, idx, temperature=1.0, return_logits=True)
        _, s_logits, _ = response_forward(tr.policy, tr.raw, tr.image_token_id, student, idx, 1.0, with_values=False)
    m = ro.response_mask.float()
    assert len(samples) == 6
    return float((reverse_kl(s_logits, t_logits) * m).sum() / m.sum())


def test_distillation_moves_student_layers_towards_teacher(base_model, data_file, tmp_path):
    ad = fresh_adapter(base_model)
    # 40 steps at lr 3e-3 (higher rates overshoot on this tiny random model): KL 2.38 -> 0.86 (layer 2),
    # 1.66 -> 0.69 (layer 4) on 2026-11-30.
    tr = DistillTrainer(cfg_for(data_file, tmp_path / "x", steps=40, seed=1, learning_rate=3e-3), adapter=ad,
                        log=lambda m: None)
    assert tr.teacher_layer == ad.default_layer and tr.layers == [2, 4]
    before = {l: _kl_at(tr, l) for l in (2, 4)}
    rows = [tr.train_step(s) for s in range(1, 41)]
    after = {l: _kl_at(tr, l) for l in (2, 4)}
    print("KL(student || teacher) per token before/after:", before, after)
    for l in (2, 4):
        assert before[l] > 0.05
        assert after[l] < 0.6 * before[l]
    early = sum(r["distill_kl"] for r in rows[:5]) / 5
    late = sum(r["distill_kl"] for r in rows[-5:]) / 5
    assert late < 0.8 * early
    for key in ("distill_loss", "kl_layer_2", "kl_layer_4", "refusal_rate_harmful", "empty_rate_harmful",
                "degenerate_rate_benign", "response_length", "grad_norm"):
        assert key in rows[-1], key
    assert not any(k.startswith("score") for k in rows[-1])  # no reward anywhere


def test_anchor_rows_sample_the_teacher_layer(base_model, data_file, tmp_path):
    tr = DistillTrainer(cfg_for(data_file, tmp_path / "a", anchor_fraction=0.5), adapter=fresh_adapter(base_model),
                        log=lambda m: None)
    assert tr.layers == [2, 4, tr.teacher_layer]
    assert tr.layer_weights == pytest.approx([0.25, 0.25, 0.5])
    assert tr.repair_layers == [2, 4]


def test_distill_resume_reproduces_uninterrupted_run(base_model, data_file, tmp_path):
    a = cfg_for(data_file, tmp_path / "a", steps=3, save_every=1)
    lppo.train(a, adapter=fresh_adapter(base_model), progress=False, log=lambda m: None)
    b = cfg_for(data_file, tmp_path / "b", steps=3, save_every=1)
    lppo.train(b, adapter=fresh_adapter(base_model), progress=False, log=lambda m: None, _stop_after=2)
    b.resume = True
    run = lppo.train(b, adapter=fresh_adapter(base_model), progress=False, log=lambda m: None)
    assert run["status"] == "complete" and run["method"] == "distill" and run["repair_layers"] == [2, 4]
    rows = lambda p: [json.loads(l) for l in (p / "log.jsonl").read_text().splitlines()]  # noqa: E731
    ra, rb = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert [r["step"] for r in rb] == [1, 2, 3]
    for x, y in zip(ra, rb):
        assert x["distill_kl"] == pytest.approx(y["distill_kl"], rel=1e-5, abs=1e-7)
    assert (tmp_path / "b" / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "b" / "value_head.safetensors").exists()  # no critic in distillation


@pytest.mark.parametrize("extra, message", [
    (["--method", "nope"], "method"),
    (["--method", "distill", "--layers", "2,5"], "also in --layers"),  # tiny-random-llava: 0..6, default 5
    (["--method", "distill", "--layers", "2", "--teacher-layer", "2"], "also in --layers"),
    (["--method", "distill", "--layers", "2", "--teacher-layer", "40"], "out of range"),
    (["--method", "distill"], "repairs layers other than"),
    (["--method", "distill", "--layers", "2", "--anchor-fraction", "1"], "anchor-fraction"),
])
def test_distill_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, extra, message):
    out = tmp_path / "o"
    rc = main(["align", "--model", "tiny-random-llava", "--limit", "4", "--steps", "1", "--out", str(out),
               "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_distill_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(["align", "--method", "distill", "--model", "tiny-random-llava", "--limit", "4", "--layers", "2,4",
               "--steps", "2", "--batch-size", "4", "--mini-batch-size", "2", "--max-new-tokens", "3",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    assert "align (distill) complete" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["teacher_layer"] == run["default_layer"] and run["config"]["method"] == "distill"


def test_distill_with_ptx_learns_the_reference_answers(base_model, tmp_path):
    """--ptx-coef with distillation: the answers' NLL at the ptx layer joins every minibatch (logged) and falls."""
    rows = [{"id": f"q{i}", "prompt": p, "image": "skimage:" + PHOTOS[i % 4], "harmful": False, "answer": "red"}
            for i, p in enumerate(PROMPTS)]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tr = DistillTrainer(cfg_for(path, tmp_path / "p", ptx_coef=1.0, learning_rate=5e-3), adapter=fresh_adapter(base_model),
                        log=lambda m: None)
    assert tr.ptx_layer == tr.teacher_layer and len(tr.ptx_pool) == 6
    logged = [tr.train_step(s)["ptx_loss"] for s in range(1, 16)]
    print("ptx NLL per step:", [round(x, 2) for x in logged])
    assert logged[-1] < 0.5 * logged[0]


def test_anchor_answers_keeps_visual_questions_at_the_teacher_layer(base_model, tmp_path):
    rows = [{"id": f"q{i}", "prompt": p, "image": "skimage:" + PHOTOS[i % 4], "harmful": False,
             **({"answer": "red"} if i % 2 else {})} for i, p in enumerate(PROMPTS)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tr = DistillTrainer(cfg_for(path, tmp_path / "a", anchor_answers=True), adapter=fresh_adapter(base_model),
                        log=lambda m: None)
    from layersafe.rl.onpolicy import draw_batch

    for step in (1, 2, 3):
        batch = draw_batch(tr.samples, tr.benign, tr.cfg, step)
        layers = tr.row_layers(batch, step)
        for s, l in zip(batch, layers):
            assert l == tr.teacher_layer if s.meta.get("answers") else l in (2, 4)
