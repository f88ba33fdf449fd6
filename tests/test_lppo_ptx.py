"""PPO-ptx (--ptx-coef): the supervised answer term mixed into L-PPO's minibatch loss."""

import pytest
import torch

from layersafe.errors import UserError
from layersafe.rl import lppo, ppo
from test_lppo import base_model, fresh_adapter  # noqa: F401  (fixture: the tiny random LLaVA)
from test_reward_answer import _cfg, files  # noqa: F401  (fixture: harmful + benign-with-answers files)


def test_ptx_loss_is_the_token_mean_nll():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -9.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert ppo.ptx_loss(logp, mask).item() == pytest.approx(3.5 / 3)
    assert ppo.ptx_loss(logp, torch.zeros_like(mask)).item() == 0.0


def test_ptx_coef_must_be_non_negative(files, tmp_path):
    with pytest.raises(UserError, match="--ptx-coef"):
        _cfg(files, tmp_path / "o", ptx_coef=-1.0).validate()


def test_ptx_needs_answers(base_model, files, tmp_path):
    data, _ = files
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"prompt": "Write a short poem about this picture."}\n')
    with pytest.raises(UserError, match="reference answers"):
        lppo.LPPOTrainer(_cfg((data, plain), tmp_path / "o", ptx_coef=1.0), adapter=fresh_adapter(base_model),
                         log=lambda m: None)


def _answer_nll(tr, ptx) -> float:
    with torch.no_grad():
        logp, _, _ = lppo.response_forward(tr._unwrapped(), tr.raw, tr.image_token_id, ptx,
                                           list(range(len(ptx.layers))), 1.0, with_values=False)
    return ppo.ptx_loss(logp, ptx.response_mask.float()).item()


def test_ptx_batch_holds_the_answers_at_the_default_layer(base_model, files, tmp_path):
    tr = lppo.LPPOTrainer(_cfg(files, tmp_path / "o", ptx_coef=1.0), adapter=fresh_adapter(base_model),
                          log=lambda m: None)
    assert tr.ptx_layer == tr.adapter.default_layer and all(s.meta["answers"] for s in tr.ptx_pool)
    b = tr.ptx_batch(3)
    assert len(b.prompts) == tr.cfg.mini_batch_size and set(b.layers) == {tr.adapter.default_layer}
    for i, ans in enumerate(b.texts):
        ids = b.response_ids[i][b.response_mask[i].bool()].tolist()
        assert ids == tr.tok(ans, add_special_tokens=False)["input_ids"] + [tr.eos_id]
        assert ans == b.answers[i][0]
    again = tr.ptx_batch(3)  # a function of (seed, step)
    assert again.prompts == b.prompts and torch.equal(again.response_ids, b.response_ids)


def test_ptx_term_lowers_the_answers_nll_and_is_logged(base_model, files, tmp_path):
    # Reward switched off (weight 0) and KL off: only the ptx term moves the policy.
    kw = dict(reward="0*refusal", kl_coef=0.0, learning_rate=1e-2, ppo_epochs=2, ptx_layer="4")
    on = lppo.LPPOTrainer(_cfg(files, tmp_path / "on", ptx_coef=5.0, **kw), adapter=fresh_adapter(base_model),
                          log=lambda m: None)
    probe = on.ptx_batch(99)
    before = _answer_nll(on, probe)
    rows = [on.train_step(s) for s in (1, 2, 3)]
    assert all(r["ptx_loss"] > 0 for r in rows)
    after_on = _answer_nll(on, probe)
    assert after_on < 0.8 * before, (before, after_on)

    off = lppo.LPPOTrainer(_cfg(files, tmp_path / "off", **kw), adapter=fresh_adapter(base_model), log=lambda m: None)
    rows_off = [off.train_step(s) for s in (1, 2, 3)]
    assert "ptx_loss" not in rows_off[0]
    # Without the term the policy still drifts (whitened zero-reward advantages), but not towards the answers
    # nearly as much: the drop with ptx is at least twice the drop without.
    after_off = _answer_nll(off, probe)
    assert before - after_on > 2 * (before - after_off), (before, after_on, after_off)
