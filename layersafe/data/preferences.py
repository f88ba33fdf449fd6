"""Preference pairs for reward-model training: HH-RLHF dialogues and generic prompt/chosen/rejected files.

Two row formats are accepted, detected from the columns:

* **HH-RLHF** (``chosen``, ``rejected``): two full dialogues "\\n\\nHuman: ...\\n\\nAssistant: ..."
  that share everything up to the final assistant turn. The shared prefix, cut at its last
  "\\n\\nAssistant:", is the prompt; what follows in each dialogue is the response.
* **generic** (``prompt``, ``chosen``, ``rejected``; optional ``margin``, ``id``): responses given
  directly.

The prompt is stored so that ``rm_score.format_dialogue(prompt, response)`` rebuilds the HH text:
for a multi-turn dialogue it is the text between the leading "Human: " and the final
"\\n\\nAssistant:" (earlier turns keep their own markers). Training and the reward judge therefore
render every pair the same way.

Sources: local ``.jsonl`` / ``.jsonl.gz`` / ``.json`` (JSON lines) / ``.csv`` files, or a hub
dataset ``OWNER/NAME[:DATA_DIR][@SPLIT]`` (needs the optional ``datasets`` package).
Whole-source problems raise UserError; bad rows are counted by reason and skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import UserError
from ..rm_score import ASSISTANT, HUMAN

_HUMAN_MARK = HUMAN.rstrip()  # "\n\nHuman:" (the space after it varies in the raw data)
_ASSISTANT_MARK = ASSISTANT.rstrip()  # "\n\nAssistant:"
_HUB_RE = re.compile(r"^[\w.-]+/[\w.-]+(:[\w./-]+)?(@[\w.\[\]:%-]+)?$")
_NEEDS = "columns chosen, rejected (HH-RLHF dialogues) or prompt, chosen, rejected"


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: ``chosen`` was preferred to ``rejected`` as an answer to ``prompt``."""

    prompt: str
    chosen: str
    rejected: str
    margin: float = 0.0  # optional per-pair margin m in -log σ(r_w - r_l - m)
    id: str = ""


@dataclass
class PreferenceData:
    pairs: list[PreferencePair]
    source: str
    format: str  # "hh", "generic" or "empty"
    skipped: Counter = field(default_factory=Counter)  # reason -> rows skipped
    rows: int = 0  # rows read, good and bad

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        why = "; ".join(f"{n} {r}" for r, n in self.skipped.most_common())
        return (f"{len(self.pairs)} pairs from {self.source} ({self.format} format)"
                + (f", {skipped} rows skipped ({why})" if skipped else ""))


def split_hh_dialogue(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split an HH-RLHF ``chosen``/``rejected`` dialogue pair into (prompt, chosen reply, rejected reply).

    The prompt is the shared prefix up to its last "\\n\\nAssistant:", without the leading
    "\\n\\nHuman:"; replies are stripped. Raises ValueError(reason) for rows that cannot be used.
    """
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise ValueError("chosen/rejected is not text")
    if not chosen.lstrip().startswith(_HUMAN_MARK.strip()):
        raise ValueError("dialogue does not start with 'Human:'")
    n = 0
    limit = min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    cut = chosen.rfind(_ASSISTANT_MARK, 0, n)
    # The marker must lie wholly inside the shared prefix: both dialogues continue after it.
    if cut < 0 or cut + len(_ASSISTANT_MARK) > n:
        raise ValueError("no shared Assistant turn")
    head = chosen[:cut].lstrip()
    prompt = head[len(_HUMAN_MARK.strip()):].strip()
    reply_c = chosen[cut + len(_ASSISTANT_MARK):].strip()
    reply_r = rejected[cut + len(_ASSISTANT_MARK):].strip()
    if not prompt:
        raise ValueError("empty prompt")
    return prompt, reply_c, reply_r


def _text(v) -> str | None:
    return v if isinstance(v, str) else None


def _pair(obj: dict, fmt: str, index: int) -> PreferencePair:
    """One row -> a pair, or ValueError(reason)."""
    if fmt == "hh":
        c, r = _text(obj.get("chosen")), _text(obj.get("rejected"))
        if c is None or r is None:
            raise ValueError("missing chosen/rejected text")
        prompt, chosen, rejected = split_hh_dialogue(c, r)
    else:
        prompt, chosen, rejected = (_text(obj.get(k)) for k in ("prompt", "chosen", "rejected"))
        if prompt is None or chosen is None or rejected is None:
            raise ValueError("missing prompt/chosen/rejected text")
        prompt, chosen, rejected = prompt.strip(), chosen.strip(), rejected.strip()
        if not prompt:
            raise ValueError("empty prompt")
    if not chosen or not rejected:
        raise ValueError("empty response")
    if chosen == rejected:
        raise ValueError("identical responses")  # no preference signal; a tie always counts as wrong
    margin = obj.get("margin", 0.0)
    try:
        margin = float(margin) if margin not in (None, "") else 0.0
    except (TypeError, ValueError):
        raise ValueError("margin is not a number") from None
    if not math.isfinite(margin):
        raise ValueError("margin is not finite")
    rid = obj.get("id")
    return PreferencePair(prompt, chosen, rejected, margin, str(rid) if rid not in (None, "") else str(index))


def pairs_from_rows(rows: Iterable[tuple[dict | None, str | None]], source: str,
                    limit: int | None = None) -> PreferenceData:
    """Parse (row, read error) items; the format is fixed by the first readable row's columns."""
    data = PreferenceData([], source, "empty")
    fmt = None
    for i, (obj, err) in enumerate(rows, 1):
        if limit is not None and len(data.pairs) >= limit:
            break
        data.rows += 1
        if err is None and fmt is None:
            if {"prompt", "chosen", "rejected"} <= obj.keys():
                fmt = "generic"
            elif {"chosen", "rejected"} <= obj.keys():
                fmt = "hh"
            else:
                raise UserError(f"{source}: row {i} has columns {', '.join(sorted(obj)) or '(none)'}; "
                                f"preference data needs {_NEEDS}")
            data.format = fmt
        if err is None:
            try:
                data.pairs.append(_pair(obj, fmt, i))
                continue
            except ValueError as e:
                err = str(e)
        data.skipped[err] += 1
    if data.rows == 0 and not (limit is not None and limit <= 0):
        raise UserError(f"{source} has no rows; preference data needs {_NEEDS}")
    if not data.pairs and data.rows:
        raise UserError(f"{source}: none of its {data.rows} rows is a usable preference pair "
                        f"({'; '.join(f'{n} {r}' for r, n in data.skipped.most_common(3))})")
    return data


def _json_lines(f) -> Iterator[tuple[dict | None, str | None]]:
    for line in f:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            yield None, "malformed JSON"
            continue
        yield (obj, None) if isinstance(obj, dict) else (None, "line is not a JSON object")


def _csv_rows(f) -> Iterator[tuple[dict | None, str | None]]:
    reader = csv.DictReader(f)
    if reader.fieldnames is None:
        return
    reader.fieldnames = [h.strip() for h in reader.fieldnames]
    for row in reader:
        yield (None, "more fields than the header") if None in row else (row, None)


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return path.open(encoding="utf-8-sig", newline="")


def load_preference_file(path: str | Path, limit: int | None = None) -> PreferenceData:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"preference data not found: {path} (a .jsonl/.jsonl.gz/.csv file or a hub id "
                        "OWNER/NAME[:DATA_DIR][@SPLIT])")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        reader = _json_lines
    elif name.endswith(".csv"):
        reader = _csv_rows
    else:
        raise UserError(f"{path}: unsupported format; use .jsonl, .jsonl.gz or .csv with {_NEEDS}")
    try:
        with _open_text(path) as f:
            return pairs_from_rows(reader(f), str(path.resolve()), limit)
    except (OSError, EOFError, UnicodeDecodeError) as e:  # truncated gzip, binary file, ...
        raise UserError(f"{path}: cannot read it ({type(e).__name__}: {e})") from None


def parse_hub_spec(spec: str) -> tuple[str, str | None, str]:
    """``OWNER/NAME[:DATA_DIR][@SPLIT]`` -> (name, data_dir, split); split defaults to train."""
    rest, _, split = spec.partition("@")
    name, _, data_dir = rest.partition(":")
    return name, data_dir or None, split or "train"


def load_preference_hub(spec: str, limit: int | None = None) -> PreferenceData:
    name, data_dir, split = parse_hub_spec(spec)
    try:
        import datasets  # optional: only hub ids need it
    except ImportError:
        raise UserError(f"loading {spec!r} from the hub needs the `datasets` package (pip install datasets); "
                        "or download the data and pass a .jsonl/.jsonl.gz file") from None
    try:
        ds = datasets.load_dataset(name, data_dir=data_dir, split=split)
    except Exception as e:  # network, unknown name, unknown split: one line for the user
        raise UserError(f"cannot load hub dataset {spec!r}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return pairs_from_rows(((dict(r), None) for r in ds), f"hub:{spec}", limit)


def load_preferences(spec: str, limit: int | None = None) -> PreferenceData:
    """A local file, or a hub dataset id when no such file exists and the spec looks like one."""
    path = Path(spec).expanduser()
    if not path.exists() and _HUB_RE.match(spec) and not spec.lower().endswith((".jsonl", ".gz", ".csv", ".json")):
        return load_preference_hub(spec, limit)
    return load_preference_file(path, limit)


def split_pairs(pairs: list[PreferencePair], eval_size: int, seed: int) -> tuple[list, list]:
    """(train, eval): a seeded random ``eval_size`` pairs held out; the rest in their original order.

    Pairs sharing a prompt stay on one side, so held-out accuracy is measured on unseen prompts.
    """
    if eval_size <= 0:
        return list(pairs), []
    prompts = sorted({p.prompt for p in pairs})
    random.Random(seed).shuffle(prompts)
    held, n = set(), 0
    counts = Counter(p.prompt for p in pairs)
    for pr in prompts:
        if n >= eval_size:
            break
        held.add(pr)
        n += counts[pr]
    train = [p for p in pairs if p.prompt not in held]
    if not train:
        raise UserError(f"--eval-size {eval_size} leaves no training pairs out of {len(pairs)}")
    return train, [p for p in pairs if p.prompt in held]
