"""The ``answer`` reward of ``layersafe align``: VQA correctness on benign rows with reference
answers (parse, values, weighted sums, the benign-data loader, and the trainer passing each row's
answers through to the reward call)."""

import csv
import json

import pytest
import torch

from layersafe.cli import main
from layersafe.errors import UserError
from layersafe.io import write_rows
from layersafe.rl import lppo
from layersafe.rl.rewards import (AnswerReward, RefusalReward, WeightedSum, answer_accuracy, build_reward,
                                  parse_reward_spec)
from layersafe.utility.vqa_eval import short_answer, vqa_accuracy
from test_lppo import base_model, fresh_adapter  # noqa: F401  (fixture: the tiny random LLaVA)

torch.set_num_threads(1)  # 2 shared cores

REFUSAL = "I'm sorry, but I can't help with that."


# ----------------------------------------------------------------------------------------------
def test_parse_and_build_answer_specs():
    assert parse_reward_spec("refusal+answer") == [(1.0, "refusal"), (1.0, "answer")]
    assert parse_reward_spec("0.5*answer") == [(0.5, "answer")]
    assert parse_reward_spec(" 2*refusal + 0.25*answer ") == [(2.0, "refusal"), (0.25, "answer")]
    with pytest.raises(UserError, match=r"reward 'answer:vqa': the answer reward takes no argument; write answer"):
        parse_reward_spec("refusal+answer:vqa")
    with pytest.raises(UserError, match="the refusal reward takes no argument"):
        parse_reward_spec("refusal:x")
    with pytest.raises(UserError, match="unknown reward 'answers'; use refusal, answer, "):
        parse_reward_spec("answers")
    r = build_reward("refusal+answer")
    assert [(w, n) for w, n, _ in r.terms] == [(1.0, "refusal"), (1.0, "answer")]
    assert isinstance(r.terms[1][2], AnswerReward)
    assert r.labels == ["refusal", "answer"]
    assert build_reward("answer+2*refusal+0.5*answer").labels == ["answer", "refusal", "answer_2"]


def test_answer_term_with_argument_is_a_one_line_cli_error(capsys, tmp_path):
    # the spec is checked before any model loads (the model path here does not exist)
    data = tmp_path / "d.jsonl"
    row = {"id": "h1", "prompt": "how to pick a lock", "image": "skimage:coffee", "harmful": True}
    data.write_text(json.dumps(row) + "\n")
    rc = main(["align", "--model", str(tmp_path / "no-model"), "--data", str(data), "--out", str(tmp_path / "o"),
               "--no-progress", "--reward", "refusal+answer:x"])
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1, lines
    assert lines[0].startswith("layersafe: error:") and "the answer reward takes no argument" in lines[0]


def test_answer_accuracy_normalises_response_and_references():
    # The official metric leaves a single reference as written: a hand-written "Two" never matches.
    assert vqa_accuracy("Two.", ["Two"]) == 0.0
    # answer_accuracy normalises the references like the response (number words, case, articles,
    # punctuation) and cuts the response to its short answer, as the vqav2 suite does.
    assert answer_accuracy("Two.", ["Two"]) == 1.0
    assert answer_accuracy("Two.", ["2"]) == 1.0
    assert answer_accuracy("2", ["two"]) == 1.0
    assert answer_accuracy("A circle.", ["circle"]) == 1.0
    assert answer_accuracy("circle", ["The Circle"]) == 1.0
    assert answer_accuracy("Answer: red\nIt is red because...", ["red"]) == 1.0
    assert answer_accuracy("The answer is 3", ["3"]) == 1.0
    assert answer_accuracy("It is 2.", ["2"]) == 0.0  # not a short answer: no match
    assert answer_accuracy("3.5", ["3"]) == 0.0
    assert answer_accuracy("", ["2"]) == 0.0
    # several references are human annotations (official consensus rule), not alternatives
    assert answer_accuracy("3", ["2", "3"]) == pytest.approx(1 / 6)
    assert answer_accuracy("2", ["2"] * 10) == 1.0
    assert answer_accuracy("2", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)
    assert answer_accuracy("2", ["2"] + ["3"] * 9) == pytest.approx(0.3)
    # nothing to compare with
    assert answer_accuracy("2", []) is None
    assert answer_accuracy("2", ["", "  "]) is None
    assert answer_accuracy("2", ["the"]) is None  # an article alone normalises to nothing
    assert answer_accuracy("2", None) is None


def test_answer_reward_values():
    prompts = ["What number is shown?"] * 8
    responses = ["Two.", "3", REFUSAL, "Sure, here is a poem.", "2", "2", "2", "circle"]
    harmful = [False, False, False, False, False, True, None, False]
    answers = [["2"], ["2"], ["2"], None, [], ["2"], ["2"], ["circle"] * 3 + ["square"] * 7]
    got = AnswerReward()(prompts, responses, harmful, answers)
    # correct (normalised), wrong, refused, open-ended (no answers), empty list, harmful, unmarked
    # (= harmful, as in the refusal reward), 3 of 10 annotators
    assert got == pytest.approx([1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.8])
    assert AnswerReward()(prompts, responses, harmful) == [0.0] * 8  # the old 3-argument call: no answers
    with pytest.raises(ValueError, match="2 answer lists for 8 responses"):
        AnswerReward()(prompts, responses, harmful, [["2"], ["2"]])
    # the other terms take the 4th argument and ignore it
    refusal = RefusalReward()
    assert refusal(prompts, responses, harmful, answers) == refusal(prompts, responses, harmful)


def test_refusal_plus_answer_weighted_sum():
    prompts = ["What shape is shown?\nAnswer the question using a single word or phrase."] * 3 + \
              ["Write a short poem about the sea.", "how to pick a lock", "how to pick a lock"]
    responses = ["Circle", "Square", REFUSAL, "The sea is wide and blue.", REFUSAL, "Sure, first insert the pick."]
    harmful = [False, False, False, False, True, True]
    answers = [["circle"], ["circle"], ["circle"], None, None, None]
    r = build_reward("refusal+answer")
    # correct +2, wrong 0, refused benign question -2; open-ended and harmful rows: refusal only
    assert r(prompts, responses, harmful, answers) == [2.0, 0.0, -2.0, 1.0, 1.0, -1.0]
    total, per_term = r.score(prompts, responses, harmful, answers)
    assert total == [2.0, 0.0, -2.0, 1.0, 1.0, -1.0]
    assert per_term == [[1.0, 1.0, -1.0, 1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 0.0, 0.0, 0.0]]
    assert r.components(prompts, responses, harmful, answers) == {"refusal": per_term[0], "answer": per_term[1]}
    # weights
    w = build_reward("0.5*refusal+2*answer")
    assert w(prompts, responses, harmful, answers) == [2.5, -1.5, -2.5, 0.5, 0.5, -0.5]
    # the 3-argument call still works: the answer term is 0 everywhere
    assert r(prompts, responses, harmful) == per_term[0]
    # every term receives the same answers (custom terms too)
    seen = []

    def spy(p, s, h, a=None):
        seen.append(a)
        return [0.0] * len(s)

    WeightedSum([(1.0, "a", spy), (1.0, "b", spy)])(prompts, responses, harmful, answers)
    assert seen == [answers, answers]


# ----------------------------------------------------------------------------------------------
def test_load_benign_reads_answers_from_jsonl(tmp_path):
    rows = [{"id": "a", "prompt": "What shape?", "answer": "circle"},
            {"id": "b", "prompt": "How many?", "answers": ["2", "two"]},
            {"id": "c", "prompt": "Colour?", "answers": "red|crimson"},
            {"id": "d", "prompt": "Tell me a story about a cat."},
            {"id": "e", "prompt": "Which number?", "answer": 3},
            {"id": "f", "prompt": "Both given?", "answer": "x", "answers": [" y ", ""]},
            {"id": "g", "prompt": "Blank?", "answer": "  ", "answers": []},
            {"id": "h", "prompt": "Null?", "answer": None, "answers": None}]
    path = tmp_path / "benign.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = {s.id: s.meta.get("answers") for s in lppo.load_benign(str(path), seed=0)}
    assert got == {"benign-a": ["circle"], "benign-b": ["2", "two"], "benign-c": ["red", "crimson"], "benign-d": None,
                   "benign-e": ["3"], "benign-f": ["y"], "benign-g": None, "benign-h": None}
    samples = lppo.load_benign(str(path), seed=0)
    assert all(s.harmful is False for s in samples)
    assert samples[3].meta == {}  # rows without answers carry nothing

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q1"}) + "\n" + json.dumps({"prompt": "q2", "answers": [["2"]]}) + "\n")
    with pytest.raises(UserError, match=r"--benign-data .*bad.jsonl: row 2: answers .*give a string or a list of"):
        lppo.load_benign(str(bad), seed=0)


def test_load_benign_reads_answers_from_csv(tmp_path):
    path = tmp_path / "benign.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "prompt", "answer", "answers"])
        w.writerow(["1", "What shape?", "circle", ""])
        w.writerow(["2", "How many?", "", "2|two| "])
        w.writerow(["3", "Tell me a story.", "", ""])
        w.writerow(["4", "Colour?", "", '["red", "dark red"]'])
        w.writerow(["5", "Separator inside one answer?", "a|b", ""])
    got = [s.meta.get("answers") for s in lppo.load_benign(str(path), seed=0)]
    assert got == [["circle"], ["2", "two"], None, ["red", "dark red"], ["a|b"]]

    # lists written by layersafe's own write_rows (JSON in the CSV cell) come back as lists
    rt = tmp_path / "roundtrip.csv"
    write_rows(rt, [{"prompt": "How many?", "answers": ["2", "two"]}, {"prompt": "Open question", "answers": ""}])
    assert [s.meta.get("answers") for s in lppo.load_benign(str(rt), seed=0)] == [["2", "two"], None]

    bad = tmp_path / "bad.csv"
    bad.write_text('prompt,answers\nq1,2\nq2,"[2, two"\n')
    with pytest.raises(UserError, match=r"row 2: answers '\[2, two': starts with \[ but is not a JSON list"):
        lppo.load_benign(str(bad), seed=0)


def test_benign_rows_of_main_data_get_answers_too(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("id,prompt,image,harmful,answers\n"
                    "h1,how to pick a lock,skimage:coffee,true,2|two\n"
                    "b1,How many cups?,skimage:coffee,false,1|one\n"
                    "b2,Describe the photo.,skimage:coffee,false,\n")
    samples, benign = lppo.load_training_prompts(lppo.LPPOConfig(data=str(path)), log=lambda m: None)
    got = {s.id: (s.harmful, s.meta.get("answers")) for s in samples}
    assert got["b1"] == (False, ["1", "one"]) and got["b2"] == (False, None)
    assert got["h1"][0] is True and got["h1"][1] == "2|two"  # harmful rows: left alone, never scored
    assert benign == []


# ----------------------------------------------------------------------------------------------
HARMFUL = ["how to pick a lock", "make a fake id card", "steal a car fast", "hack a bank account"]
PHOTOS = ["coffee", "astronaut", "rocket", "chelsea"]
BENIGN_ROWS = [  # distinct answers per prompt, so a mix-up between rows would show
    {"id": "q1", "prompt": "What is shown?\nAnswer the question using a single word or phrase.", "answer": "cup",
     "image": "skimage:coffee"},
    {"id": "q2", "prompt": "How many people?\nAnswer the question using a single word or phrase.",
     "answers": ["1", "one", "1"], "image": "skimage:astronaut"},
    {"id": "q3", "prompt": "What colour is the cat?\nAnswer the question using a single word or phrase.",
     "answers": "brown|orange", "image": "skimage:chelsea"},
    {"id": "q4", "prompt": "Is it flying?\nAnswer the question using a single word or phrase.", "answer": "yes",
     "image": "skimage:rocket"},
    {"id": "o1", "prompt": "Write a short poem about this picture."},
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("answer_data")
    data = d / "harmful.jsonl"
    rows = [{"id": f"h{i}", "prompt": p, "image": "skimage:" + PHOTOS[i], "harmful": True}
            for i, p in enumerate(HARMFUL)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    benign = d / "benign.jsonl"
    benign.write_text("".join(json.dumps(r) + "\n" for r in BENIGN_ROWS))
    return data, benign


def _cfg(files, out, **kw):
    data, benign = files
    base = dict(model="tiny", data=str(data), benign_data=str(benign), benign_fraction=0.5, layers="2,4",
                out=str(out), steps=1, batch_size=8, mini_batch_size=4, ppo_epochs=1, max_new_tokens=4,
                lora_r=4, save_every=1, reward="refusal+answer")
    base.update(kw)
    return lppo.LPPOConfig(**base)


def test_trainer_passes_each_rows_answers_to_the_reward(base_model, files, tmp_path):
    tr = lppo.LPPOTrainer(_cfg(files, tmp_path / "o"), adapter=fresh_adapter(base_model), log=lambda m: None)
    assert tr.has_answers and tr.reward_fn.labels == ["refusal", "answer"]
    by_prompt = {s.prompt: s for s in tr.benign}
    ro = tr.rollout(1)
    benign_rows = [j for j, h in enumerate(ro.harmful) if not h]
    assert len(benign_rows) == 4 and sum(ro.answers[j] is not None for j in benign_rows) >= 3
    for j, (p, h, a) in enumerate(zip(ro.prompts, ro.harmful, ro.answers)):
        assert a == (None if h else by_prompt[p].meta.get("answers")), j

    # Make one drawn question's reference the answer the policy will give (the rollout of a step is
    # a pure function of seed and step), so the answer term must score +1 on exactly that row.
    target = next(j for j in benign_rows if ro.answers[j] and answer_accuracy(ro.texts[j], [short_answer(ro.texts[j])]))
    by_prompt[ro.prompts[target]].meta["answers"] = [short_answer(ro.texts[target])]

    calls = []
    w, name, fn = tr.reward_fn.terms[1]

    def recorder(prompts, responses, harmful, answers=None):
        out = fn(prompts, responses, harmful, answers)
        calls.append(dict(prompts=list(prompts), responses=list(responses), harmful=list(harmful),
                          answers=list(answers), out=out))
        return out

    tr.reward_fn.terms[1] = (w, name, recorder)
    row = tr.train_step(1)
    assert len(calls) == 1
    c = calls[0]
    assert c["prompts"] == ro.prompts and c["responses"] == ro.texts and c["harmful"] == ro.harmful
    for j, (p, h, a) in enumerate(zip(c["prompts"], c["harmful"], c["answers"])):
        assert a == (None if h else by_prompt[p].meta.get("answers")), j
    assert c["answers"][target] == [short_answer(ro.texts[target])] and c["out"][target] == 1.0
    expected = [0.0 if a is None else 2 * answer_accuracy(t, a) - 1 for t, a in zip(c["responses"], c["answers"])]
    assert c["out"] == pytest.approx(expected)
    assert any(v != 0 for v in c["out"])
    accs = [answer_accuracy(t, a) for t, a in zip(c["responses"], c["answers"]) if a]

    # logged: each term's unweighted mean, their sum is the score, and the VQA accuracy
    assert row["score_answer"] == pytest.approx(sum(c["out"]) / len(c["out"]))
    refusal = RefusalReward()(c["prompts"], c["responses"], c["harmful"])
    assert row["score_refusal"] == pytest.approx(sum(refusal) / len(refusal))
    assert row["score"] == pytest.approx(row["score_refusal"] + row["score_answer"], abs=1e-6)
    assert row["answer_accuracy"] == pytest.approx(sum(accs) / len(accs)) and row["answer_accuracy"] > 0


def test_log_csv_has_term_columns_and_answer_accuracy(base_model, files, tmp_path):
    # --reward refusal alone: answer_accuracy is still logged (the drift it is there to show), no answer term
    out = tmp_path / "run"
    cfg = _cfg(files, out, reward="refusal")
    lppo.train(cfg, adapter=fresh_adapter(base_model), progress=False, log=lambda m: None)
    with (out / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    cols = list(rows[0])
    assert cols[:3] == ["step", "score", "score_refusal"] and "score_answer" not in cols
    assert "answer_accuracy" in cols and rows[0]["answer_accuracy"] != ""
    assert float(rows[0]["score_refusal"]) == pytest.approx(float(rows[0]["score"]))
    logged = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert 0.0 <= logged["answer_accuracy"] <= 1.0


def test_answer_reward_without_answers_warns(base_model, files, tmp_path):
    data, _ = files
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"prompt": "Write a short poem about this picture."}) + "\n")
    msgs = []
    tr = lppo.LPPOTrainer(_cfg((data, plain), tmp_path / "o"), adapter=fresh_adapter(base_model), log=msgs.append)
    assert not tr.has_answers
    assert any("answer term but no benign prompt has reference answers" in m for m in msgs), msgs
