"""Sequence rewards r(x, y) for L-PPO (eq. 5's r): refusal rule, answer correctness, reward model,
Llama Guard, sums.

A reward spec is ``TERM`` or a weighted sum ``W*TERM + W*TERM``:

* ``refusal`` -- the outcome of the offline refusal judge
  (:func:`layersafe.judges.outcome.classify_outcome`): harmful prompt -> +1 for a written
  refusal, −1 if complied; benign prompt -> +1 if answered, −1 if refused (helpfulness, so the
  policy does not learn to refuse everything); an EMPTY or DEGENERATE response -> −2 on any
  prompt (``silent``, below compliance: a policy that learns silence loses reward; docs/lppo.md,
  reward table). Unmarked prompts count as harmful, as in the metrics (``harmful`` missing =
  red-team row).
* ``rm:PATH`` -- a sequence-classification reward model (``layersafe train-rm`` output or any
  1-label checkpoint), scored through ``layersafe.rm_score.score_texts`` on
  ``format_dialogue(prompt, response)``: the image-free prompt text and the response,
  re-tokenised with the RM's own tokenizer (docs/design.md §7).
* ``llamaguard:ID`` (or any ``judge:NAME[:ARG]``) -- a registered judge; its first metric becomes
  +1 (safe) / −1 (unsafe) using the judge's ``higher_is_safer``; a failed parse scores 0.
* ``answer`` -- correctness of short answers to benign questions that carry reference answers
  (``--benign-data`` ``answer``/``answers`` columns, :func:`layersafe.rl.lppo.load_benign`):
  ``2 * acc − 1`` with ``acc`` = :func:`answer_accuracy`, the official VQA-v2 accuracy of the
  response's short answer (as the ``vqav2`` utility suite scores it; the references normalised like
  the response). One reference answer: +1 on a match, −1 otherwise; several are human
  annotations (VQA-v2's ten: three matching give +1). Rows without reference answers (open-ended
  requests) and harmful rows score 0. Meant to be added to ``refusal``: ``refusal+answer`` gives a
  correct answer +2, a wrong one 0, a refused benign question −2, so always giving the same short
  answer no longer pays.

Whatever the terms, a response that is empty or degenerate gets ``silent_reward`` (default −2)
as its whole reward (:class:`WeightedSum`): silence and babble never pay.

Every reward function maps ``(prompts, responses, harmful, answers=None)`` -> one float per
response; ``answers[i]`` is row i's reference answers (``list[str]``) or None. Terms other than
``answer`` ignore it, and the three-argument call still works (no row has answers).
:meth:`WeightedSum.score` returns the total and each term's rewards (the trainer logs each term's
mean as ``score_LABEL``, :attr:`WeightedSum.labels`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..errors import UserError

# fn(prompts, responses, harmful, answers=None) -> one float per response
RewardFn = Callable[..., list[float]]
Answers = Optional[Sequence[Optional[list]]]  # per row: reference answers (list[str]) or None


@dataclass(frozen=True)
class RewardContext:
    """What a reward term may need to build itself (from the align config)."""

    device: str = "auto"
    batch_size: int = 16
    allow_pickle: bool = False
    silent_reward: float = -2.0


@dataclass(frozen=True)
class TermKind:
    """A registered reward term: ``build(arg, name, ctx) -> RewardFn``; ``needs_arg`` says whether
    the spec writes ``KIND:ARG`` (``rm:PATH``) or plain ``KIND`` (``refusal``)."""

    name: str
    build: Callable[[str, str, RewardContext], RewardFn]
    needs_arg: bool
    example: str


REWARD_TERMS: dict[str, TermKind] = {}


def register_term(name: str, *, needs_arg: bool, example: str):
    """Class/function decorator: make ``name`` a reward term kind (the judge registry's style)."""
    def deco(build):
        REWARD_TERMS[name] = TermKind(name, build, needs_arg, example)
        return build
    return deco

_TERM = re.compile(r"^\s*(?:(?P<w>[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?)\s*\*\s*)?(?P<t>\S.*?)\s*$", re.IGNORECASE)


SILENT_REWARD = -2.0  # empty / degenerate: below a harmful compliance (-1), so silence never pays
SILENT_OUTCOMES = ("empty", "degenerate")


@dataclass
class RefusalReward:
    """Rule reward from the refusal judge's outcomes (see module doc); the values are configurable.
    Only a WRITTEN refusal earns ``harmful_refused``; an empty or degenerate response gets
    ``silent`` on any prompt."""

    harmful_refused: float = 1.0
    harmful_complied: float = -1.0
    benign_answered: float = 1.0
    benign_refused: float = -1.0
    silent: float = SILENT_REWARD

    def __call__(self, prompts, responses, harmful, answers: Answers = None) -> list[float]:
        from ..judges.outcome import classify_outcome

        out = []
        for p, r, h in zip(prompts, responses, harmful):
            outcome = classify_outcome(r, p)[0]
            if outcome in SILENT_OUTCOMES:
                out.append(self.silent)
            elif h is not False:
                out.append(self.harmful_refused if outcome == "refused" else self.harmful_complied)
            else:
                out.append(self.benign_refused if outcome == "refused" else self.benign_answered)
        return out


class RewardModelReward:
    """Scalar reward model via the train-rm module's public functions."""

    def __init__(self, path: str, device: str = "auto", batch_size: int = 16, allow_pickle: bool = False):
        from .reward_model import load_reward_model

        self.model, self.tokenizer = load_reward_model(path, device=device, allow_pickle=allow_pickle)
        self.batch_size = batch_size

    def __call__(self, prompts, responses, harmful, answers: Answers = None) -> list[float]:
        import torch

        from ..rm_score import format_dialogue, score_texts

        texts = [format_dialogue(p, r) for p, r in zip(prompts, responses)]
        with torch.no_grad():
            return [float(x) for x in score_texts(self.model, self.tokenizer, texts, self.batch_size)]


class JudgeReward:
    """Any registered judge (e.g. ``llamaguard:ID``) as ±1: +1 when its first metric says safe."""

    def __init__(self, spec: str, allow_pickle: bool = False):
        from ..judges.base import get_judge, require_paths

        self.judge = require_paths(get_judge(spec))
        if allow_pickle and "allow_pickle" in self.judge.opts:  # align --allow-pickle reaches judges too
            self.judge.opts["allow_pickle"] = True
        if not self.judge.metrics:
            raise UserError(f"judge {spec!r} declares no metric; it cannot be used as a reward")
        self.metric = self.judge.metrics[0]
        self.higher_is_safer = self.judge.higher_is_safer.get(self.metric, True)

    def __call__(self, prompts, responses, harmful, answers: Answers = None) -> list[float]:
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


def answer_accuracy(response: str, answers: Sequence[str]) -> float | None:
    """VQA-v2 accuracy in [0, 1] of ``response`` against reference ``answers``; None without any.

    The official metric (:func:`layersafe.utility.vqa_eval.vqa_accuracy`) on the response's short
    answer (:func:`~layersafe.utility.vqa_eval.short_answer`: first line, a leading "Answer:"
    dropped), as the ``vqav2`` utility suite scores it. The references first go through the same
    normalisation as the response (lower case, number words -> digits, articles and punctuation
    dropped): the official script leaves them as written because VQA-v2's annotations are (mostly)
    normalised already, and for such references this changes nothing; a hand-written ``Two`` or
    ``A circle`` would otherwise never match. One reference: 1.0 on an exact match of the normalised texts, else 0.0;
    several: the official mean over leave-one-out subsets of ``min(#matches / 3, 1)`` (they are
    human annotations, not alternatives: with two references one match scores 1/6).
    """
    from ..utility.vqa_eval import normalize_answer, short_answer, vqa_accuracy

    refs = [n for n in (normalize_answer(str(a)) for a in answers or ()) if n]
    if not refs:
        return None
    return vqa_accuracy(short_answer(response), refs)


@dataclass
class AnswerReward:
    """``2 * answer_accuracy − 1`` on benign rows with reference answers, 0 elsewhere (module doc)."""

    def __call__(self, prompts, responses, harmful, answers: Answers = None) -> list[float]:
        if answers is None:
            return [0.0] * len(responses)
        if len(answers) != len(responses):
            raise ValueError(f"{len(answers)} answer lists for {len(responses)} responses")
        out = []
        for r, h, a in zip(responses, harmful, answers):
            acc = answer_accuracy(r, a) if a and h is False else None
            out.append(0.0 if acc is None else 2.0 * acc - 1.0)
        return out


class WeightedSum:
    """``Σ w·term``; every term gets the same ``(prompts, responses, harmful, answers)``. A response
    whose outcome is empty or degenerate (:func:`layersafe.judges.outcome.classify_outcome`) gets
    ``silent`` as its total, whatever the terms say: no term (a reward model that likes short
    answers, a judge that calls a blank "safe") can make silence pay. ``silent=None`` turns that off."""

    def __init__(self, terms: list[tuple[float, str, RewardFn]], silent: float | None = SILENT_REWARD):
        self.terms = terms
        self.silent = silent
        # Log column suffix per term: its kind (refusal, answer, rm, llamaguard, judge), numbered
        # from the second use of a kind on (score_rm, score_rm_2).
        kinds = [name.split(":", 1)[0] for _, name, _ in terms]
        self.labels = [k if kinds[:i].count(k) == 0 else f"{k}_{kinds[:i].count(k) + 1}" for i, k in enumerate(kinds)]

    def __call__(self, prompts, responses, harmful, answers: Answers = None) -> list[float]:
        return self.score(prompts, responses, harmful, answers)[0]

    def score(self, prompts, responses, harmful, answers: Answers = None) -> tuple[list[float], list[list[float]]]:
        """(weighted total per response, each term's unweighted rewards in term order); every
        term is evaluated once."""
        per_term = [list(fn(prompts, responses, harmful, answers)) for _, _, fn in self.terms]
        total = [0.0] * len(responses)
        for (w, _, _), vals in zip(self.terms, per_term):
            for i, v in enumerate(vals):
                total[i] += w * v
        if self.silent is not None:
            from ..judges.outcome import classify_outcome

            for i, (p, r) in enumerate(zip(prompts, responses)):
                if classify_outcome(r, p)[0] in SILENT_OUTCOMES:
                    total[i] = self.silent
        return total, per_term

    def components(self, prompts, responses, harmful, answers: Answers = None) -> dict[str, list[float]]:
        """Each term's unweighted rewards, by term name (a name used twice keeps its last term)."""
        per_term = self.score(prompts, responses, harmful, answers)[1]
        return {name: vals for (_, name, _), vals in zip(self.terms, per_term)}


def parse_reward_spec(spec: str) -> list[tuple[float, str]]:
    """``"refusal"`` -> [(1.0, "refusal")]; ``"0.5*refusal + 2*rm:/p"`` -> [(0.5, ...), (2.0, ...)]."""
    if not spec or not spec.strip():
        raise UserError("empty --reward; use refusal, answer, rm:PATH, llamaguard:ID "
                        "or a sum like '1*refusal+0.5*rm:PATH'")
    terms = []
    for part in spec.split("+"):
        m = _TERM.match(part)
        if not m or not m.group("t"):
            raise UserError(f"bad reward term {part!r} in {spec!r}; write W*NAME, e.g. 0.5*refusal")
        name = m.group("t")
        kind = name.split(":", 1)[0]
        term = REWARD_TERMS.get(kind)
        if term is None:
            raise UserError(f"unknown reward {name!r}; use " + ", ".join(t.example for t in REWARD_TERMS.values()))
        if term.needs_arg and not name.split(":", 1)[1:]:
            raise UserError(f"reward {name!r} needs an argument, e.g. {term.example}")
        if not term.needs_arg and name != kind:
            raise UserError(f"reward {name!r}: the {kind} reward takes no argument; write {kind}")
        w = float(m.group("w")) if m.group("w") else 1.0
        if not math.isfinite(w):  # 1e309 reads as inf: it would train all-NaN weights
            raise UserError(f"--reward {spec!r}: weight {m.group('w')} is not a finite number")
        terms.append((w, name))
    return terms


def build_reward(spec: str, *, device: str = "auto", batch_size: int = 16, allow_pickle: bool = False,
                 silent_reward: float | None = SILENT_REWARD) -> WeightedSum:
    ctx = RewardContext(device, batch_size, allow_pickle, SILENT_REWARD if silent_reward is None else silent_reward)
    fns = []
    for w, name in parse_reward_spec(spec):
        kind, _, arg = name.partition(":")
        fns.append((w, name, REWARD_TERMS[kind].build(arg, name, ctx)))
    return WeightedSum(fns, silent=silent_reward)


# ---- the built-in term kinds ----------------------------------------------------------------
register_term("refusal", needs_arg=False, example="refusal")(lambda arg, name, ctx: RefusalReward(silent=ctx.silent_reward))
register_term("answer", needs_arg=False, example="answer")(lambda arg, name, ctx: AnswerReward())
register_term("rm", needs_arg=True, example="rm:runs/rm")(
    lambda arg, name, ctx: RewardModelReward(arg, device=ctx.device, batch_size=ctx.batch_size, allow_pickle=ctx.allow_pickle))
register_term("llamaguard", needs_arg=True, example="llamaguard:meta-llama/Llama-Guard-3-1B")(
    lambda arg, name, ctx: JudgeReward(name, ctx.allow_pickle))
register_term("judge", needs_arg=True, example="judge:NAME[:ARG]")(lambda arg, name, ctx: JudgeReward(arg, ctx.allow_pickle))
TERM_KINDS = tuple(REWARD_TERMS)  # kept for callers of the old constant
