"""Prompt-image samples and image loading shared by every dataset builder and loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIMAGE_PREFIX = "skimage:"


@dataclass
class Sample:
    """One prompt-image pair.

    ``image`` is a reference, not pixels: an absolute file path, or ``skimage:NAME`` for a photo
    shipped in ``skimage.data``. Pixels are loaded lazily with :func:`load_image` so a corrupt
    image fails only its own row.
    """

    id: str
    prompt: str
    image: str | None
    category: str | None = None
    harmful: bool | None = None  # True for harmful requests, False for benign, None unknown
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RowError:
    """A dataset row that could not be turned into a Sample (recorded and counted, not fatal)."""

    row: int  # 1-based row number in the file (header not counted)
    reason: str


@dataclass
class Dataset:
    name: str
    samples: list[Sample]
    errors: list[RowError] = field(default_factory=list)
    source: str = ""  # file path or built-in name, recorded in run.json


class ImageError(Exception):
    """An image that is missing or cannot be decoded; the scan records it per row and goes on."""


def load_image(ref: str):
    """Load an image reference (path or ``skimage:NAME``) as an RGB PIL image.

    Raises ImageError with a one-line reason.
    """
    from PIL import Image, UnidentifiedImageError

    if ref is None or ref == "":
        raise ImageError("no image given")
    if ref.startswith(SKIMAGE_PREFIX):
        import numpy as np
        import skimage.data

        name = ref[len(SKIMAGE_PREFIX):]
        fn = getattr(skimage.data, name, None)
        if fn is None or not callable(fn):
            raise ImageError(f"unknown scikit-image photo {name!r}")
        try:
            arr = fn()
        except Exception as e:  # some skimage photos need an optional download
            raise ImageError(f"scikit-image photo {name!r} unavailable: {e}") from None
        if isinstance(arr, tuple):
            arr = arr[0]
        arr = np.asarray(arr)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        return Image.fromarray(arr).convert("RGB")
    path = Path(ref)
    if path.is_dir():
        raise ImageError(f"image path is a folder, not a file: {ref}")
    if not path.is_file():
        raise ImageError(f"image file not found: {ref}")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"cannot decode image {ref}: {e}") from None
