"""The model organism: a small LLaVA trained here that shows ICET (docs/organism.md).

``--model organism`` loads the shipped weights (``weights/``); ``layersafe organism build``
retrains them from nothing; ``layersafe demo`` shows vulnerability and repair end to end.
"""

from __future__ import annotations

from pathlib import Path


def weights_path() -> Path:
    """Folder of the shipped organism (config.json, model.safetensors, tokenizer, processor)."""
    return Path(__file__).resolve().parent / "weights"
