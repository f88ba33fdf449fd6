"""How reward models see text: the HH-RLHF dialogue format, tokenizer preparation, encoding and
scoring. One neutral module shared by reward-model training (``layersafe.rl.reward_model``), the
``reward`` judge (``layersafe.judges.reward``), L-PPO's ``rm:`` reward term and the preference-data
loader (``layersafe.data.preferences``), so none of them imports another pipeline stage for it
(docs/design.md §7.1).

HH-RLHF dialogues are "\\n\\nHuman: ...\\n\\nAssistant: ..." text; a reward model trained on them
scores a VLM answer best when the (image-free) prompt and the response are rendered the same way:
decode the prompt text without image tokens, re-tokenise with the RM's own tokenizer, truncate from
the left (the response is at the end and must survive), append EOS as in training, right-pad.

Why EOS and a separate pad token: causal backbones (GPT-2) pool the logit at the rightmost token that
is not the pad token. If pad == EOS (the usual GPT-2 workaround), the appended EOS would be skipped
and the score read one token early; :func:`prepare_tokenizer` adds a distinct pad token instead, so
the score sits on EOS and plain ``from_pretrained`` pools at the same place.

torch is imported inside the functions: the data loaders import the format constants without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch

HUMAN = "\n\nHuman: "
ASSISTANT = "\n\nAssistant: "
PAD_TOKEN = "<|pad|>"  # added when the base tokenizer has no pad token, or pads with EOS


def format_dialogue(prompt: str, response: str) -> str:
    """A single-turn exchange in HH-RLHF format (no EOS: the tokenizer step appends it)."""
    return f"{HUMAN}{prompt.strip()}{ASSISTANT}{response.strip()}"


def prepare_tokenizer(tokenizer, max_length: int | None = None):
    """Make a tokenizer fit for reward scoring: a pad token distinct from EOS, right padding,
    left truncation. Returns True when a pad token was added (the model's embeddings must grow)."""
    added = False
    if tokenizer.pad_token is None or (tokenizer.eos_token is not None and tokenizer.pad_token == tokenizer.eos_token):
        added = bool(tokenizer.add_special_tokens({"pad_token": PAD_TOKEN}))
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"
    # init_kwargs is what save_pretrained writes: a plain AutoTokenizer load then behaves the same.
    tokenizer.init_kwargs.update(padding_side="right", truncation_side="left")
    if max_length:
        tokenizer.model_max_length = max_length  # saved with the tokenizer: scorers reuse it
        tokenizer.init_kwargs["model_max_length"] = max_length
    return added


def appends_eos(tokenizer) -> bool:
    """True when the tokenizer has an EOS that its own special tokens do not already end with."""
    eos = tokenizer.eos_token_id
    if eos is None:
        return False  # encoder backbones (BERT: [SEP]) pool elsewhere; nothing to append
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    return not probe or probe[-1] != eos


def encode_texts(tokenizer, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
    """Token ids per text: the tokenizer's special tokens, truncated from the left to ``max_length``
    (including EOS), then EOS appended. This is exactly what training saw."""
    if not texts:  # e.g. --eval-size 0: fast tokenizers fail on an empty batch
        return []
    max_length = max_length or tokenizer.model_max_length
    if not max_length or max_length > 1_000_000:  # tokenizers without a limit report a huge sentinel
        max_length = 1024
    add_eos = appends_eos(tokenizer)
    enc = tokenizer(list(texts), add_special_tokens=True, truncation=True,
                    max_length=max_length - add_eos)["input_ids"]
    return [ids + [tokenizer.eos_token_id] for ids in enc] if add_eos else [list(ids) for ids in enc]


def collate(tokenizer, seqs: Sequence[list[int]], device=None) -> dict[str, torch.Tensor]:
    """Right-pad id lists into ``input_ids`` + ``attention_mask`` tensors."""
    import torch

    longest = max(len(s) for s in seqs)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(seqs), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), longest), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def head_rewards(model, batch) -> torch.Tensor:
    """The single logit of a sequence-classification head per row: the reward r(x, y)."""
    return model(**batch).logits[:, 0]


def score_ids(model, tokenizer, seqs: Sequence[list[int]], batch_size: int = 16, progress: bool = False) -> list[float]:
    """Rewards for pre-encoded sequences, in order. Batches are formed longest-first to waste
    little padding; eval mode, no gradients."""
    import torch
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out = [0.0] * len(seqs)
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for start in tqdm(range(0, len(order), batch_size), desc="scoring", disable=not progress, leave=False):
                idx = order[start:start + batch_size]
                r = head_rewards(model, collate(tokenizer, [seqs[i] for i in idx], device)).float().cpu().tolist()
                for i, v in zip(idx, r):
                    out[i] = v
    finally:
        model.train(was_training)
    return out


def score_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 16, max_length: int | None = None,
                progress: bool = False) -> list[float]:
    """Reward of each already-rendered text (use ``format_dialogue(prompt, response)``), in order.

    Tokenises like training (:func:`encode_texts`: EOS appended, left truncation to
    ``max_length`` or the tokenizer's ``model_max_length``, right padding) and reads the model's
    scalar logit, which sequence-classification heads pool at the last non-pad token (the EOS).
    """
    if not texts:
        return []
    return score_ids(model, tokenizer, encode_texts(tokenizer, texts, max_length), batch_size, progress)
