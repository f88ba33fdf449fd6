"""Prompt-image datasets: built-in offline sets and JSONL/CSV file loaders."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .base import Dataset, ImageError, RowError, Sample, load_image  # noqa: F401
from .builtin import BUILTIN_DESCRIPTIONS, BUILTINS
from .loaders import load_file


def list_datasets() -> dict[str, str]:
    return dict(BUILTIN_DESCRIPTIONS)


def load_dataset(spec: str, seed: int = 0, limit: int | None = None) -> Dataset:
    """A built-in name (``layersafe datasets``) or a .jsonl/.csv file path."""
    if spec in BUILTINS:
        ds = BUILTINS[spec](seed)
        if limit is not None:
            ds.samples = ds.samples[:limit]
        return ds
    if Path(spec).exists() or Path(spec).suffix.lower() in (".jsonl", ".csv", ".ndjson"):
        return load_file(spec, limit=limit)
    raise UserError(f"unknown dataset {spec!r}: use a built-in ({', '.join(BUILTINS)}) "
                    "or a .jsonl/.csv file with columns id, prompt, image")
