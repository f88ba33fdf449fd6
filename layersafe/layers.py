"""Layer specs (docs/design.md §3): ``all``, ``default``, ``N``, ``A-B`` and comma lists of these.

Numbers index the encoder's ``hidden_states``: 0 = patch embeddings, l = output of block l,
valid range 0..num_layers. Negative numbers count from the end like Python (-1 = last block)
only inside ``N`` items, so ``-2`` is the LLaVA default; ranges must use non-negative numbers.
"""

from __future__ import annotations

import re

from .errors import UserError

_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_INT = re.compile(r"^-?\d+$")


def parse_layers(spec: str, num_layers: int, default_layer: int) -> list[int]:
    """Parse ``spec`` into a sorted list of unique layers in ``0..num_layers``.

    Raises UserError naming the valid range for anything out of range or malformed.
    """
    valid = f"valid layers are 0..{num_layers} (0 = patch embeddings, {num_layers} = last block; default {default_layer})"
    if spec is None or not str(spec).strip():
        raise UserError(f"empty layer spec; use all, default, N, A-B or a comma list; {valid}")
    out: set[int] = set()
    for item in str(spec).split(","):
        item = item.strip().lower()
        if item == "all":
            out.update(range(num_layers + 1))
        elif item == "default":
            out.add(default_layer)
        elif _INT.match(item):
            n = int(item)
            if n < 0:
                n += num_layers + 1
            if not 0 <= n <= num_layers:
                raise UserError(f"layer {item} out of range: {valid}")
            out.add(n)
        elif m := _RANGE.match(item):
            a, b = int(m.group(1)), int(m.group(2))
            if a > b:
                raise UserError(f"layer range {item} is backwards; write it as {b}-{a}; {valid}")
            if b > num_layers:
                raise UserError(f"layer range {item} out of range: {valid}")
            out.update(range(a, b + 1))
        else:
            raise UserError(f"bad layer spec item {item!r}: use all, default, N, A-B or a comma list; {valid}")
    return sorted(out)
