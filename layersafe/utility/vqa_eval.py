"""VQA-v2 accuracy, exactly as the official evaluation script (GT-Vision-Lab/VQA,
``PythonEvaluationTools/vqaEvaluation/vqaEval.py``) computes it. Pure functions, no I/O.

Per question, with the (normally 10) human answers:

1. the prediction has ``\\n``/``\\t`` replaced by spaces, is stripped, then goes through
   :func:`process_punctuation` and :func:`process_digit_article`;
2. the human answers are stripped and, ONLY when they are not all identical, go through
   :func:`process_punctuation` (not the digit/article step: the official script's choice; the
   released annotations are already lower-cased and mostly normalised);
3. accuracy = mean over the 10 leave-one-annotator-out subsets (10 choose 9) of
   ``min(#matches in the subset / 3, 1)``. With 10 answers and k matches this is
   k=1: 0.3, k=2: 0.6, k=3: 0.9, k>=4: 1.0.

The official quirks are kept on purpose, so numbers match the leaderboard's:

* punctuation: each mark of :data:`PUNCT` is deleted when it touches a space in the ORIGINAL
  text or when the text contains a digit-comma-digit (``"1,000"``), else replaced by a space;
* periods: ``(?!<=\\d)(\\.)(?!\\d)`` — the ``(?!<=`` is a typo for a look-behind in the original,
  so the rule is "delete a period not followed by a digit" (``"3.5"`` keeps its period,
  ``"dr."`` loses it); ``re.UNICODE`` is passed as the *count* argument, so at most 32 periods go;
* words: lower-cased, number words zero..ten (and ``none``) -> digits, articles a/an/the dropped,
  then contractions fixed (``"dont"`` -> ``"don't"``).
"""

from __future__ import annotations

import re

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
MANUAL_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
              "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ("a", "an", "the")
PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: see the module docstring
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_OFFICIAL_PERIOD_COUNT = int(re.UNICODE)  # the official call sub("", text, re.UNICODE): count = 32


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation``."""
    out = text
    has_digit_comma = COMMA_STRIP.search(text) is not None
    for p in PUNCT:
        if (p + " " in text or " " + p in text) or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out, count=_OFFICIAL_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: lower-case, number words -> digits, drop articles,
    fix contractions, single spaces."""
    words = [MANUAL_MAP.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def _clean_ws(text: str) -> str:
    return str(text).replace("\n", " ").replace("\t", " ").strip()


def normalize_answer(text: str) -> str:
    """What the official script does to a predicted answer before matching."""
    return process_digit_article(process_punctuation(_clean_ws(text)))


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Official VQA accuracy of one predicted answer against the human ``answers`` (normally 10):
    the mean over leave-one-out annotator subsets of ``min(#matches / 3, 1)``."""
    if not answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    pred = normalize_answer(prediction)
    gts = [_clean_ws(a) for a in answers]
    if len(set(gts)) > 1:
        gts = [process_punctuation(a) for a in gts]
    if len(gts) == 1:  # no subset to leave out: match or not (not in the official data)
        return float(gts[0] == pred)
    matches = sum(1 for a in gts if a == pred)
    accs = []
    for a in gts:  # leaving out annotator i removes one match exactly when annotator i matched
        m = matches - (1 if a == pred else 0)
        accs.append(min(1.0, m / 3))
    return sum(accs) / len(accs)


def short_answer(response: str) -> str:
    """A model's free-text response cut to its answer: the first line, with a leading
    "Answer:" dropped. (The VQA suite asks for one word or phrase; chatty models add more.)"""
    text = str(response or "").strip()
    first = text.splitlines()[0] if text else ""
    first = re.sub(r"^\s*(the\s+)?answer\s*(is)?\s*[:\-]?\s*", "", first, flags=re.IGNORECASE)
    return first.strip()
