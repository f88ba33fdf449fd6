"""Package versions recorded in every run folder's ``run.json`` (scan, align, sft): a neutral
module so trainers record them without importing the scan engine."""

from __future__ import annotations

import platform


def package_versions() -> dict:
    """layersafe, Python, torch and transformers versions and the platform string."""
    import torch
    import transformers

    from . import __version__

    return {"layersafe": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "platform": platform.platform()}
