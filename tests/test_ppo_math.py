"""PPO math (layersafe.rl.ppo): hand-computed values, plain reference loops, invariants."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from layersafe.rl import ppo

T = torch.tensor


# ----------------------------------------------------------------------------------- masked stats
def test_masked_mean_var_whiten_hand_values():
    x = T([[1.0, 2.0, 3.0, 100.0]])
    m = T([[1, 1, 1, 0]])
    assert ppo.masked_mean(x, m).item() == pytest.approx(2.0)
    assert ppo.masked_var(x, m).item() == pytest.approx(1.0)  # unbiased: ((1)+(0)+(1))/2
    assert ppo.masked_var(x, m, unbiased=False).item() == pytest.approx(2 / 3)
    w = ppo.masked_whiten(x, m)
    assert torch.allclose(w, T([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-6)  # padding -> 0, never 100
    w2 = ppo.masked_whiten(x, m, shift_mean=False)
    assert torch.allclose(w2, T([[1.0, 2.0, 3.0, 0.0]]), atol=1e-6)  # std 1 already: only padding zeroed
    assert ppo.masked_mean(x, torch.zeros_like(m)).item() == 0.0  # empty slice: 0, not NaN
    # per-row mean along dim
    assert torch.allclose(ppo.masked_mean(T([[1.0, 3.0], [5.0, 7.0]]), T([[1, 1], [1, 0]]), dim=1), T([2.0, 5.0]))


# ----------------------------------------------------------------------------------- KL, entropy
def test_kl_estimators_hand_values_and_properties():
    logp, ref = T([-1.0, -2.0, -3.0]), T([-2.0, -2.0, -1.0])
    assert torch.allclose(ppo.kl_estimate(logp, ref, "k1"), T([1.0, 0.0, -2.0]))
    # k3 = (ρ − 1) − log ρ, ρ = π_ref/π
    expect = [math.exp(-1) - 1 + 1, 0.0, math.exp(2) - 1 - 2]
    assert torch.allclose(ppo.kl_estimate(logp, ref, "k3"), T(expect), atol=1e-6)
    assert (ppo.kl_estimate(torch.randn(1000), torch.randn(1000), "k3") >= 0).all()
    with pytest.raises(ValueError):
        ppo.kl_estimate(logp, ref, "k9")


def test_kl_estimators_are_unbiased_monte_carlo():
    # tokens sampled from π: E[k1] = E[k3] = KL(π‖π_ref) exactly
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(6), 0)
    q = torch.softmax(torch.randn(6), 0)
    exact = (p * (p.log() - q.log())).sum().item()
    s = torch.multinomial(p, 200_000, replacement=True)
    for kind in ("k1", "k3"):
        est = ppo.kl_estimate(p.log()[s], q.log()[s], kind).mean().item()
        assert est == pytest.approx(exact, abs=0.01)


def test_entropy_and_logprobs():
    V = 7
    assert ppo.entropy_from_logits(torch.zeros(2, V)).allclose(torch.full((2,), math.log(V)))
    z = torch.randn(3, 5, V)
    p = torch.softmax(z, -1)
    assert torch.allclose(ppo.entropy_from_logits(z), -(p * p.log()).sum(-1), atol=1e-5)
    # a one-hot-like distribution whose p underflows must not give NaN
    assert torch.isfinite(ppo.entropy_from_logits(T([[0.0, -1e4, -1e4]]))).all()
    tok = torch.randint(0, V, (3, 5))
    lp = ppo.logprobs_from_logits(z, tok)
    assert torch.allclose(lp, p.log().gather(2, tok[..., None])[..., 0], atol=1e-6)


# ----------------------------------------------------------------------------------- rewards (eq. 5)
def test_token_rewards_score_on_last_real_token():
    logp = T([[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])
    ref = T([[-1.5, -1.0, -0.5], [-2.0, -9.0, -9.0]])
    mask = T([[1, 1, 1], [1, 0, 0]])
    scores = T([2.0, -1.0])
    r, kl = ppo.token_rewards(scores, logp, ref, mask, kl_coef=0.1, kl_kind="k1")
    assert torch.allclose(kl, T([[0.5, 0.0, -0.5], [1.0, 0.0, 0.0]]))
    # row 0: −0.1·kl, score on t=2 (the EOS); row 1: its only token carries −0.1·1 − 1
    assert torch.allclose(r, T([[-0.05, 0.0, 2.05], [-1.1, 0.0, 0.0]]), atol=1e-6)
    assert ppo.last_token_index(mask).tolist() == [2, 0]


def test_missing_eos_penalty():
    s = ppo.apply_missing_eos_penalty(T([1.0, 1.0]), T([True, False]), -2.0)
    assert s.tolist() == [1.0, -1.0]


# ----------------------------------------------------------------------------------- GAE (eq. 6)
def test_gae_hand_values():
    rewards = T([[0.0, 0.0, 1.0], [0.0, 1.0, 5.0]])
    values = T([[0.5, 0.6, 0.7], [0.2, 0.4, 9.0]])
    mask = T([[1, 1, 1], [1, 1, 0]])
    adv, ret = ppo.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    # γ = λ = 1: returns are the Monte-Carlo return; padding (5.0, 9.0) is ignored
    assert torch.allclose(ret, T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))
    assert torch.allclose(adv, T([[0.5, 0.4, 0.3], [0.8, 0.6, 0.0]]))
    adv, ret = ppo.gae(rewards[:1], values[:1], mask[:1], gamma=0.9, lam=0.5)
    # δ2 = 1 − .7 = .3; δ1 = .9·.7 − .6 = .03; δ0 = .9·.6 − .5 = .04; γλ = .45
    a2 = 0.3
    a1 = 0.03 + 0.45 * a2
    a0 = 0.04 + 0.45 * a1
    assert torch.allclose(adv, T([[a0, a1, a2]]), atol=1e-6)
    assert torch.allclose(ret, adv + values[:1], atol=1e-6)


def _gae_reference(rewards, values, lengths, gamma, lam):
    """The textbook definition, one row at a time: Â_t = Σ_k (γλ)^k δ_{t+k}."""
    out = []
    for r, v, n in zip(rewards.tolist(), values.tolist(), lengths):
        v = v[:n] + [0.0]
        deltas = [r[t] + gamma * v[t + 1] - v[t] for t in range(n)]
        row = [sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t)) for t in range(n)]
        out.append(row + [0.0] * (len(r) - n))
    return T(out, dtype=torch.float64)  # float32 here would put 1e-7 errors against an atol of 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0.5, 1.0), lam=st.floats(0.0, 1.0),
       B=st.integers(1, 4), Tn=st.integers(1, 9))
def test_gae_matches_reference_loop(seed, gamma, lam, B, Tn):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, Tn, generator=g, dtype=torch.float64)
    values = torch.randn(B, Tn, generator=g, dtype=torch.float64)
    lengths = torch.randint(0, Tn + 1, (B,), generator=g).tolist()
    mask = (torch.arange(Tn)[None] < T(lengths)[:, None]).double()
    adv, ret = ppo.gae(rewards, values, mask, gamma, lam)
    ref = _gae_reference(rewards, values, lengths, gamma, lam).double()
    assert torch.allclose(adv, ref, atol=1e-9)
    assert torch.allclose(ret, (ref + values) * mask, atol=1e-9)


# ----------------------------------------------------------------------------------- losses (eqs. 7–9)
def test_policy_loss_hand_values():
    old = torch.zeros(1, 4)
    new = torch.log(T([[1.5, 1.5, 0.5, 0.5]]))
    adv = T([[1.0, -1.0, 1.0, -1.0]])
    out = ppo.policy_loss(new, old, adv, torch.ones(1, 4), clip_range=0.2)
    # per token: max(−1.5, −1.2) = −1.2 (clipped); max(1.5, 1.2) = 1.5; max(−.5, −.8) = −.5; max(.5, .8) = .8 (clipped)
    assert out.loss.item() == pytest.approx((-1.2 + 1.5 - 0.5 + 0.8) / 4)
    assert out.clipfrac.item() == pytest.approx(0.5)
    approx = [(1.5 - 1) - math.log(1.5)] * 2 + [(0.5 - 1) - math.log(0.5)] * 2
    assert out.approx_kl.item() == pytest.approx(sum(approx) / 4, rel=1e-5)


def test_policy_loss_invariants():
    torch.manual_seed(1)
    logp = torch.randn(3, 5, requires_grad=True)
    mask = T([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]]).float()
    # ratio 1 (new == old): loss is the unclipped −mean(Â), clipfrac 0, approx-KL 0
    adv = torch.randn(3, 5)
    out = ppo.policy_loss(logp, logp.detach(), adv, mask, 0.2)
    assert out.loss.item() == pytest.approx(-ppo.masked_mean(adv, mask).item(), abs=1e-6)
    assert out.clipfrac.item() == 0 and out.approx_kl.item() == pytest.approx(0.0, abs=1e-7)
    out.loss.backward()
    # d/dlogp of −K·Â at K = 1 is −Â/n on real tokens, 0 on padding
    assert torch.allclose(logp.grad, -adv * mask / mask.sum(), atol=1e-6)
    # zero advantage -> zero policy gradient, whatever the ratio
    logp.grad = None
    out = ppo.policy_loss(logp, logp.detach() + torch.randn(3, 5), torch.zeros(3, 5), mask, 0.2)
    out.loss.backward()
    assert torch.count_nonzero(logp.grad) == 0


def test_value_loss_hand_values():
    v, old, ret, m = T([[1.0, 0.6]]), T([[0.5, 0.5]]), T([[2.0, 0.0]]), torch.ones(1, 2)
    loss, cf = ppo.value_loss(v, old, ret, m, clip_range_value=0.2)
    # t0: (1−2)² = 1 vs clipped V=.7: (.7−2)² = 1.69 -> 1.69; t1: .36 vs .36 (no clip) -> .36
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.36) / 2)
    assert cf.item() == pytest.approx(0.5)
    loss, cf = ppo.value_loss(v, old, ret, m, clip_range_value=None)
    assert loss.item() == pytest.approx(0.5 * (1.0 + 0.36) / 2)


def test_explained_variance():
    m = torch.ones(1, 4)
    r = T([[1.0, 2.0, 3.0, 4.0]])
    assert ppo.explained_variance(r, r, m) == pytest.approx(1.0)
    assert ppo.explained_variance(torch.full_like(r, 2.5), r, m) == pytest.approx(0.0)
    assert math.isnan(ppo.explained_variance(r, torch.ones_like(r), m))


def test_kl_controllers():
    c = ppo.AdaptiveKLController(0.1, target=6.0, horizon=1000)
    c.update(12.0, n_steps=100)  # error clipped to +0.2 -> ×1.02
    assert c.value == pytest.approx(0.102)
    c.update(3.0, n_steps=100)  # error −0.5 clipped to −0.2 -> ×0.98
    assert c.value == pytest.approx(0.102 * 0.98)
    c.update(6.6, n_steps=500)  # error 0.1 -> ×1.05
    assert c.value == pytest.approx(0.102 * 0.98 * 1.05)
    f = ppo.FixedKLController(0.05)
    f.update(100.0, 10)
    assert f.value == 0.05
    c2 = ppo.AdaptiveKLController(1.0, 6.0, 1000)
    c2.load_state_dict(c.state_dict())
    assert c2.value == c.value
