"""Safe weight loading: safetensors only, unless the user explicitly allows pickle.

``pytorch_model.bin`` / ``adapter_model.bin`` are Python pickles: loading one can run arbitrary
code. Every model load in layersafe passes ``use_safetensors=True`` unless ``--allow-pickle``
(``allow_pickle=1`` in a judge spec) was given, and a local folder with only pickle weights is
refused up front with one line saying what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UserError

# The pickle weight files transformers / peft would load (not optimizer or RNG state of checkpoints).
_PICKLE_WEIGHTS = re.compile(r"^(?:pytorch_model(?:-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json|adapter_model\.bin)$")


def looks_local(name: str) -> bool:
    """Whether ``name`` is clearly a path, not a hub id OWNER/NAME."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or "\\" in name


def lacks_config(name: str, also: tuple[str, ...] = ()) -> bool:
    """Whether ``name`` is an existing folder with no config.json (nor adapter_config.json, nor
    ``also``): loaded from disk, the loaders' own error would be a cut-off tokenizer message
    ("Couldn't instantiate the backend tokenizer from one of:")."""
    p = Path(name).expanduser()
    return p.is_dir() and not any((p / f).is_file() for f in ("config.json", "adapter_config.json", *also))


def check_local_folder(name: str, what: str = "model") -> None:
    """A name that is clearly a path must be an existing folder (otherwise the hub client's "Repo
    id must be in the form ..." would hide the real mistake), and a folder must hold a config."""
    if looks_local(name) and not Path(name).expanduser().exists():
        raise UserError(f"{what} folder not found: {name}; check the path, or give a hub id OWNER/NAME")
    if lacks_config(name):
        raise UserError(f"{name} has no config.json; pass a folder saved with save_pretrained or a hub id")


def weights_kwargs(allow_pickle: bool) -> dict:
    """Keyword arguments for ``from_pretrained`` of a model (not of configs or tokenizers)."""
    return {} if allow_pickle else {"use_safetensors": True}


def pickle_message(what: str, name: str, found: str = "", flag: str = "--allow-pickle") -> str:
    where = f" ({found})" if found else ""
    return (f"{what} {name!r} has only pickle weights{where}, which can run code when loaded; convert it to "
            f"safetensors (from_pretrained then save_pretrained once where you trust it) or pass {flag} if you trust it")


def check_weights(path, allow_pickle: bool, what: str = "model", flag: str = "--allow-pickle") -> None:
    """Raise UserError unless the weights file that will actually be loaded from the local folder
    ``path`` is safetensors.

    Which file that is follows the loaders: a peft adapter folder (adapter_config.json) loads
    ``adapter_model.safetensors`` if present, else ``adapter_model.bin`` (a pickle, whatever else
    lies beside it); transformers with ``use_safetensors=True`` loads ``model.safetensors`` or the
    shards named by ``model.safetensors.index.json``. An unrelated ``*.safetensors`` (a planted
    ``decoy.safetensors``) proves nothing (issue 24)."""
    if allow_pickle:
        return
    p = Path(str(path)).expanduser()
    if not p.is_dir():
        return  # a hub id: from_pretrained(use_safetensors=True) refuses, see load_hint
    names = {f.name for f in p.iterdir()}
    if "adapter_config.json" in names:
        if "adapter_model.safetensors" in names:
            return
        if "adapter_model.bin" in names:
            raise UserError(pickle_message(what, str(path), "adapter_model.bin", flag))
        raise UserError(f"{what} {str(path)!r} has no adapter_model.safetensors; give a peft adapter folder "
                        "saved with save_pretrained")
    if "model.safetensors" in names:
        return
    if "model.safetensors.index.json" in names:
        _check_shards(p / "model.safetensors.index.json", what, str(path))
        return
    pickles = sorted(n for n in names if _PICKLE_WEIGHTS.match(n))
    if pickles:
        raise UserError(pickle_message(what, str(path), pickles[0], flag))


def _check_shards(index: Path, what: str, name: str) -> None:
    """Every shard a safetensors index names must be a .safetensors file in its folder."""
    import json

    try:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{what} {name!r}: {index.name} is unreadable; re-save the checkpoint") from None
    bad = sorted(s for s in shards if not isinstance(s, str) or not s.endswith(".safetensors") or "/" in s
                 or "\\" in s or not (index.parent / s).is_file())
    if bad:
        raise UserError(f"{what} {name!r}: {index.name} names {bad[0]!r}, which is not a safetensors file "
                        "in that folder; re-save the checkpoint")


def load_errors() -> tuple[type[BaseException], ...]:
    """What ``from_pretrained`` raises for a missing, corrupt or truncated checkpoint: besides
    OSError/ValueError, a broken pickle (UnpicklingError, EOFError, RuntimeError from torch.load)
    or a broken safetensors header (SafetensorError). All are the user's file, not a bug."""
    import pickle

    errors: tuple = (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError)
    try:
        from safetensors import SafetensorError

        errors += (SafetensorError,)
    except ImportError:
        pass
    return errors


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def load_hint(message: str, allow_pickle: bool, flag: str = "--allow-pickle", path=None) -> str:
    """What to add to a from_pretrained failure: the safetensors hint when that is the cause (not
    for a local folder that holds no weights at all: --allow-pickle would not help there)."""
    p = Path(str(path)).expanduser() if path is not None else None
    if p is not None and p.is_dir() and not any(_PICKLE_WEIGHTS.match(f.name) or f.suffix == ".safetensors"
                                                for f in p.iterdir()):
        return f" -- {path} holds no weights file (model.safetensors); save the model there with save_pretrained"
    if not allow_pickle and "safetensors" in message:
        return f" -- only safetensors weights are loaded; convert the checkpoint or pass {flag} if you trust it"
    return ""


def require_classifier(config, name: str, what: str) -> None:
    """A checkpoint saved as something other than a sequence classifier (a causal LM, a bare
    encoder) would get a freshly initialised, random score head: refuse it instead of scoring noise."""
    archs = getattr(config, "architectures", None) or []
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise UserError(f"{what} {name!r} is a {archs[0]}, not a sequence classifier (its score head would be "
                        "random); give a classifier checkpoint, e.g. a `layersafe train-rm` output folder")
