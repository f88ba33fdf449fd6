"""Training prompts for the repair commands (``align``, ``sft``): the harmful/mixed set with the
held-out CP goals removed, a benign pool (optionally with reference answers for the ``answer``
reward and PPO-ptx), and the answer-column parser. ``cfg`` is any config with ``data``, ``seed``,
``limit`` and ``benign_data`` fields.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from ..errors import UserError


def _held_out_goals() -> set[str]:
    from .builtin import CUSTOM_PROMPT_GOAL_INDICES, advbench_goals

    goals = advbench_goals()
    return {goals[i][0].strip() for i in CUSTOM_PROMPT_GOAL_INDICES}


def load_training_prompts(cfg, log=print):
    """(harmful-or-mixed samples, benign samples). The CP test goals never enter training."""
    from . import load_dataset

    if cfg.data == "custom-prompts":
        raise UserError("custom-prompts is the held-out test set (CP); train on advbench-images or your own file")
    ds = load_dataset(cfg.data, seed=cfg.seed, limit=cfg.limit)
    held = _held_out_goals()
    samples = [s for s in ds.samples if s.prompt.strip() not in held]
    if len(samples) < len(ds.samples):
        log(f"removed {len(ds.samples) - len(samples)} prompts that are held-out CP test goals")
    benign = load_benign(cfg.benign_data, cfg.seed) if cfg.benign_data else []
    if not samples:
        raise UserError(f"--data {cfg.data}: no usable prompts")
    for s in samples:  # benign rows of --data may carry answers too (vqav2:..., answer/answers columns)
        if s.harmful is False and ("answer" in s.meta or "answers" in s.meta):
            try:
                s.meta["answers"] = row_answers(s.meta)
            except UserError as e:
                raise UserError(f"--data {cfg.data}: sample {s.id}: {e}") from None
    check_images([*samples, *benign], f"--data {cfg.data}" + (f" / --benign-data {cfg.benign_data}" if benign else ""),
                 log=log)
    return samples, benign


def check_images(samples, what: str, log=None) -> None:
    """Every distinct image of the training rows loads, checked once up front: a bad one stops the
    run in its first seconds, naming the rows, not hours in when its batch is drawn (a training
    image is the user's to fix, not to skip: skipping would change what is trained on)."""
    from .base import load_image

    by_ref: dict = {}
    for s in samples:
        by_ref.setdefault(s.image, []).append(s.id)
    if log and len(by_ref) >= 200:  # about 10 ms an image
        log(f"checking {len(by_ref)} training images")
    bad = []
    for ref, ids in by_ref.items():
        try:
            load_image(ref)
        except Exception as e:  # any failure (Pillow's DecompressionBombError is no OSError)
            bad.append(f"{ids[0]} ({ref}): {str(e).strip() or type(e).__name__}")
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UserError(f"{what}: {len(bad)} of {len(by_ref)} images cannot be loaded, e.g. row {bad[0]}{more}; "
                        "fix or remove those rows")


def row_answers(row: dict) -> list[str] | None:
    """Reference answers of a data row (or a sample's ``meta``), for the ``answer`` reward.

    ``answers`` wins over ``answer``. ``answer`` is one answer (a string; a number is turned into
    one). ``answers`` is a list (.jsonl), or a string: a JSON list (``["2", "two"]``, as
    :func:`layersafe.io.write_rows` writes lists into CSV) or answers separated by ``|``
    (``2|two``; the CSV form). Blank answers are dropped; no answer left -> None."""
    for key in ("answers", "answer"):
        v = row.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, str):
            text = v.strip()
            if key == "answer":
                v = [text]
            elif text.startswith("["):
                try:
                    v = json.loads(text)
                except json.JSONDecodeError:
                    raise UserError(f"answers {text[:60]!r}: starts with [ but is not a JSON list") from None
            else:
                v = text.split("|")
        elif not isinstance(v, (list, tuple)):
            v = [v]
        if not isinstance(v, (list, tuple)) or any(isinstance(a, (dict, list, tuple)) for a in v):
            raise UserError(f"{key} {v!r}: give a string or a list of strings")
        out = [str(a).strip() for a in v if a is not None and str(a).strip()]
        if out:
            return out
    return None


def load_benign(spec: str, seed: int):
    """Benign prompts from a .jsonl/.csv with a ``prompt`` column; rows without an image get a
    benign photo; XSTest's unsafe ``contrast_*`` rows are dropped. Optional reference answers
    (``answer`` / ``answers`` columns, :func:`row_answers`) go to ``Sample.meta["answers"]``."""
    from .base import SKIMAGE_PREFIX, Sample
    from .builtin import BENIGN_PHOTOS
    from ..io import read_rows

    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--benign-data {spec}: file not found")
    rows = read_rows(path)
    if not rows or "prompt" not in rows[0]:
        raise UserError(f"--benign-data {spec}: needs a prompt column")
    rng = random.Random(seed)
    out = []
    for i, r in enumerate(rows):
        if str(r.get("type", "")).startswith("contrast_") or str(r.get("label", "")).lower() == "unsafe":
            continue
        prompt = str(r.get("prompt") or "").strip()
        if not prompt:
            continue
        img = str(r.get("image") or "").strip()
        if not img:
            img = SKIMAGE_PREFIX + rng.choice(BENIGN_PHOTOS)
        elif not img.startswith(SKIMAGE_PREFIX) and not Path(img).is_absolute():
            img = str((path.resolve().parent / img).resolve())
        try:
            answers = row_answers(r)
        except UserError as e:
            raise UserError(f"--benign-data {spec}: row {i + 1}: {e}") from None
        out.append(Sample(id=f"benign-{r.get('id', i)}", prompt=prompt, image=img, harmful=False,
                          meta={"answers": answers} if answers else {}))
    if not out:
        raise UserError(f"--benign-data {spec}: no benign prompts found")
    return out
