"""PPO math for L-PPO as pure functions (docs/design.md §1, §5): no model, no optimiser, no state
except the adaptive KL controller.

Notation follows the paper (Bachu et al., ICML 2025, §4) as summarised in docs/design.md §1:
  eq. 5   R = r(x, y) − η·KL(π_RL ‖ π_SFT)               -> :func:`kl_estimate`, :func:`token_rewards`
  eq. 6   Â_t by GAE from a value head V                  -> :func:`gae`
  eq. 7   K_t = π_θ(y_t | s_t) / π_θold(y_t | s_t)        -> inside :func:`policy_loss`
  eq. 8   L_clip = max(−K·Â, −clip(K, 1−ε, 1+ε)·Â)        -> :func:`policy_loss`
  eq. 9   L_V = c1·(V(s_t) − R_t)²                        -> :func:`value_loss`
  eq. 10  L-PPO: the same, with the policy (and K) fed P(e_l) of encoder layer l (trainer, lppo.py).
(The per-equation numbering is docs/design.md §1's ordering of eqs. 5–9; the math is standard PPO-RLHF.)

Shapes: every per-token tensor is ``[B, T]`` over *response* tokens, right-padded, with a float
or bool ``mask`` that is 1 on real response tokens (EOS included) and 0 on padding. Padding
never contributes to a sum, mean, variance, advantage or loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------
# Masked statistics


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() if dim is None else (x * m).sum(dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """Mean of ``x`` over positions where ``mask`` is 1 (all of them, or along ``dim``).

    An all-zero mask gives 0, not NaN: an empty minibatch slice must not poison the loss."""
    m = mask.to(x.dtype)
    return masked_sum(x, m, dim) / (m.sum() if dim is None else m.sum(dim)).clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance over masked positions; ``unbiased`` uses n−1 (Bessel), as TRL's whitening does."""
    m = mask.to(x.dtype)
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m)
    n = m.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean)/std over masked positions (advantage whitening, docs/design.md §5).

    ``shift_mean=False`` only rescales (used for rewards: shifting them would change which
    responses are better than doing nothing). Padding positions are returned as 0."""
    m = mask.to(x.dtype)
    mean, var = masked_mean(x, m), masked_var(x, m)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * m


# --------------------------------------------------------------------------------------------
# Log-probabilities, entropy


def logprobs_from_logits(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log π(token) for ``logits [B, T, V]`` and ``tokens [B, T]`` -> ``[B, T]``."""
    return torch.gather(F.log_softmax(logits.float(), dim=-1), 2, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) per position: H = logsumexp(z) − Σ softmax(z)·z  (``[..., V]`` -> ``[...]``).

    Written this way (not −Σ p log p) because p log p is 0·(−inf) = NaN where p underflows."""
    z = logits.float()
    p = F.softmax(z, dim=-1)
    return torch.logsumexp(z, dim=-1) - (p * z).sum(-1)


# --------------------------------------------------------------------------------------------
# KL penalty and per-token reward (eq. 5)

KL_ESTIMATORS = ("k1", "k3")


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(π ‖ π_ref) from the log-probs of tokens *sampled from π* (Schulman, "Approximating KL").

    * ``k1`` = log π − log π_ref: unbiased, can be negative per token.
    * ``k3`` = (ρ − 1) − log ρ with ρ = π_ref/π: unbiased, always ≥ 0, lower variance when π ≈ π_ref.
    """
    log_ratio = logp - ref_logp
    if kind == "k1":
        return log_ratio
    if kind == "k3":
        # ρ = exp(−log_ratio); (ρ − 1) − log ρ = expm1(−lr) + lr (expm1 keeps precision near 0).
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; use one of {KL_ESTIMATORS}")


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row (``[B]``); rows with no token give 0."""
    t = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), t, torch.zeros_like(t)).max(dim=1).values


def token_rewards(
    scores: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
    kl_coef: float, kl_kind: str = "k1",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 per token: r_t = −η·KL_t, plus the sequence score r(x, y) on the final response
    token (the EOS when the response stopped; docs/design.md §5: not one past it as TRL does).

    Returns ``(rewards [B, T], kl [B, T])`` (both 0 on padding). ``scores`` is ``[B]`` and should
    already include any no-stop-token penalty (:func:`apply_missing_eos_penalty`)."""
    m = mask.to(logp.dtype)
    kl = kl_estimate(logp, ref_logp, kl_kind) * m
    rewards = -kl_coef * kl
    idx = last_token_index(mask)
    rewards = rewards.clone()
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, idx] += scores.to(rewards.dtype) * (m.sum(1) > 0)
    return rewards * m, kl


def apply_missing_eos_penalty(scores: torch.Tensor, stopped: torch.Tensor, penalty: float) -> torch.Tensor:
    """Add ``penalty`` (a negative number) to the score of every response that ran out of
    tokens without emitting a stop token: truncated text must not look finished (docs/design.md §5)."""
    return scores + penalty * (~stopped.bool()).to(scores.dtype)


# --------------------------------------------------------------------------------------------
# Advantages (eq. 6)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016), eq. 6:

        δ_t = r_t + γ·V(s_{t+1}) − V(s_t),   Â_t = δ_t + γλ·Â_{t+1},   R_t = Â_t + V(s_t)

    with V(s_{T}) = 0 after the last real token (the episode ends at EOS / the length limit).
    Padding (``mask`` 0, right side only) carries no value and no advantage. Returns
    ``(advantages, returns)``, both ``[B, T]`` and 0 on padding."""
    m = mask.to(values.dtype)
    values = values * m
    rewards = rewards * m
    B, T = rewards.shape
    adv = torch.zeros_like(rewards)
    last = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(T)):  # CleanRL-style backward sweep; T is a few hundred tokens at most
        next_v = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = (delta + gamma * lam * last) * m[:, t]
        adv[:, t] = last
    returns = (adv + values) * m
    return adv, returns


# --------------------------------------------------------------------------------------------
# Losses (eqs. 7–9)


@dataclass
class PolicyLossOut:
    loss: torch.Tensor  # scalar, to minimise
    clipfrac: torch.Tensor  # share of tokens where the clipped term was the active one
    approx_kl: torch.Tensor  # E[(K − 1) − log K] (k3 of new vs old): early-stop signal
    ratio_mean: torch.Tensor


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip_range: float) -> PolicyLossOut:
    """Clipped surrogate, eqs. 7–8: K_t = exp(log π_θ − log π_old),
    L = mean_t max(−K_t·Â_t, −clip(K_t, 1−ε, 1+ε)·Â_t) over response tokens."""
    log_ratio = (logp - old_logp) * mask.to(logp.dtype)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((clipped > unclipped).to(logp.dtype), mask)
        approx_kl = masked_mean(torch.expm1(log_ratio) - log_ratio, mask)
        ratio_mean = masked_mean(ratio, mask)
    return PolicyLossOut(loss, clipfrac, approx_kl, ratio_mean)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip_range_value: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss, eq. 9 (before the c1 weight):
    ½·mean_t max((V − R)², (V_old + clip(V − V_old, −ε_v, ε_v) − R)²). ``None`` turns clipping off.

    Returns ``(loss, clipfrac)``. The ½ is the usual convention (TRL, CleanRL); c1 absorbs it."""
    err = (values - returns) ** 2
    if clip_range_value is None:
        return 0.5 * masked_mean(err, mask), torch.zeros((), dtype=values.dtype, device=values.device)
    v_clipped = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    err_clipped = (v_clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(err, err_clipped), mask)
    with torch.no_grad():
        clipfrac = masked_mean((err_clipped > err).to(values.dtype), mask)
    return loss, clipfrac


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var[R − V]/Var[R] over masked tokens: 1 = perfect critic, 0 = constant, < 0 = worse than constant."""
    var_r = masked_var(returns, mask)
    if var_r.item() == 0:
        return float("nan")
    return float(1 - masked_var(returns - values, mask) / var_r)


# --------------------------------------------------------------------------------------------
# KL coefficient η


class FixedKLController:
    """η stays constant."""

    def __init__(self, kl_coef: float):
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, d: dict) -> None:
        self.value = float(d["value"])


class AdaptiveKLController(FixedKLController):
    """Ziegler et al. 2019: η ← η·(1 + clip(KL/target − 1, −0.2, 0.2)·n_steps/horizon).

    Pushes the measured per-sequence KL towards ``target``; ``horizon`` (in samples) sets how fast."""

    def __init__(self, kl_coef: float, target: float, horizon: int):
        super().__init__(kl_coef)
        if target <= 0 or horizon <= 0:
            raise ValueError("adaptive KL needs target > 0 and horizon > 0")
        self.target, self.horizon = float(target), int(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        if not math.isfinite(current_kl):
            return
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon


def ptx_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PPO-ptx term (Ouyang et al. 2022, eq. 2: objective + γ·E_{x~D}[log π(x)]), as a loss:
    the mean negative log-likelihood of the supervised tokens (``mask`` = 1). The trainer adds
    γ × this to each minibatch's PPO loss, anchoring answers the reward alone does not protect."""
    return -masked_mean(logp, mask)
