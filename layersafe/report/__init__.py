"""Reports from run folders: per-layer curves, layer-group tables, comparisons, one HTML page."""

from .build import build_report  # noqa: F401
