"""peft's ``PeftModel.__init__`` reads ``model.is_gradient_checkpointing``, which transformers 5
deprecates with a FutureWarning (use ``is_activation_checkpointing``). The read is peft's, not ours
nor the user's, so the warning only alarms: :func:`peft_wrap` silences exactly that message around
our calls that wrap a model with peft; every other warning still shows."""

from __future__ import annotations

import contextlib
import warnings


@contextlib.contextmanager
def peft_wrap():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield
