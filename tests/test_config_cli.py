"""Every subcommand's options come from its config dataclass (layersafe.config): one flag per field,
choices from Literal types, non-finite and out-of-range values refused in one line, deprecated
spellings still work, resume keys from field metadata, and --help imports no torch."""

import argparse
import contextlib
import dataclasses
import json
import subprocess
import sys
import typing

import pytest

from layersafe.cli import build_parser, main
from layersafe.config import DeprecatedOptionWarning, field_type, flag_of, option_fields, resume_keys
from layersafe.errors import UserError
from layersafe.rl.configs import LPPOConfig, RMTrainConfig, SFTConfig
from layersafe.scan.engine import ScanConfig
from layersafe.utility.run import UtilityConfig

COMMANDS = {"scan": ScanConfig, "align": LPPOConfig, "sft": SFTConfig, "train-rm": RMTrainConfig,
            "utility": UtilityConfig}


def subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def one_line_error(capsys, argv, *needles):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("layersafe: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_field_is_an_option_with_literal_choices(command):
    cls = COMMANDS[command]
    by_flag = {s: a for a in subparser(command)._actions for s in a.option_strings}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        action = by_flag.get(flag_of(f))
        assert action is not None, f"{command}: field {f.name} has no option {flag_of(f)}"
        assert action.dest == f.name
        if typing.get_origin(hints[f.name]) is typing.Literal:
            assert tuple(action.choices) == typing.get_args(hints[f.name]), f.name
        assert action.help, f"{command}: {flag_of(f)} has no help"


def test_one_cache_vocabulary():
    from layersafe.models.base import CACHE_MODES

    for cls in (ScanConfig, LPPOConfig):
        (f,) = [f for f, _ in option_fields(cls) if f.name == "cache"]
        assert field_type(typing.get_type_hints(cls)["cache"]).choices == CACHE_MODES == ("auto", "dynamic", "static")
    assert field_type(typing.get_type_hints(LPPOConfig)["method"]).choices == ("lppo", "distill")


@pytest.mark.parametrize("argv,needles", [
    (["align", "--kl-coef", "nan"], ["--kl-coef", "finite"]),
    (["align", "--learning-rate", "nan"], ["--learning-rate", "finite"]),
    (["align", "--learning-rate", "inf"], ["--learning-rate", "finite"]),
    (["align", "--reward", "1e309*refusal"], ["--reward", "finite"]),
    (["align", "--max-grad-norm", "-1"], ["--max-grad-norm"]),
    (["align", "--warmup-steps", "-3"], ["--warmup-steps"]),
    (["align", "--temperature", "0"], ["--temperature", "> 0"]),
    (["align", "--gamma", "1.5"], ["--gamma", "at most 1"]),
    (["align", "--method", "dpo"], ["--method", "invalid choice"]),
    (["align", "--silent-reward", "0"], ["--silent-reward", "< -1"]),
    (["train-rm", "--data", "d.jsonl", "--margin", "nan"], ["--margin", "finite"]),
    (["train-rm", "--data", "d.jsonl", "--learning-rate=-inf"], ["--learning-rate", "finite"]),
    (["train-rm", "--data", "d.jsonl", "--max-grad-norm", "-1"], ["--max-grad-norm", "at least 0"]),
    (["train-rm", "--data", "d.jsonl", "--warmup-steps", "-1"], ["--warmup-steps", "at least 0"]),
    (["scan", "--top-p", "1.5"], ["--top-p", "at most 1"]),
    (["scan", "--temperature", "nan"], ["--temperature", "finite"]),
    (["scan", "--temperature", "-1"], ["--temperature", "> 0"]),
    (["scan", "--limit", "0"], ["--limit", "at least 1"]),
    (["scan", "--cache", "turbo"], ["--cache", "invalid choice"]),
    (["scan", "--batch-size", "many"], ["--batch-size", "integer"]),
    (["sft", "--learning-rate", "nan"], ["--learning-rate", "finite"]),
    (["sft", "--lora-dropout", "1.5"], ["--lora-dropout"]),
    (["utility", "--suite", "xstest", "--limit", "-2"], ["--limit", "at least 1"]),
    (["utility", "--suite", "mmlu"], ["--suite", "invalid choice"]),
])
def test_bad_values_are_one_line_and_touch_nothing(capsys, tmp_path, argv, needles):
    out = tmp_path / "out"
    one_line_error(capsys, [*argv, "--out", out], *needles)
    assert not out.exists()


def test_yaml_config_values_are_checked_like_options(capsys, tmp_path):
    for text, needle in [("kl_coef: .inf\n", "kl_coef must be a finite number"),
                         ("learning_rate: .nan\n", "learning_rate must be a finite number"),
                         ("top_k: 2.5\n", "top_k must be an integer"),
                         ("cache: turbo\n", "use one of auto, dynamic, static"),
                         ("merge: 3\n", "merge must be true or false"),
                         ("no_such_knob: 1\n", "unknown field")]:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(text)
        one_line_error(capsys, ["align", "--config", cfg, "--out", tmp_path / "o"], needle)
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"kl_coef": 0.1, "warmup_steps": -1}))
    one_line_error(capsys, ["align", "--config", js, "--out", tmp_path / "o"], "warmup_steps must be at least 0")
    assert not (tmp_path / "o").exists()


def test_config_file_then_command_line_precedence(tmp_path):
    from layersafe.rl.align_cli import config_from_args

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("kl_coef: 0.2\nlayers: 9\nmerge: true\nout: o\n")
    a = build_parser().parse_args(["align", "--config", str(cfg_file), "--kl-coef", "0.3", "--no-merge"])
    cfg = config_from_args(a)
    assert (cfg.kl_coef, cfg.layers, cfg.merge, cfg.out, cfg.gamma) == (0.3, "9", False, "o", LPPOConfig().gamma)


def test_library_configs_validate_the_same_way():
    with pytest.raises(UserError, match="--kl-coef must be a finite number"):
        LPPOConfig(kl_coef=float("nan")).validate()
    with pytest.raises(UserError, match="--top-p must be at most 1"):
        ScanConfig(top_p=2.0).validate()
    with pytest.raises(UserError, match="--margin must be a finite number"):
        RMTrainConfig(margin=float("inf")).validate()
    with pytest.raises(UserError, match="--method 'dpo': use one of lppo, distill"):
        LPPOConfig(method="dpo").validate()


def test_deprecated_spellings_still_work_and_warn(capsys, tmp_path):
    with pytest.warns(DeprecatedOptionWarning, match="--dataset is deprecated; use --data"):
        a = build_parser().parse_args(["scan", "--dataset", "advbench-images", "--out", "o"])
    assert a.dataset == "advbench-images"
    a = build_parser().parse_args(["scan", "--data", "advbench-images", "--out", "o"])
    assert a.dataset == "advbench-images"
    with pytest.warns(DeprecatedOptionWarning, match="--lr is deprecated; use --learning-rate"):
        a = build_parser().parse_args(["train-rm", "--data", "d", "--out", "o", "--lr", "2e-3"])
    assert a.learning_rate == 2e-3
    with pytest.warns(DeprecatedOptionWarning, match="learning_rate"):
        assert RMTrainConfig(lr=3e-4).learning_rate == 3e-4
    # the old spelling reaches the same checks
    with pytest.warns(DeprecatedOptionWarning):
        one_line_error(capsys, ["train-rm", "--data", "d", "--out", tmp_path / "o", "--lr", "nan"], "--learning-rate")


def test_deprecation_warning_is_one_line_for_users(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "layersafe", "scan", "--dataset", "custom-prompts", "--top-p", "7",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "layersafe: warning: --dataset is deprecated; use --data (the old spelling goes in the next release)",
        "layersafe: error: --top-p must be at most 1, got 7"], proc.stderr


def test_resume_keys_come_from_metadata():
    from layersafe.rl import lppo, sft
    from layersafe.scan import engine

    assert lppo._RESUME_KEYS == resume_keys(LPPOConfig)
    assert sft._RESUME_KEYS == resume_keys(SFTConfig)
    assert engine._RESUME_KEYS == resume_keys(ScanConfig)
    assert RMTrainConfig.RESUME_KEYS == resume_keys(RMTrainConfig)
    # everything that changes what a PPO step computes (these four were missing once)
    for k in ("learning_rate", "kl_coef", "clip_range", "gamma", "lam", "vf_coef", "max_grad_norm", "warmup_steps",
              "lr_schedule", "method", "teacher_layer", "reward", "lora_alpha", "lora_dropout"):
        assert k in lppo._RESUME_KEYS, k
    for k in ("out", "resume", "device", "steps", "save_every", "log_with", "cache"):
        assert k not in lppo._RESUME_KEYS, k
    assert "learning_rate" in RMTrainConfig.RESUME_KEYS and "lr" not in RMTrainConfig.RESUME_KEYS


def test_align_resume_refuses_a_changed_learning_rate(capsys, tmp_path):
    """The resume check reads run.json's config before any model loads: a fake finished checkpoint suffices."""
    out = tmp_path / "run"
    ck = out / "checkpoints" / "step-0000002"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text("{}")
    (out / "checkpoints" / "latest").write_text("step-0000002")
    cfg = dataclasses.asdict(LPPOConfig(out=str(out), steps=4))
    (out / "run.json").write_text(json.dumps({"config": cfg}))
    line = one_line_error(capsys, ["align", "--out", out, "--steps", "4", "--resume", "--learning-rate", "1e-3",
                                   "--no-progress"], "learning_rate")
    assert "1e-05" in line and "0.001" in line


@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"], ["align", "--help"], ["sft", "--help"],
                                  ["train-rm", "--help"], ["utility", "--help"], ["eval-rm", "--help"]])
def test_help_imports_no_torch(argv):
    code = ("import sys, contextlib, io\n"
            "from layersafe.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as buf:\n"
            "    try:\n"
            f"        main({argv!r})\n"
            "    except SystemExit as e:\n"
            "        assert e.code == 0, e.code\n"
            "assert 'usage: layersafe' in buf.getvalue()\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'peft', 'accelerate') if m in sys.modules)\n"
            "print(','.join(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"{argv} imported {proc.stdout.strip()}"


def test_peft_wrapping_no_longer_warns_about_is_gradient_checkpointing():
    """transformers 5 deprecates the attribute peft reads while wrapping a model (the demo printed it)."""
    import warnings

    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    from layersafe.models.peft_quiet import peft_wrap

    def wrap(quiet: bool) -> list[str]:
        model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with peft_wrap() if quiet else contextlib.nullcontext():
                get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"]))
        return [str(w.message) for w in seen if "is_gradient_checkpointing" in str(w.message)]

    if not wrap(quiet=False):
        pytest.skip("this transformers/peft pair does not warn")
    assert wrap(quiet=True) == []


def test_help_states_each_default_once():
    """A help text that only mentions "the default layer" still gets "(default X)"; one that states
    its default itself gets none added; align's --out says it is required, not a default."""
    helps = {a.dest: a.help for a in subparser("align")._actions}
    assert helps["anchor_fraction"].endswith("(default 0.25)")
    assert helps["steps"].endswith("(default 200)")
    assert "required" in helps["out"] and "runs/align" not in helps["out"]
    scan = {a.dest: a.help for a in subparser("scan")._actions}
    assert "(default" not in scan["layers"] and "(default" not in scan["judges"]  # both state it
    assert "(default 8)" not in scan["batch_size"]  # it says "Default 8:" itself
