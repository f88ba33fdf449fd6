"""Load prompt-image samples from a JSONL or CSV file (DESIGN.md §3: rows with id, prompt, image).

Whole-file problems (missing file, unknown format, missing columns, no rows) are UserErrors.
Per-row problems are recorded as RowError with a reason and the row is skipped: the load goes on.
Images are not opened here; a corrupt image fails only its own row at scan time.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import UserError
from .base import SKIMAGE_PREFIX, Dataset, RowError, Sample

REQUIRED = ("id", "prompt", "image")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _parse_bool(v):
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return bool(v)
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"harmful must be true/false, got {v!r}")


def _resolve_image(ref: str, base: Path) -> str:
    if ref.startswith(SKIMAGE_PREFIX):
        return ref
    if ref.startswith(("http://", "https://")):
        raise ValueError(f"image is a URL ({ref}); download it first and give a local path")
    p = Path(ref).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _iter_jsonl(path: Path):
    with path.open(encoding="utf-8-sig") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield i, None, f"malformed JSON ({e.msg})"
                continue
            if not isinstance(obj, dict):
                yield i, None, "line is not a JSON object"
                continue
            yield i, obj, None


def _iter_csv(path: Path):
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}; "
                            f"a dataset file needs columns {', '.join(REQUIRED)}")
        for i, row in enumerate(reader, 1):
            yield i, row, None


def load_file(path: str | Path, limit: int | None = None) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = _iter_jsonl(path)
    elif suffix == ".csv":
        rows = _iter_csv(path)
    else:
        raise UserError(f"{path}: unsupported dataset format {suffix or '(none)'}; use .jsonl or .csv "
                        f"with columns {', '.join(REQUIRED)}")
    base = path.resolve().parent
    samples: list[Sample] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    n_rows = 0
    for i, obj, err in rows:
        n_rows += 1
        if err:
            errors.append(RowError(i, err))
            continue
        try:
            missing = [c for c in REQUIRED if obj.get(c) in (None, "")]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            sid = str(obj["id"]).strip()
            prompt = str(obj["prompt"])
            if not prompt.strip():
                raise ValueError("empty prompt")
            if sid in seen:
                raise ValueError(f"duplicate id {sid!r}")
            image = _resolve_image(str(obj["image"]).strip(), base)
            harmful = _parse_bool(obj.get("harmful"))
        except ValueError as e:
            errors.append(RowError(i, str(e)))
            continue
        seen.add(sid)
        meta = {k: v for k, v in obj.items() if k not in (*REQUIRED, "category", "harmful")}
        category = obj.get("category") or None
        samples.append(Sample(id=sid, prompt=prompt, image=image, category=category, harmful=harmful, meta=meta))
        if limit is not None and len(samples) >= limit:
            break
    if n_rows == 0:
        raise UserError(f"{path} has no rows; a dataset file needs columns {', '.join(REQUIRED)}")
    return Dataset(name=path.stem, samples=samples, errors=errors, source=str(path.resolve()))
