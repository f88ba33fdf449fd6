"""Conversation templates: the exact text a VLM is given for one prompt (``input_text``).

The one place that renders a prompt; every adapter's ``build_prompt`` calls :func:`render`.

* ``hf`` (default): the processor's chat template (one user turn: the image, then the text), or
  the family's fallback format when the checkpoint has no template (``adapter.chat_fallback``,
  e.g. LLaVA-1.5's ``USER: <image>\\n{prompt} ASSISTANT:``). A system prompt goes in as a system
  turn (it must appear in the rendered text: some templates drop it, which is an error here) or,
  for a fallback, before the text, separated by a space.
* ``llava_v1``: the original LLaVA repository's ``conv_vicuna_v1`` (``llava/conversation.py``,
  ``sep_style=TWO, sep=" "``) with the image placed as LLaVA's ``eval`` scripts place it
  (``<image>\\n`` before the question): ``{system} USER: <image>\\n{prompt} ASSISTANT:``. This is
  how LLaVA-1.5 was trained and how the paper's numbers were made; the llava-hf checkpoints' chat
  template leaves the system prompt out (docs/paper.md).
"""

from __future__ import annotations

from typing import Any

from ..errors import UserError

TEMPLATES = ("hf", "llava_v1")
# llava/conversation.py conv_vicuna_v1.system, verbatim.
VICUNA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                    "The assistant gives helpful, detailed, and polite answers to the human's questions.")
LLAVA_V1 = "{system} USER: <image>\n{prompt} ASSISTANT:"
# Families whose processors expand the literal "<image>" token: the llava_v1 text works there.
LLAVA_V1_FAMILIES = ("llava", "llava_next")


def check_template(template: str, family: str) -> None:
    """UserError when ``template`` is unknown or does not fit the model family."""
    if template not in TEMPLATES:
        raise UserError(f"unknown --template {template!r}; use {' or '.join(TEMPLATES)}")
    if template == "llava_v1" and family not in LLAVA_V1_FAMILIES:
        raise UserError(f"--template llava_v1 is LLaVA's conversation format; the {family} family needs its own "
                        "chat template: use --template hf")


def render(adapter: Any, text: str, template: str | None = None, system_prompt: str | None = None) -> str:
    """The exact processor text for ``text`` under ``template`` (default: the adapter's
    ``template``, set by :func:`set_template`; ``hf`` when unset)."""
    template = template or getattr(adapter, "template", None) or "hf"
    if system_prompt is None:
        system_prompt = getattr(adapter, "system_prompt", None)
    if template == "llava_v1":
        return LLAVA_V1.format(system=VICUNA_V1_SYSTEM if system_prompt is None else system_prompt, prompt=text)
    if template != "hf":
        raise UserError(f"unknown template {template!r}; use {' or '.join(TEMPLATES)}")
    processor = adapter.processor
    if getattr(processor, "chat_template", None):
        messages: list[dict] = []
        if system_prompt is not None:
            messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]})
        out = processor.apply_chat_template(messages, add_generation_prompt=True)
        if system_prompt and system_prompt not in out:
            raise UserError(f"{adapter.name}: its chat template drops the system prompt; use --template llava_v1 "
                            "(LLaVA) or leave --system-prompt out")
        return out
    out = adapter.chat_fallback.format(prompt=text)
    return out if system_prompt is None else f"{system_prompt} {out}"


def set_template(adapter: Any, template: str = "hf", system_prompt: str | None = None) -> None:
    """Make ``adapter.build_prompt`` render with ``template`` (checked against its family)."""
    check_template(template, adapter.family)
    adapter.template = template
    adapter.system_prompt = system_prompt


def describe(template: str, system_prompt: str | None) -> dict:
    """What run.json records: the template's name and the system prompt in effect (None: the
    template's own; for llava_v1 that is the vicuna_v1 text)."""
    effective = system_prompt if system_prompt is not None else (VICUNA_V1_SYSTEM if template == "llava_v1" else None)
    return {"name": template, "system_prompt": effective}
