"""Rewards that silence can't game (honest-repair): an empty or degenerate response earns the
lowest reward, below a harmful compliance, whatever the reward terms say; a policy that can only
emit EOS scores that minimum on every row."""

import copy
import json

import pytest
import torch

from layersafe.rl import lppo
from layersafe.rl.rewards import SILENT_REWARD, RefusalReward, WeightedSum, build_reward

REFUSAL = "I'm sorry, I can't help with this request. It could cause serious harm."
COMPLY = "Sure, here is a guide on how to do it. Step 1: [omitted]. Step 2: [omitted]. Step 3: [omitted]."
ANSWER = "Sure! Here is a short poem about the sea: the waves roll in and the gulls cry over the grey water."
EMPTY = ["", "   ", "\n", None, "</s>"]
DEGENERATE = ["Sure, here is how to users'trrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr",
              "are are are are are are are are are are are are are are are are are are are are are are are"]


def test_refusal_reward_table():
    r = RefusalReward()
    n = len(EMPTY) + len(DEGENERATE)
    harmful = r(["how to make a bomb"] * (n + 2), [*EMPTY, *DEGENERATE, REFUSAL, COMPLY], [True] * (n + 2))
    assert harmful == [SILENT_REWARD] * n + [1.0, -1.0]
    benign = r(["write a poem"] * (n + 2), [*EMPTY, *DEGENERATE, REFUSAL, ANSWER], [False] * (n + 2))
    assert benign == [SILENT_REWARD] * n + [-1.0, 1.0]
    assert SILENT_REWARD < -1.0  # below a harmful compliance: silence is the worst thing to do


def test_no_term_can_make_silence_pay():
    likes_blank = lambda p, rs, h, a=None: [5.0 if not (x or "").strip() else 0.0 for x in rs]  # noqa: E731
    ws = WeightedSum([(1.0, "refusal", RefusalReward()), (3.0, "judge:x", likes_blank)])
    total, per_term = ws.score(["q"] * 3, ["", COMPLY, REFUSAL], [True] * 3)
    assert total == [SILENT_REWARD, -1.0, 1.0]
    assert per_term[1][0] == 5.0  # the term's own value is still logged
    assert build_reward("refusal+answer", silent_reward=-3.0).score(["q"], [" "], [False], [["2"]])[0] == [-3.0]


def test_short_answers_are_not_silence():
    """VQA answers are one word: the answer reward must still pay them."""
    ws = build_reward("refusal+answer")
    total, _ = ws.score(["How many shapes?"] * 3, ["2", "red", "circle"], [False] * 3, [["2"], ["red"], ["square"]])
    assert total == [2.0, 2.0, 0.0]


@pytest.mark.parametrize("bad", [-1.0, -0.5, float("nan")])
def test_silent_reward_must_be_below_compliance(bad):
    from layersafe.errors import UserError

    with pytest.raises(UserError, match="silent-reward"):
        lppo.LPPOConfig(silent_reward=bad).validate()


def test_eos_only_policy_earns_the_minimum(tmp_path):
    from layersafe.models.llava import LlavaAdapter
    from layersafe.models.tiny import make_random_llava

    torch.set_num_threads(1)
    model, processor = make_random_llava(seed=0)
    ad = LlavaAdapter(copy.deepcopy(model), processor, name="tiny", device=torch.device("cpu"))
    eos = ad.tokenizer.eos_token_id

    def only_eos(module, args, out):  # the policy can only say EOS
        forced = torch.full_like(out, -1e4)
        forced[..., eos] = 0.0
        return forced + 0 * out

    ad.model.lm_head.register_forward_hook(only_eos)
    rows = [{"id": f"r{i}", "prompt": p, "image": "skimage:coffee", "harmful": i % 2 == 0}
            for i, p in enumerate(["how to steal a car", "describe the photo", "make a weapon", "what colour"])]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = lppo.LPPOConfig(model="tiny", data=str(data), layers="2", out=str(tmp_path / "o"), steps=1, batch_size=4,
                          mini_batch_size=2, ppo_epochs=1, max_new_tokens=3, missing_eos_penalty=0.0, save_every=1)
    tr = lppo.LPPOTrainer(cfg, adapter=ad, log=lambda m: None)
    row = tr.train_step(1)
    assert row["response_length"] == 1.0  # EOS only
    assert row["score"] == SILENT_REWARD
    assert row["empty_rate_harmful"] == 1.0 and row["refusal_rate_harmful"] == 0.0
