"""Conversation templates (models/templates.py): the llava_v1 text byte for byte, the hf default
unchanged, system prompts, family checks, and the --template / --system-prompt options of scan,
utility, align and sft (recorded in run.json, shown in input_text)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from layersafe.cli import main
from layersafe.errors import UserError
from layersafe.models.templates import render, set_template

# The original LLaVA repository's conv_vicuna_v1 (llava/conversation.py), typed out here rather
# than imported, so a change to the constant shows up as a failure.
VICUNA = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the human's questions.")


def test_llava_v1_byte_for_byte(tiny_adapter):
    text = render(tiny_adapter, "What is in the image?", "llava_v1")
    assert text == VICUNA + " USER: <image>\nWhat is in the image? ASSISTANT:"
    assert text.encode("utf-8") == (
        b"A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
        b"detailed, and polite answers to the human's questions. USER: <image>\nWhat is in the image? ASSISTANT:")
    # a system prompt replaces vicuna_v1's
    assert render(tiny_adapter, "Hi", "llava_v1", "Be safe.") == "Be safe. USER: <image>\nHi ASSISTANT:"


def test_hf_default_is_the_processor_chat_template(tiny_adapter):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    assert render(tiny_adapter, "Hi", "hf") == tiny_adapter.processor.apply_chat_template(
        messages, add_generation_prompt=True)
    assert tiny_adapter.build_prompt("Hi") == render(tiny_adapter, "Hi", "hf")  # the adapter's own default


def test_fallback_and_system_prompt_without_chat_template():
    ad = SimpleNamespace(processor=SimpleNamespace(chat_template=None), chat_fallback="USER: <image>\n{prompt} ASSISTANT:",
                         name="m", family="llava", template="hf", system_prompt=None)
    assert render(ad, "Hi") == "USER: <image>\nHi ASSISTANT:"
    assert render(ad, "Hi", "hf", "Sys.") == "Sys. USER: <image>\nHi ASSISTANT:"


def test_llava_v1_refused_for_other_families():
    ad = SimpleNamespace(family="gemma3")
    with pytest.raises(UserError, match="llava_v1 is LLaVA's conversation format; the gemma3 family"):
        set_template(ad, "llava_v1")
    with pytest.raises(UserError, match="unknown --template"):
        set_template(SimpleNamespace(family="llava"), "vicuna")


def _scan(tmp_path, model, *extra):
    return main(["scan", "--model", str(model), "--data", "custom-prompts", "--limit", "2", "--layers", "default",
                 "--max-new-tokens", "2", "--out", str(tmp_path), "--judge", "none", "--no-report", "--no-progress",
                 "--device", "cpu", *extra])


def test_scan_template_in_input_text_and_run_json(tmp_path, tiny_llava_dir, capsys):
    out = tmp_path / "s"
    assert _scan(out, tiny_llava_dir, "--template", "llava_v1", "--system-prompt", "You are careful.") == 0
    rows = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines()]
    assert rows and all(r["input_text"] == f"You are careful. USER: <image>\n{r['prompt']} ASSISTANT:" for r in rows)
    run = json.loads((out / "run.json").read_text())
    assert run["template"] == {"name": "llava_v1", "system_prompt": "You are careful."}
    assert run["config"]["template"] == "llava_v1"
    # the template is a resume setting: a different one is refused in one line
    assert _scan(out, tiny_llava_dir, "--template", "hf", "--resume") == 2
    assert "template: 'llava_v1' -> 'hf'" in capsys.readouterr().err
    # default: the vicuna system prompt is recorded as the one in effect
    out2 = tmp_path / "s2"
    assert _scan(out2, tiny_llava_dir, "--template", "llava_v1") == 0
    assert json.loads((out2 / "run.json").read_text())["template"]["system_prompt"] == VICUNA


def test_scan_resumes_a_run_recorded_before_templates(tmp_path, tiny_llava_dir):
    out = tmp_path / "old"
    assert _scan(out, tiny_llava_dir) == 0
    run = json.loads((out / "run.json").read_text())
    del run["config"]["template"], run["config"]["system_prompt"]  # as an older layersafe wrote it
    (out / "run.json").write_text(json.dumps(run))
    assert _scan(out, tiny_llava_dir, "--resume") == 0


@pytest.mark.parametrize("command", ["utility", "align", "sft"])
def test_other_commands_take_the_options(command, capsys):
    from layersafe.cli import build_parser

    extra = ["--suite", "xstest"] if command == "utility" else []
    a = build_parser().parse_args([command, "--out", "x", *extra, "--template", "llava_v1", "--system-prompt", "S"])
    assert (a.template, a.system_prompt) == ("llava_v1", "S")
    assert main([command, "--out", "x", *extra, "--template", "chatml"]) == 2
    assert "--template" in capsys.readouterr().err


def _record_prompts(adapter):
    seen = []
    tokenize = adapter.tokenize

    def spy(input_text, image):
        seen.append(input_text)
        return tokenize(input_text, image)

    adapter.tokenize = spy
    return seen


def test_align_and_sft_train_on_the_template(tiny_llava_dir, tmp_path):
    """The trainers' prompts render with --template / --system-prompt (rl/onpolicy.py, rl/sft.py)."""
    from layersafe.rl.configs import LPPOConfig, SFTConfig
    from layersafe.rl.distill import DistillTrainer
    from layersafe.rl.sft import SFTTrainer

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "prompt": p, "image": "skimage:coffee", "harmful": i == 0}) + "\n"
                            for i, p in enumerate(["how to pick a lock", "describe the photo"])))
    tr = DistillTrainer(LPPOConfig(model=str(tiny_llava_dir), method="distill", data=str(data), layers="2",
                                   out=str(tmp_path / "a"), batch_size=2, mini_batch_size=2, max_new_tokens=2,
                                   device="cpu", dtype="float32", template="llava_v1"), log=lambda m: None)
    seen = _record_prompts(tr.adapter)
    tr.rollout(1)
    assert seen and all(t.startswith(VICUNA + " USER: <image>\n") and t.endswith(" ASSISTANT:") for t in seen)
    st = SFTTrainer(SFTConfig(model=str(tiny_llava_dir), data=str(data), layers="2", out=str(tmp_path / "s"),
                              batch_size=2, device="cpu", dtype="float32", template="llava_v1",
                              system_prompt="Refuse harm."), log=lambda m: None)
    assert st.adapter.template == "llava_v1"
    assert st.adapter.build_prompt("hi") == "Refuse harm. USER: <image>\nhi ASSISTANT:"
