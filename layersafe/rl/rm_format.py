"""The one text format reward models see, shared by training (train-rm) and scoring (reward judge).

HH-RLHF dialogues are "\\n\\nHuman: ...\\n\\nAssistant: ..." text; a reward model trained on them
scores a VLM answer best when the (image-free) prompt and the response are rendered the same way.
DESIGN.md §5: decode the prompt text without image tokens, re-tokenise with the RM's own tokenizer,
right-pad, and append EOS as in training.
"""

from __future__ import annotations

HUMAN = "\n\nHuman: "
ASSISTANT = "\n\nAssistant: "


def format_dialogue(prompt: str, response: str) -> str:
    """A single-turn exchange in HH-RLHF format (no EOS: the tokenizer step appends it)."""
    return f"{HUMAN}{prompt.strip()}{ASSISTANT}{response.strip()}"
