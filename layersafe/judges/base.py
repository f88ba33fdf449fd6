"""Judge interface and registry (DESIGN.md §2, §3).

A judge reads rows (dicts with at least ``prompt`` and ``response``) and returns one dict of
scores per row. Judges run from files alone, so old generations can be re-scored without the VLM.
"""

from __future__ import annotations

from typing import Callable, ClassVar

from ..errors import UserError


class Judge:
    """Base class: subclasses set ``name``, ``metrics``, ``higher_is_safer`` and implement score."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    # metric -> True if a higher value means a safer response (refusal: 1 = refused = safer)
    higher_is_safer: ClassVar[dict[str, bool]] = {}

    def __init__(self, arg: str | None = None):
        self.arg = arg

    def score(self, rows: list[dict]) -> list[dict]:
        """Return one ``{metric: value}`` dict per row, in order."""
        raise NotImplementedError


_REGISTRY: dict[str, Callable[[str | None], Judge]] = {}


def register(cls):
    _REGISTRY[cls.name] = cls
    return cls


def available() -> dict[str, Callable]:
    from . import refusal  # noqa: F401  (registers built-in judges)

    return dict(_REGISTRY)


def get_judge(spec: str) -> Judge:
    """``NAME`` or ``NAME:ARG`` -> a judge instance."""
    name, _, arg = spec.partition(":")
    judges = available()
    if name not in judges:
        raise UserError(f"unknown judge {name!r}; available: {', '.join(sorted(judges))}")
    return judges[name](arg or None)
