"""Reward-model judge: ``reward:MODEL`` -> ``scores.reward`` (higher = preferred = safer, as TR in
the paper). MODEL is any ``AutoModelForSequenceClassification`` with a single output: a
``layersafe train-rm`` folder, a GPT-2 HH-RLHF RM, OpenAssistant/reward-model-deberta-v3-large-v2, ...

Input format, decided per model (``format=auto``; override with ``format=hh|chat|pair``):
* ``chat`` when the tokenizer has a chat template: [user, assistant] rendered with it, scored as
  rendered (chat RMs are trained on exactly that text; no extra EOS);
* ``pair`` for encoder cross-encoders without a template (BERT/DeBERTa/RoBERTa families, e.g. the
  OpenAssistant DeBERTa RM, whose card scores ``tokenizer(question, answer)``);
* ``hh`` otherwise (GPT-2-like RMs): ``format_dialogue`` + EOS, encoded and scored by
  ``layersafe.rm_score`` exactly as train-rm trains, so judge and training agree.
Every format truncates from the left (the prompt's start goes first; the response is what is
judged), pads on the right with a pad token distinct from EOS, and reads the score at the last
real token (the appended EOS for ``hh``).
"""

from __future__ import annotations

from ..errors import UserError
from ..rm_score import encode_texts, format_dialogue, prepare_tokenizer, score_ids
from ..safeload import require_classifier
from .base import MODEL_OPTIONS, Judge, load_hf, model_device_dtype, register

# Encoder families scored as a (prompt, response) text pair when they have no chat template.
PAIR_MODEL_TYPES = {"bert", "roberta", "deberta", "deberta-v2", "electra", "xlm-roberta", "distilbert",
                    "albert", "mpnet", "modernbert", "camembert"}
FORMATS = ("auto", "hh", "chat", "pair")


@register
class RewardJudge(Judge):
    name = "reward"
    description = "Reward model (reward:MODEL, any 1-output sequence classifier): reward, higher is safer/preferred."
    metrics = ("reward",)
    higher_is_safer = {"reward": True}
    options = {**MODEL_OPTIONS,
               "format": (str, "auto", "auto, hh (\\n\\nHuman:/\\n\\nAssistant:), chat (chat template), pair (text pair)"),
               "max_length": (int, 0, "max tokens per input, EOS included (0 = the tokenizer's limit, else 1024)")}

    def __init__(self, arg=None, **options):
        super().__init__(arg, **options)
        if not self.arg:
            raise UserError("the reward judge needs a model: --judge reward:MODEL (HF id or local folder)")
        if self.opts["format"] not in FORMATS:
            raise UserError(f"reward: unknown format {self.opts['format']!r}; use {', '.join(FORMATS)}")
        self.model = self.tokenizer = None
        self.n_at_limit = 0

    def _load(self):
        import transformers as tf

        from ..models import context_length

        self.device, dtype = model_device_dtype(self.opts)
        tok = load_hf(tf.AutoTokenizer, self.arg, "reward-model tokenizer")
        model = load_hf(tf.AutoModelForSequenceClassification, self.arg, "reward model", dtype=dtype,
                        allow_pickle=self.opts["allow_pickle"])
        require_classifier(model.config, self.arg, "reward judge model")
        if model.config.num_labels != 1:
            raise UserError(f"reward: {self.arg} has {model.config.num_labels} outputs; a reward model has exactly 1")
        # Same preparation as train-rm's loader (pad != EOS, right padding, left truncation), plus dtype.
        if prepare_tokenizer(tok, self.opts["max_length"] or None):
            model.resize_token_embeddings(len(tok))  # the new pad row is never attended to
        model.config.pad_token_id = tok.pad_token_id
        model.to(self.device).eval()
        fmt = self.opts["format"]
        if fmt == "auto":
            fmt = "chat" if tok.chat_template else "pair" if model.config.model_type in PAIR_MODEL_TYPES else "hh"
        if fmt == "chat" and not tok.chat_template:
            raise UserError(f"reward: {self.arg} has no chat template; use format=hh or format=pair")
        ml = tok.model_max_length
        self.max_length = ml if ml and ml < 1_000_000 else 1024  # as encode_texts does
        positions = context_length(model.config)
        if positions and self.max_length > positions:  # longer inputs would run past the position table
            self.max_length = positions  # inputs are cut to it, counted in summary() at_length_limit
        self.format, self.model, self.tokenizer = fmt, model, tok

    def close(self):
        self.model = self.tokenizer = None

    def encode(self, prompts: list[str], responses: list[str]) -> list[list[int]]:
        """Token ids the reward model scores, one list per exchange (see the module docstring)."""
        tok, fmt, L = self.tokenizer, self.format, self.max_length
        if fmt == "hh":
            return encode_texts(tok, [format_dialogue(p, r) for p, r in zip(prompts, responses)], L)
        if fmt == "pair":
            out = []
            for p, r in zip(prompts, responses):
                try:  # left truncation of the prompt only (prepare_tokenizer set truncation_side)
                    out.append(tok(p, r, truncation="only_first", max_length=L)["input_ids"])
                except Exception:  # the response alone is too long  # noqa: BLE001
                    out.append(tok(p, r, truncation="longest_first", max_length=L)["input_ids"])
            return out
        bos = tok.bos_token
        out = []
        for p, r in zip(prompts, responses):
            text = tok.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": r}],
                                           tokenize=False)
            # Templates write BOS into the text; a second one would shift the score.
            out.append(tok(text, add_special_tokens=not (bos and text.startswith(bos)), truncation=True,
                           max_length=L)["input_ids"])
        return out

    def score(self, rows: list[dict]) -> list[dict]:
        if self.model is None:
            self._load()
        seqs = self.encode([str(r.get("prompt") or "") for r in rows], [str(r.get("response") or "") for r in rows])
        self.n_at_limit += sum(len(s) >= self.max_length for s in seqs)
        return [{"reward": v} for v in score_ids(self.model, self.tokenizer, seqs, self.opts["batch_size"])]

    def summary(self):
        return {"at_length_limit": self.n_at_limit}  # inputs cut (or exactly filling) max_length
