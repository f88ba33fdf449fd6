"""Reward models (issue 6): HH-RLHF parsing, Bradley–Terry loss, scoring at EOS, training, reload, resume, CLI.

Everything runs offline on a tiny random GPT-2 with a byte-level BPE tokenizer trained on the HH text.
The GPT-2 uses initializer_range=0.02 (not 0.5): with large weights the tiny model's attention
saturates and training makes little held-out progress in a few hundred steps.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from layersafe.cli import main as cli_main
from layersafe.data.preferences import PreferencePair, load_preferences, split_hh_dialogue, split_pairs
from layersafe.errors import UserError
from layersafe.metrics import wilson_interval
from layersafe.rl.reward_model import (
    RMTrainConfig, encode_pairs, encode_texts, evaluate_pairs, load_base, load_reward_model, pairwise_loss,
    score_texts, train_reward_model,
)
from layersafe.rl.rm_format import format_dialogue

HH = Path(__file__).resolve().parents[2] / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz"
pytestmark = pytest.mark.skipif(not HH.is_file(), reason=f"shared HH-RLHF data missing: {HH}")

torch.set_num_threads(1)  # the tiny model gains nothing from threads on a shared 2-core machine


def _raw_rows() -> list[dict]:
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A random GPT-2 LM (no pad token, like the real gpt2) + byte-level BPE trained on HH text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((r["chosen"] for r in _raw_rows()[:800]), trainer=trainer)
    eos = "<|endoftext|>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=eos, eos_token=eos, unk_token=eos)
    cfg = GPT2Config(vocab_size=len(fast), n_positions=128, n_embd=32, n_layer=2, n_head=4,
                     initializer_range=0.02, bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("rm") / "tiny-gpt2"
    GPT2LMHeadModel(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def test_hh_rows_parse_into_prompt_and_final_turn():
    raw = _raw_rows()
    data = load_preferences(str(HH))
    assert data.format == "hh" and data.rows == len(raw) == 2312
    assert len(data.pairs) == 2308 and dict(data.skipped) == {"empty response": 4}
    first = data.pairs[0]
    assert first.prompt.startswith("what are some pranks with a pen i can do?\n\nAssistant: Are you looking")
    # three human turns: the first without its marker, earlier assistant turns kept, the final one cut
    assert first.prompt.endswith("\n\nHuman: okay some of these do not have anything to do with pens")
    assert first.prompt.count("\n\nHuman:") == 2 and first.prompt.count("\n\nAssistant:") == 2
    assert first.chosen.startswith("No, sorry!  All of these involve a pen")
    assert first.rejected.startswith("There are lots of funny things you can do with pens")
    # Rendering with the shared RM format gives back the original dialogue, for every parsed row.
    for p in data.pairs:
        r = raw[int(p.id) - 1]
        assert format_dialogue(p.prompt, p.chosen) == r["chosen"]
        assert format_dialogue(p.prompt, p.rejected) == r["rejected"]


def test_split_hh_dialogue_edge_cases():
    assert split_hh_dialogue("\n\nHuman: hi\n\nAssistant:  hello ", "\n\nHuman: hi\n\nAssistant: go away") == \
        ("hi", "hello", "go away")
    with pytest.raises(ValueError, match="no shared Assistant"):
        split_hh_dialogue("\n\nHuman: a\n\nAssistant: x", "\n\nHuman: b\n\nAssistant: y")
    with pytest.raises(ValueError, match="Human"):
        split_hh_dialogue("Assistant: x", "Assistant: y")


def test_generic_file_counts_and_skips_bad_rows(tmp_path):
    good = {"prompt": "How do I bake bread?", "chosen": "Mix flour, water, yeast.", "rejected": "No.", "margin": 1.5}
    lines = [json.dumps(good), "{not json", json.dumps({"prompt": "x", "chosen": "same", "rejected": "same"}),
             json.dumps({"prompt": "x", "chosen": "a"}), json.dumps(dict(good, id="k", margin="big")),
             json.dumps(dict(good, id="z", chosen="Knead it."))]
    f = tmp_path / "prefs.jsonl"
    f.write_text("\n".join(lines) + "\n")
    data = load_preferences(str(f))
    assert data.format == "generic" and data.rows == 6
    assert [p.id for p in data.pairs] == ["1", "z"] and data.pairs[0].margin == 1.5
    assert dict(data.skipped) == {"malformed JSON": 1, "identical responses": 1,
                                  "missing prompt/chosen/rejected text": 1, "margin is not a number": 1}
    csv = tmp_path / "prefs.csv"
    csv.write_text("prompt,chosen,rejected\nhi,hello,go away\n")
    assert load_preferences(str(csv)).pairs == [PreferencePair("hi", "hello", "go away", 0.0, "1")]
    with pytest.raises(UserError, match="not found"):
        load_preferences(str(tmp_path / "missing.jsonl"))
    (tmp_path / "cols.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(UserError, match="columns answer, question"):
        load_preferences(str(tmp_path / "cols.jsonl"))


def test_split_keeps_prompts_on_one_side():
    pairs = [PreferencePair(f"p{i % 7}", f"c{i}", f"r{i}") for i in range(40)]
    train, held = split_pairs(pairs, 10, seed=3)
    assert len(train) + len(held) == 40 and len(held) >= 10
    assert not {p.prompt for p in train} & {p.prompt for p in held}
    assert split_pairs(pairs, 10, seed=3) == (train, held)


# ---------------------------------------------------------------------------------------------
# Loss and scoring
# ---------------------------------------------------------------------------------------------

def test_pairwise_loss_values_and_gradient():
    rw, rl = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    expect = (math.log1p(math.exp(-2)) + math.log(2) + math.log1p(math.exp(2))) / 3
    assert pairwise_loss(rw, rl).item() == pytest.approx(expect, rel=1e-6)
    # margin m shifts the difference: -log σ(d - m)
    assert pairwise_loss(rw, rl, 1.0).item() == pytest.approx(
        (math.log1p(math.exp(-1)) + math.log1p(math.exp(1)) + math.log1p(math.exp(3))) / 3, rel=1e-6)
    # centering adds λ·mean((r_w + r_l)²) = 0.1 · (4 + 0 + 0) / 3
    assert pairwise_loss(rw, rl, center_coef=0.1).item() == pytest.approx(expect + 0.4 / 3, rel=1e-6)
    # huge gaps stay finite, and the gradient raises r_w and lowers r_l
    assert math.isfinite(pairwise_loss(torch.tensor([-500.0]), torch.tensor([500.0])).item())
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    pairwise_loss(a, b).backward()
    assert torch.allclose(a.grad, torch.full((2,), -0.25)) and torch.allclose(b.grad, torch.full((2,), 0.25))


def test_score_read_at_eos_regardless_of_padding(tiny_base):
    tok, model = load_base(str(tiny_base), max_length=64)
    assert tok.pad_token_id != tok.eos_token_id and model.config.pad_token_id == tok.pad_token_id
    short, long = format_dialogue("hi", "hello"), format_dialogue("tell me a long story " * 3, "once upon a time " * 4)
    ids = encode_texts(tok, [short, long])
    assert ids[0][-1] == ids[1][-1] == tok.eos_token_id and len(ids[1]) <= 64
    # left truncation keeps the response end
    cut = encode_texts(tok, [long], max_length=12)[0]
    assert len(cut) == 12 and tok.decode(cut[:-1]).endswith("upon a time")
    alone = score_texts(model, tok, [short], batch_size=1)
    padded = score_texts(model, tok, [short, long], batch_size=2)
    assert alone[0] == pytest.approx(padded[0], abs=1e-5)
    # the EOS token is what is scored: dropping it changes the reward
    no_eos = model(torch.tensor([ids[0][:-1]])).logits[0, 0].item()
    assert abs(no_eos - alone[0]) > 1e-4


# ---------------------------------------------------------------------------------------------
# Training, reload, resume, CLI
# ---------------------------------------------------------------------------------------------

TRAIN = dict(data=str(HH), eval_size=600, max_length=32, batch_size=8, lr=1e-3, steps=300, warmup_steps=10,
             eval_every=100, save_every=0, log_every=50, seed=0)


@pytest.fixture(scope="module")
def trained(tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "trained"
    card = train_reward_model(RMTrainConfig(base=str(tiny_base), out=str(out), **TRAIN), progress=False,
                              log=lambda m: None)
    return out, card


def test_training_raises_heldout_accuracy(trained):
    out, card = trained
    assert card["steps"] == 300 and card["train_pairs"] + card["eval_pairs"] == 2308 and card["eval_pairs"] >= 600
    start, end = card["initial_eval_accuracy"], card["eval_accuracy"]
    # measured (this base, seeds 0-3): 0.473->0.547, 0.507->0.558, 0.488->0.573, 0.460->0.560;
    # random scoring stays within ~0.02 (1 SE at n=600) of its start.
    assert end >= start + 0.04, (start, end)
    saved = json.loads((out / "rm_card.json").read_text())
    assert saved["eval_accuracy"] == end and saved["base"] and saved["data"] == str(HH.resolve())
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    evals = [r for r in log if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [0, 100, 200, 300] and evals[-1]["accuracy"] == end
    trains = [r for r in log if r["split"] == "train"]
    assert [r["step"] for r in trains] == [50, 100, 150, 200, 250, 300]
    assert trains[-1]["loss"] < trains[0]["loss"] and trains[-1]["lr"] == 0.0


def test_saved_model_reloads_with_plain_transformers(trained, tiny_base):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, card = trained
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert (tok.padding_side, tok.truncation_side, tok.model_max_length) == ("right", "left", 32)
    texts = [format_dialogue("How do I pick a lock?", "I can't help with that."),
             format_dialogue("hi", "Sure! Here is how you hotwire a car: first"), format_dialogue("x", "y")]
    # plain recipe: tokenise, truncate, append EOS, one text at a time (no padding)
    plain = []
    with torch.no_grad():
        for t in texts:
            ids = tok(t, truncation=True, max_length=31)["input_ids"] + [tok.eos_token_id]
            plain.append(model(torch.tensor([ids])).logits[0, 0].item())
    ours_model, ours_tok = load_reward_model(str(out), device="cpu")
    assert score_texts(ours_model, ours_tok, texts, batch_size=3) == pytest.approx(plain, abs=1e-5)
    # the reloaded model reproduces the held-out accuracy recorded at the end of training
    _, held = split_pairs(load_preferences(str(HH)).pairs, TRAIN["eval_size"], TRAIN["seed"])
    ev = evaluate_pairs(model, tok, *encode_pairs(tok, held, 32))
    assert ev["n"] == card["eval_pairs"] and ev["accuracy"] == pytest.approx(card["eval_accuracy"], abs=1e-9)


def test_eval_rm_cli_prints_accuracy_with_wilson_interval(trained, tmp_path, capsys):
    out, _ = trained
    per_pair = tmp_path / "pairs.jsonl"
    assert cli_main(["eval-rm", "--model", str(out), "--data", str(HH), "--limit", "200", "--no-progress",
                     "--out", str(per_pair)]) == 0
    text = capsys.readouterr().out
    rows = [json.loads(line) for line in per_pair.read_text().splitlines()]
    k = sum(r["correct"] for r in rows)
    lo, hi = wilson_interval(k, 200)
    assert len(rows) == 200 and f"({k}/200), 95% Wilson CI [{lo:.4f}, {hi:.4f}]" in text
    assert cli_main(["eval-rm", "--model", str(tmp_path / "nope"), "--data", str(HH)]) == 2


def _train_cli(base, out, *extra) -> int:
    return cli_main(["train-rm", "--base", str(base), "--data", str(HH), "--out", str(out), "--limit", "160",
                     "--eval-size", "40", "--max-length", "32", "--batch-size", "8", "--steps", "12",
                     "--lr", "1e-3", "--log-every", "1", "--eval-every", "6", "--save-every", "6",
                     "--keep-checkpoints", "2", "--keep-dropout", "--seed", "5", "--no-progress", *extra])


def test_resume_continues_from_saved_step(tiny_base, tmp_path):
    from safetensors.torch import load_file

    full = tmp_path / "full"
    assert _train_cli(tiny_base, full) == 0
    # A crash right after the step-6 checkpoint: the folder holds that checkpoint and a log that
    # already ran past it (steps 7.. will be redone), but no final model.
    cut = tmp_path / "cut"
    (cut / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "step-0000006", cut / "checkpoints" / "step-0000006")
    log_full = [json.loads(line) for line in (full / "train_log.jsonl").read_text().splitlines()]
    (cut / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log_full[:10]) + '{"step": 9, "spl')
    assert _train_cli(tiny_base, cut) == 2  # not empty: needs --resume
    assert _train_cli(tiny_base, cut, "--resume", "--lr", "2e-3") == 2  # changed settings are refused
    assert _train_cli(tiny_base, cut, "--resume") == 0
    log_cut = [json.loads(line) for line in (cut / "train_log.jsonl").read_text().splitlines()]

    def metrics(log):
        return [(r["step"], r["split"], r["loss"], r["accuracy"], r.get("lr")) for r in log]

    assert [r["step"] for r in log_cut if r["split"] == "train"] == list(range(1, 13))
    # dropout is on, so equal numbers need the restored RNG, optimizer, scheduler and data position
    assert metrics(log_cut) == metrics(log_full)
    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = json.loads((cut / "rm_card.json").read_text())
    assert card["steps"] == 12 and card["eval_accuracy"] == json.loads((full / "rm_card.json").read_text())["eval_accuracy"]
    assert _train_cli(tiny_base, cut, "--resume") == 2  # finished: nothing to resume


def test_train_rm_cli_errors(tiny_base, tmp_path, capsys):
    from layersafe.cli import build_parser

    assert "train-rm" in build_parser().format_help() and "eval-rm" in build_parser().format_help()
    assert _train_cli(tiny_base, tmp_path / "o", "--data", str(tmp_path / "missing.jsonl")) == 2
    assert "not found" in capsys.readouterr().err
    assert _train_cli(tiny_base, tmp_path / "o2", "--micro-batch-size", "3") == 2
    assert "multiple of --micro-batch-size" in capsys.readouterr().err
    # Longer than the base model's 128 positions: one line before any training (it would index
    # past the position table), no checkpoint or model written.
    assert _train_cli(tiny_base, tmp_path / "o3", "--max-length", "512") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("layersafe: error:")]
    assert len(err) == 1 and "--max-length 512 is more than the 128 positions" in err[0], err
    written = sorted(p.name for p in (tmp_path / "o3").rglob("*")) if (tmp_path / "o3").exists() else []
    assert written in ([], [".layersafe.lock"]), written


def test_resume_never_trains_over_another_folder(tiny_base, tmp_path, capsys):
    """``--resume`` into a folder with no checkpoint trains only when the folder is empty: a model
    folder (or an old log) is refused and left byte for byte; an unreadable checkpoint state is one
    line, not an internal error."""
    model = tmp_path / "a_model"
    shutil.copytree(tiny_base, model)
    before = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    assert _train_cli(tiny_base, model, "--resume") == 2
    assert "--resume: no checkpoint in" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()} == before
    bad = tmp_path / "bad" / "checkpoints" / "step-0000006"
    bad.mkdir(parents=True)
    (bad / "trainer_state.json").write_text("{trunc")
    assert _train_cli(tiny_base, tmp_path / "bad", "--resume") == 2
    err = capsys.readouterr().err
    assert "trainer_state.json is unreadable" in err and "internal error" not in err
    assert _train_cli(tiny_base, tmp_path / "new", "--resume", "--steps", "2") == 0  # empty: a fresh run
    # a run that died before its first checkpoint (only its log there) starts over with --resume
    died = tmp_path / "died"
    died.mkdir()
    (died / "train_log.jsonl").write_text('{"step": 0, "split": "eval", "loss": 0.7}\n{"step": 1, "spl')
    assert _train_cli(tiny_base, died, "--resume", "--steps", "2") == 0
    steps = [json.loads(line)["step"] for line in (died / "train_log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(1) == 1  # the old log was rewound, not appended to
