"""Prompt-image datasets: built-in offline sets and JSONL/CSV file loaders."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .base import Dataset, ImageError, RowError, Sample, load_image  # noqa: F401
from .builtin import BUILTIN_DESCRIPTIONS, BUILTINS
from .paper_sets import PAPER_SET_DESCRIPTIONS, is_paper_spec, load_paper_set
BUILTIN_DESCRIPTIONS.update(PAPER_SET_DESCRIPTIONS)  # `layersafe datasets` lists the file-backed paper sets too
from .loaders import CSV_SUFFIXES, JSONL_SUFFIXES, cap_prompts, load_file  # noqa: E402  (after the update above)

__all__ = ["Dataset", "ImageError", "RowError", "Sample", "load_image", "load_file", "load_dataset",
           "list_datasets", "BUILTINS", "BUILTIN_DESCRIPTIONS"]


def list_datasets() -> dict[str, str]:
    """Built-in dataset names and one-line descriptions (what ``layersafe datasets`` prints)."""
    return dict(BUILTIN_DESCRIPTIONS)


def load_dataset(spec: str, seed: int = 0, limit: int | None = None) -> Dataset:
    """A built-in name (``layersafe datasets``) or a .jsonl/.csv file path; ``limit`` keeps the first N."""
    if is_paper_spec(spec):  # xstest:CSV, advbench-coco:DIR, redteam2k:CSV, mini-jailbreakv:CSV, vqav2:Q,A,DIR
        return cap_prompts(load_paper_set(spec, seed=seed, limit=limit))
    if spec in BUILTINS:
        ds = BUILTINS[spec](seed)
        if limit is not None:
            ds.samples = ds.samples[:max(limit, 0)]
        return ds
    path = Path(spec).expanduser()
    # Something that exists, or looks like a dataset file, goes to the file loader so the user gets
    # its specific message (not found / wrong format / missing columns).
    if path.exists() or path.suffix.lower() in (*JSONL_SUFFIXES, *CSV_SUFFIXES):
        return load_file(path, limit=limit)
    raise UserError(f"unknown dataset {spec!r}: use a built-in ({', '.join(BUILTINS)}) "
                    "or a .jsonl/.csv file with columns id, prompt, image")
