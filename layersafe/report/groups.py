"""Early / Middle / Late layer thirds from the encoder depth (paper Table 2). Pure functions.

Layer 0 (patch embeddings, the input to block 1) is in no third and not in "All": it is not the
output of any encoder block. The report shows it as its own column so nothing is hidden.
"""

from __future__ import annotations

THIRDS = ("early", "middle", "late")
# Column order of the group table: layer 0, the thirds, all blocks, the model's default layer.
GROUPS = ("layer0", *THIRDS, "all", "default")


def third_of(layer: int, num_layers: int) -> str | None:
    """Which third block ``layer`` (1..num_layers) falls in; None for layer 0 or out of range.

    Thirds are as even as possible, earlier ones taking the remainder:
    24 -> 1–8, 9–16, 17–24 (the paper's split); 32 -> 1–11, 12–22, 23–32; 2 -> 1, 2, (none).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if not 1 <= layer <= num_layers:
        return None
    return THIRDS[3 * (layer - 1) // num_layers]


def thirds(num_layers: int) -> dict[str, tuple[int, int] | None]:
    """First and last layer of each third (None for a third with no layer, when depth < 3)."""
    spans: dict[str, tuple[int, int] | None] = dict.fromkeys(THIRDS)
    for layer in range(1, num_layers + 1):
        name = third_of(layer, num_layers)
        first = spans[name][0] if spans[name] else layer
        spans[name] = (first, layer)
    return spans


def group_labels(num_layers: int, default_layer: int | None) -> dict[str, str]:
    """Human labels of the group-table columns, with the layer ranges printed."""
    labels = {"layer0": "Layer 0 (embeddings)"}
    for name, span in thirds(num_layers).items():
        rng = "—" if span is None else (f"{span[0]}" if span[0] == span[1] else f"{span[0]}–{span[1]}")
        labels[name] = f"{name.capitalize()} {rng}"
    labels["all"] = f"All 1–{num_layers}"
    labels["default"] = f"Default ({default_layer})"
    return labels


def describe_thirds(num_layers: int) -> str:
    """One line saying how the thirds were computed (printed in the console and the HTML)."""
    parts = [group_labels(num_layers, None)[t] for t in THIRDS]
    return (f"thirds of {num_layers} encoder blocks: {', '.join(parts)}; "
            "layer 0 (patch embeddings) is shown on its own, in no third and not in All")
