"""Old home of the reward-model text format; it lives in :mod:`layersafe.rm_score` now (shared by
training, the reward judge and the preference loader without an upward import). Kept so old
imports keep working."""

from ..rm_score import ASSISTANT, HUMAN, format_dialogue  # noqa: F401
