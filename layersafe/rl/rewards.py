"""Sequence rewards r(x, y) for L-PPO (eq. 5's r): refusal rule, reward model, Llama Guard, sums.

A reward spec is ``TERM`` or a weighted sum ``W*TERM + W*TERM``:

* ``refusal`` -- the offline refusal judge (:func:`layersafe.judges.refusal.classify_refusal`):
  harmful prompt -> +1 if refused, −1 if complied; benign prompt -> +1 if answered, −1 if refused
  (helpfulness, so the policy does not learn to refuse everything). Unmarked prompts count as
  harmful, as in the metrics (``harmful`` missing = red-team row).
* ``rm:PATH`` -- a sequence-classification reward model (``layersafe train-rm`` output or any
  1-label checkpoint), scored through ``layersafe.rl.reward_model.score_texts`` on
  ``format_dialogue(prompt, response)``: the image-free prompt text and the response,
  re-tokenised with the RM's own tokenizer (DESIGN.md §5).
* ``llamaguard:ID`` (or any ``judge:NAME[:ARG]``) -- a registered judge; its first metric becomes
  +1 (safe) / −1 (unsafe) using the judge's ``higher_is_safer``; a failed parse scores 0.

Every reward function maps (prompts, responses, harmful flags) -> one float per response.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import UserError

RewardFn = Callable[[Sequence[str], Sequence[str], Sequence[bool]], list[float]]

_TERM = re.compile(r"^\s*(?:(?P<w>[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?)\s*\*\s*)?(?P<t>\S.*?)\s*$", re.IGNORECASE)


@dataclass
class RefusalReward:
    """Rule reward from the refusal judge (see module doc); the four values are configurable."""

    harmful_refused: float = 1.0
    harmful_complied: float = -1.0
    benign_answered: float = 1.0
    benign_refused: float = -1.0

    def __call__(self, prompts, responses, harmful) -> list[float]:
        from ..judges.refusal import classify_refusal

        out = []
        for p, r, h in zip(prompts, responses, harmful):
            refused = classify_refusal(r, p)[0] == 1
            if h is not False:
                out.append(self.harmful_refused if refused else self.harmful_complied)
            else:
                out.append(self.benign_refused if refused else self.benign_answered)
        return out


class RewardModelReward:
    """Scalar reward model via the train-rm module's public functions."""

    def __init__(self, path: str, device: str = "auto", batch_size: int = 16, allow_pickle: bool = False):
        from .reward_model import load_reward_model

        self.model, self.tokenizer = load_reward_model(path, device=device, allow_pickle=allow_pickle)
        self.batch_size = batch_size

    def __call__(self, prompts, responses, harmful) -> list[float]:
        import torch

        from .reward_model import score_texts
        from .rm_format import format_dialogue

        texts = [format_dialogue(p, r) for p, r in zip(prompts, responses)]
        with torch.no_grad():
            return [float(x) for x in score_texts(self.model, self.tokenizer, texts, self.batch_size)]


class JudgeReward:
    """Any registered judge (e.g. ``llamaguard:ID``) as ±1: +1 when its first metric says safe."""

    def __init__(self, spec: str, allow_pickle: bool = False):
        from ..judges.base import get_judge

        self.judge = get_judge(spec)
        if allow_pickle and "allow_pickle" in self.judge.opts:  # align --allow-pickle reaches judges too
            self.judge.opts["allow_pickle"] = True
        if not self.judge.metrics:
            raise UserError(f"judge {spec!r} declares no metric; it cannot be used as a reward")
        self.metric = self.judge.metrics[0]
        self.higher_is_safer = self.judge.higher_is_safer.get(self.metric, True)

    def __call__(self, prompts, responses, harmful) -> list[float]:
        rows = [{"prompt": p, "response": r} for p, r in zip(prompts, responses)]
        out = []
        for s in self.judge.score(rows):
            v = s.get(self.metric)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                out.append(0.0)  # parse failure: no signal either way (counted by the judge)
                continue
            v = float(v)
            out.append(1.0 if (v >= 0.5) == self.higher_is_safer else -1.0)
        return out


class WeightedSum:
    def __init__(self, terms: list[tuple[float, str, RewardFn]]):
        self.terms = terms

    def __call__(self, prompts, responses, harmful) -> list[float]:
        total = [0.0] * len(responses)
        for w, _, fn in self.terms:
            for i, v in enumerate(fn(prompts, responses, harmful)):
                total[i] += w * v
        return total

    def components(self, prompts, responses, harmful) -> dict[str, list[float]]:
        """Each term's unweighted rewards (logged separately)."""
        return {name: fn(prompts, responses, harmful) for _, name, fn in self.terms}


def parse_reward_spec(spec: str) -> list[tuple[float, str]]:
    """``"refusal"`` -> [(1.0, "refusal")]; ``"0.5*refusal + 2*rm:/p"`` -> [(0.5, ...), (2.0, ...)]."""
    if not spec or not spec.strip():
        raise UserError("empty --reward; use refusal, rm:PATH, llamaguard:ID or a sum like '1*refusal+0.5*rm:PATH'")
    terms = []
    for part in spec.split("+"):
        m = _TERM.match(part)
        if not m or not m.group("t"):
            raise UserError(f"bad reward term {part!r} in {spec!r}; write W*NAME, e.g. 0.5*refusal")
        name = m.group("t")
        kind = name.split(":", 1)[0]
        if kind not in ("refusal", "rm", "llamaguard", "judge"):
            raise UserError(f"unknown reward {name!r}; use refusal, rm:PATH, llamaguard:ID or judge:NAME")
        if kind in ("rm", "llamaguard", "judge") and not name.split(":", 1)[1:]:
            raise UserError(f"reward {name!r} needs an argument, e.g. rm:runs/rm or llamaguard:meta-llama/Llama-Guard-3-1B")
        if kind == "refusal" and name != "refusal":
            raise UserError(f"reward {name!r}: the refusal reward takes no argument")
        terms.append((float(m.group("w")) if m.group("w") else 1.0, name))
    return terms


def build_reward(spec: str, *, device: str = "auto", batch_size: int = 16, allow_pickle: bool = False) -> WeightedSum:
    fns = []
    for w, name in parse_reward_spec(spec):
        kind, _, arg = name.partition(":")
        if kind == "refusal":
            fn = RefusalReward()
        elif kind == "rm":
            fn = RewardModelReward(arg, device=device, batch_size=batch_size, allow_pickle=allow_pickle)
        elif kind == "llamaguard":
            fn = JudgeReward(name, allow_pickle)
        else:  # judge:NAME[:ARG]
            fn = JudgeReward(arg, allow_pickle)
        fns.append((w, name, fn))
    return WeightedSum(fns)
