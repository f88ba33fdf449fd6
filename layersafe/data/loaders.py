"""Load prompt-image samples from a JSONL or CSV file (docs/design.md §3: rows with id, prompt, image).

Whole-file problems (missing file, unknown format, missing columns, no rows) are UserErrors.
Per-row problems are recorded as RowError with a reason and the row is skipped: the load goes on,
so one bad row in a 10k-row file does not cost the user the other 9,999.
Images are not opened here; a corrupt image fails only its own row at scan time.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import UserError
from .base import SKIMAGE_PREFIX, Dataset, RowError, Sample

REQUIRED = ("id", "prompt", "image")
OPTIONAL = ("category", "harmful")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")  # .json is read as JSON lines, as layersafe.io does
CSV_SUFFIXES = (".csv",)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_NEEDS = f"columns {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
# Longer prompts are refused at load time with their reason: ~25k tokens, beyond the context of
# the VLMs layersafe supports, and a 1 MB prompt would stall tokenising and generation (issue 24).
MAX_PROMPT_CHARS = 100_000


def check_prompt_length(prompt: str) -> None:
    """ValueError (a row-level reason) for a prompt no supported model has the context for."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"prompt is {len(prompt):,} characters, over the {MAX_PROMPT_CHARS:,} layersafe "
                         "accepts (more than any supported model's context); shorten it")


def cap_prompts(ds: Dataset) -> Dataset:
    """Move samples with over-long prompts to ``ds.errors`` (for loaders that build samples themselves)."""
    keep = []
    for i, s in enumerate(ds.samples, 1):
        try:
            check_prompt_length(s.prompt)
        except ValueError as e:
            ds.errors.append(RowError(i, f"sample {s.id}: {e}"))
            continue
        keep.append(s)
    ds.samples = keep
    return ds


def _parse_bool(v) -> bool | None:
    """``harmful`` as written by people and spreadsheets: true/false, 1/0, yes/no; blank = unknown."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"harmful must be true/false/1/0/yes/no, got {v!r}")


def _resolve_image(ref: str, base: Path) -> str:
    """An absolute path string (relative paths are relative to the dataset file, not the cwd)."""
    if ref.startswith(SKIMAGE_PREFIX):
        return ref
    if ref.lower().startswith(("http://", "https://")):
        # No network on the machines this runs on, and silently fetching would make runs irreproducible.
        raise ValueError(f"image is a URL ({ref}); download it first and give a local path")
    p = Path(ref).expanduser()
    return str((p if p.is_absolute() else base / p).resolve())


def _iter_jsonl(path: Path):
    """Yield (row number, object or None, error or None); row number = line number."""
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        # A plain JSON array of objects (a common slip for a .json file): accept it rather than
        # reporting every line as malformed.
        try:
            arr = json.loads(text)
        except json.JSONDecodeError:
            arr = None  # not one array after all: fall through and report line by line
        if isinstance(arr, list):
            for i, obj in enumerate(arr, 1):
                yield (i, obj, None) if isinstance(obj, dict) else (i, None, "item is not a JSON object")
            return
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield i, None, f"malformed JSON ({e.msg} at column {e.colno})"
            continue
        if not isinstance(obj, dict):
            yield i, None, f"line is a JSON {type(obj).__name__}, not an object"
            continue
        yield i, obj, None


def checked_csv(f, path, required, needs: str) -> csv.DictReader:
    """A DictReader over ``f`` whose header holds every ``required`` column; ``needs`` ends the
    one-line error for an empty file or missing columns."""
    reader = csv.DictReader(f)
    if reader.fieldnames is None:
        raise UserError(f"{path} is empty; {needs}")
    # Tolerate "id, prompt, image" (spaces after commas) in hand-written headers.
    reader.fieldnames = [h.strip() for h in reader.fieldnames]
    missing = [c for c in required if c not in reader.fieldnames]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; {needs}")
    return reader


def _iter_csv(path: Path):
    """Yield (row number, dict or None, error or None); row number counts data rows, not the header."""
    # utf-8-sig strips the BOM Excel writes; otherwise the first column would be '\ufeffid'.
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = checked_csv(f, path, REQUIRED, f"a dataset file needs a header row with {_NEEDS}")
        for i, row in enumerate(reader, 1):
            if None in row:  # DictReader puts surplus fields under the key None
                yield i, None, f"{len(row[None])} more field(s) than the header (unquoted comma?)"
                continue
            yield i, row, None


def _sample(obj: dict, base: Path, seen: set[str]) -> Sample:
    """Turn one row into a Sample, or raise ValueError with the reason."""
    missing = [c for c in REQUIRED if obj.get(c) is None or (c != "prompt" and str(obj[c]).strip() == "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    sid = str(obj["id"]).strip()
    if not isinstance(obj["prompt"], str):  # a number or list in JSONL: not a prompt someone wrote
        raise ValueError(f"prompt is a JSON {type(obj['prompt']).__name__}, not text")
    prompt = obj["prompt"]
    if not prompt.strip():
        raise ValueError("empty prompt")
    check_prompt_length(prompt)
    if sid in seen:
        raise ValueError(f"duplicate id {sid!r}")
    image = _resolve_image(str(obj["image"]).strip(), base)
    harmful = _parse_bool(obj.get("harmful"))
    category = obj.get("category")
    category = str(category) if category not in (None, "") else None
    meta = {k: v for k, v in obj.items() if k not in (*REQUIRED, *OPTIONAL)}
    return Sample(id=sid, prompt=prompt, image=image, category=category, harmful=harmful, meta=meta)


def _decoded(rows, path: Path):
    """``rows``, with a file that is not UTF-8 text (binary, Latin-1) reported as one clear error."""
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from None


def load_file(path: str | Path, limit: int | None = None) -> Dataset:
    """Load a .jsonl (.json/.ndjson lines) or .csv dataset; ``limit`` keeps the first N good samples."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"dataset file not found: {path}; check the path (relative paths are from {Path.cwd()})")
    if not path.is_file():
        raise UserError(f"{path} is not a file; give a .jsonl or .csv file with {_NEEDS}")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        rows = _iter_jsonl(path)
    elif suffix in CSV_SUFFIXES:
        rows = _iter_csv(path)
    else:
        raise UserError(f"{path}: unsupported dataset format {suffix or '(no extension)'}; "
                        f"use .jsonl (one JSON object per line) or .csv with {_NEEDS}")
    rows = _decoded(rows, path)
    base = path.resolve().parent
    samples: list[Sample] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    n_rows = 0
    for i, obj, err in rows:
        if limit is not None and len(samples) >= limit:
            break  # stop early: no need to parse the rest of a large file
        n_rows += 1
        if err is None:
            try:
                sample = _sample(obj, base, seen)
            except ValueError as e:
                err = str(e)
        if err is not None:
            errors.append(RowError(i, err))
            continue
        seen.add(sample.id)
        samples.append(sample)
    if n_rows == 0 and not (limit is not None and limit <= 0):
        raise UserError(f"{path} has no rows; a dataset file needs {_NEEDS}")
    if errors and not samples and not (limit is not None and limit <= 0):
        first = errors[0]
        raise UserError(f"{path}: none of its {n_rows} rows is usable (row {first.row}: {first.reason}); "
                        f"a dataset file needs {_NEEDS}")
    return Dataset(name=path.stem, samples=samples, errors=errors, source=str(path.resolve()))
