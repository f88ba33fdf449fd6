"""Model adapters register themselves: ``@register`` on a family's adapter class adds it under
each architecture it declares (``architectures``, as in ``config.architectures``) and each
``model_type`` (for configs saved without ``architectures``). ``load_vlm`` looks them up here.
Only what a class declares itself counts, so a subclass never inherits its parent's entries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import VLMAdapter

ADAPTERS: dict[str, type[VLMAdapter]] = {}  # architecture name -> adapter class
MODEL_TYPES: dict[str, str] = {}  # config.model_type -> architecture name


def register(cls: type[VLMAdapter]) -> type[VLMAdapter]:
    archs = vars(cls).get("architectures", ())
    if not archs:
        raise TypeError(f"{cls.__name__} declares no architectures of its own")
    for arch in archs:
        if ADAPTERS.get(arch, cls) is not cls:
            raise TypeError(f"architecture {arch} is already served by {ADAPTERS[arch].__name__}")
        ADAPTERS[arch] = cls
    for mt in vars(cls).get("model_types", ()):
        MODEL_TYPES[mt] = archs[0]
    return cls
