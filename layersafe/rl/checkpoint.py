"""Training checkpoints shared by ``align`` (L-PPO, distillation) and ``sft``.

Layout: ``OUT/checkpoints/step-NNNNNNN/`` plus ``OUT/checkpoints/latest`` (the name of the newest
complete one). A checkpoint is written into a hidden temp folder, fsynced and renamed, and only
then does ``latest`` move (atomically): a crash at any moment leaves the previous checkpoint.

Nothing here runs code from a checkpoint folder (docs/troubleshooting.md, "resume"): tensors
load with ``torch.load(weights_only=True)`` and the RNG state is a safetensors file of integer
tensors with JSON metadata, validated before use. A planted pickle is never unpickled.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Callable

import torch

from ..errors import UserError
from ..io import atomic_write_text

CKPT_DIR = "checkpoints"
LATEST = "latest"


def fsync_dir(path: Path) -> None:
    """fsync every file under ``path`` (before the rename that publishes it)."""
    for p in path.rglob("*"):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())


def temp_dir(out: Path, step: int) -> Path:
    return out / CKPT_DIR / f".step-{step:07d}.tmp"


def begin(out: Path, step: int) -> Path:
    """A fresh, empty temp folder for the checkpoint of ``step`` (main process only)."""
    tmp = temp_dir(out, step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit(out: Path, step: int, keep: int) -> Path:
    """Publish the temp folder of ``step`` as ``step-N``, move ``latest`` to it, keep the newest
    ``keep`` checkpoints (main process only)."""
    root = out / CKPT_DIR
    tmp, final = temp_dir(out, step), root / f"step-{step:07d}"
    fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(root / LATEST, final.name + "\n")
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_tensors(obj, path: Path) -> None:
    torch.save(obj, path)


def load_tensors(path: Path, map_location="cpu"):
    """A state dict / optimizer state written by :func:`save_tensors`. ``weights_only=True``: a
    checkpoint from someone else cannot run code; anything else in the file is an error."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint file {path} is missing; the checkpoint is incomplete: start a new --out") from None
    except Exception as e:  # unpickling refused (not plain tensors) or a corrupt file
        raise UserError(f"checkpoint file {path} is not a plain tensor file ({type(e).__name__}); "
                        "it was not written by layersafe or is corrupt: start a new --out") from None


# ---- RNG state: safetensors + JSON metadata, never pickle ----------------------------------

def rng_state_file(folder: Path, rank: int = 0) -> Path:
    return folder / f"rng-{rank}.safetensors"


def save_rng_state(path: Path) -> None:
    """Python, NumPy, torch CPU (and CUDA) generator states as integer tensors."""
    import numpy as np
    from safetensors.torch import save_file

    version, mt, gauss = random.getstate()
    kind, np_mt, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    tensors = {"python_mt": torch.tensor(mt, dtype=torch.int64),
               "numpy_mt": torch.from_numpy(np.asarray(np_mt, dtype=np.int64)),
               "torch": torch.get_rng_state().clone()}
    n_cuda = 0
    if torch.cuda.is_available():
        for i, st in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_{i}"] = st.clone()
            n_cuda += 1
    meta = {"python_version": version, "python_gauss": gauss, "numpy_kind": kind, "numpy_pos": int(np_pos),
            "numpy_has_gauss": int(np_has_gauss), "numpy_gauss": float(np_gauss), "n_cuda": n_cuda}
    save_file(tensors, str(path), metadata={"layersafe_rng": json.dumps(meta)})


def load_rng_state(path: Path) -> None:
    """Restore what :func:`save_rng_state` wrote; a malformed file is a one-line error."""
    import numpy as np
    from safetensors import safe_open

    def bad(why: str):
        return UserError(f"checkpoint RNG state {path} is not valid ({why}); start a new --out")

    if not path.is_file():
        legacy = path.with_suffix(".pt")
        if legacy.is_file():  # written by layersafe < 0.5 as a pickle: never unpickle it
            raise UserError(f"checkpoint {path.parent} holds its RNG state as a pickle ({legacy.name}), which "
                            "layersafe no longer loads (it can run code); start a new --out")
        raise bad("missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["layersafe_rng"])
            t = {k: f.get_tensor(k) for k in f.keys()}
        py_mt = tuple(int(x) for x in t["python_mt"].tolist())
        np_mt = t["numpy_mt"].numpy().astype(np.uint32)
        gauss = meta["python_gauss"]
        state_py = (int(meta["python_version"]), py_mt, None if gauss is None else float(gauss))
        state_np = (str(meta["numpy_kind"]), np_mt, int(meta["numpy_pos"]), int(meta["numpy_has_gauss"]),
                    float(meta["numpy_gauss"]))
        cpu = t["torch"]
        if cpu.dtype != torch.uint8:
            raise ValueError("torch state is not uint8")
        random.setstate(state_py)
        np.random.set_state(state_np)
        torch.set_rng_state(cpu)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any malformed content: one line, never a traceback
        raise bad(f"{type(e).__name__}: {e}"[:120]) from None
    n_cuda = int(meta.get("n_cuda", 0))
    if n_cuda and torch.cuda.is_available() and n_cuda == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([t[f"cuda_{i}"] for i in range(n_cuda)])


def write_checkpoint(out: Path, step: int, keep: int, write: Callable[[Path], None], *, rank: int = 0,
                     world: int = 1, barrier: Callable[[], None] = lambda: None) -> Path:
    """The whole protocol for one or many processes: the main process makes the temp folder,
    every process saves its RNG state there, the main process calls ``write(tmp)`` for the rest
    and publishes. Returns the final folder."""
    if rank == 0:
        begin(out, step)
    barrier()
    save_rng_state(rng_state_file(temp_dir(out, step), rank))
    barrier()
    final = out / CKPT_DIR / f"step-{step:07d}"
    if rank == 0:
        write(temp_dir(out, step))
        final = commit(out, step, keep)
    barrier()
    return final


# ---- trainable weights + optimizer state, one process or sharded ----------------------------
# One process writes ``optimizer.state_dict()`` (parameters by position); a sharded run writes the
# state gathered in full (rl/fsdp.py), parameters by name. Both hold full tensors, so either loads
# into either: a run may be resumed on another number of processes.

def training_state(model: torch.nn.Module, optimizer, sharded: bool) -> tuple[dict, dict]:
    """(trainable weights by name, optimizer state) on the CPU, for ``trainable.pt`` / ``optimizer.pt``.
    Sharded, both are gathered in full (every process must call it: collectives)."""
    if sharded:
        from .fsdp import full_optimizer_state, full_trainable

        return full_trainable(model), full_optimizer_state(model, optimizer)
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}, optimizer.state_dict()


def _optimizer_names(model: torch.nn.Module, optimizer) -> list[str]:
    """The optimizer's parameters by name, in ``state_dict()``'s position order (groups in turn)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for g in optimizer.param_groups for p in g["params"]]


def _rekey(state: dict, key) -> dict:
    """An optimizer state dict with every parameter reference (state keys, groups' params) mapped by ``key``."""
    return {"state": {key(k): v for k, v in state["state"].items()},
            "param_groups": [{**g, "params": [key(k) for k in g["params"]]} for g in state["param_groups"]]}


def load_training_state(path: Path, model: torch.nn.Module, optimizer, sharded: bool, *, exact: bool = True) -> None:
    """Load ``path``/trainable.pt and optimizer.pt (written by :func:`training_state`, by any number
    of processes) into ``model`` and ``optimizer``; sharded, every process reads the full tensors and
    keeps its shards. ``exact``: the checkpoint's weights must be exactly the trainable ones (else
    only none may be missing)."""
    weights = load_tensors(path / "trainable.pt")
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing = set(params) - set(weights) if isinstance(weights, dict) else set(params)
    if missing or (exact and set(weights) != set(params)):
        raise UserError(f"checkpoint {path} does not match this model/config "
                        f"(missing {sorted(missing)[:3]}); start a new --out")
    optim = load_tensors(path / "optimizer.pt")
    try:
        order = _optimizer_names(model, optimizer)
        by_name = all(isinstance(k, str) for g in optim["param_groups"] for k in g["params"])
        if sharded and not by_name:
            optim = _rekey(optim, lambda i: order[i])
        elif not sharded and by_name:
            optim = _rekey(optim, {n: i for i, n in enumerate(order)}.__getitem__)
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UserError(f"checkpoint {path}: optimizer.pt does not match this model/config; start a new --out") from None
    if sharded:
        from .fsdp import load_full_optimizer_state, load_full_trainable

        load_full_trainable(model, weights)
        load_full_optimizer_state(model, optimizer, optim)
        return
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(weights[n].to(p.device, p.dtype))
    optimizer.load_state_dict(optim)
