"""Data-parallel helpers for ``torchrun`` / ``accelerate launch`` (docs/scale.md, docs/design.md §3.6).

A launcher starts N copies of the same command and tells each its place through the environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). Here:

* :func:`rank_info` reads that place; :func:`setup` also joins the process group (gloo on CPU,
  nccl on CUDA, each process on GPU ``LOCAL_RANK``);
* :func:`on_main` runs a step on rank 0 only (take the folder lock, check the folder) and shares
  its result, or its one-line error, with every rank, so no rank waits forever for a rank that
  gave up; :func:`all_ok` does the same for a check every rank makes;
* :func:`barrier`, :func:`broadcast`, :func:`gather` wrap the collectives (no-ops for one process);
* :func:`part_path`, :func:`part_files` and :func:`merge_parts`: each rank appends its rows to its
  own part file beside the result, and rank 0 merges them, sorted into the order one process
  would have written, once every rank is done.

With one process (no launcher) every function is a no-op or runs its argument directly.
"""

from __future__ import annotations

import atexit
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Hashable

from .errors import UserError

# A rank that finished its share waits at a barrier for the slowest one (a resumed scan can leave
# one rank almost nothing to do): the default 30 minutes (10 with nccl) is far too short.
TIMEOUT = timedelta(hours=24)


@dataclass(frozen=True)
class RankInfo:
    """This process's place in a launch: ``rank`` of ``world`` processes, GPU ``local_rank``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def rank_info() -> RankInfo:
    """The launch position from the environment (one process when ``WORLD_SIZE`` is unset or 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0)
        local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    except ValueError:
        raise UserError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun / accelerate launch)") from None
    if world < 1 or not 0 <= rank < world:
        raise UserError(f"bad launch environment: RANK={rank} with WORLD_SIZE={world}")
    return RankInfo(rank, world, local)


def _dist():
    import torch.distributed as dist

    return dist


def _active() -> bool:
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_device(device: str, info: RankInfo) -> str:
    """The device of this rank's model under a launcher (``--device`` auto, cuda or cpu): GPU
    LOCAL_RANK, or the CPU. ``cuda:N`` is refused: it would put every process on one device."""
    if device == "cpu":
        return "cpu"
    if device not in ("auto", "cuda"):
        raise UserError(f"--device {device} would put every process on one device; under torchrun / accelerate "
                        "launch use --device cuda (process i takes GPU LOCAL_RANK i) or --device cpu")
    import torch

    if torch.cuda.is_available():
        return f"cuda:{info.local_rank}"
    if device == "cuda":
        raise UserError("--device cuda asked for, but no CUDA GPU is visible; use --device cpu")
    return "cpu"


def setup(use_cuda: bool | None = None) -> RankInfo:
    """Join the launch's process group (once per process) and return :func:`rank_info`.

    nccl when CUDA is used (``use_cuda``; default: when a GPU is visible), else gloo. With CUDA the
    process's current device becomes ``cuda:LOCAL_RANK``, so ``--device cuda`` / ``auto`` (scan,
    judges) land on this rank's GPU. An already initialised group (e.g. accelerate's) is reused."""
    info = rank_info()
    if not info.distributed:
        return info
    import torch

    dist = _dist()
    if use_cuda is None:
        use_cuda = torch.cuda.is_available()
    if use_cuda:
        if info.local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {info.local_rank} but only {torch.cuda.device_count()} GPU(s) are visible; "
                            "start at most one process per GPU")
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        if not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
            raise UserError(f"WORLD_SIZE={info.world} but MASTER_ADDR/MASTER_PORT are unset; start several "
                            "processes with torchrun or accelerate launch")
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=TIMEOUT)
        atexit.register(_shutdown)
    if dist.get_world_size() != info.world or dist.get_rank() != info.rank:
        raise UserError(f"the process group ({dist.get_rank()} of {dist.get_world_size()}) disagrees with "
                        f"RANK={info.rank} WORLD_SIZE={info.world}")
    return info


def _shutdown() -> None:
    dist = _dist()
    if dist.is_initialized():
        dist.destroy_process_group()


def shutdown_at_exit() -> None:
    """Destroy the process group when the interpreter exits, for groups made elsewhere (accelerate's):
    a gloo group left to the C++ destructors at exit can abort the process ("terminate called
    without an active exception") after the run's work is done."""
    atexit.register(_shutdown)


def barrier() -> None:
    """Wait until every rank gets here (no-op for one process)."""
    if _active():
        _dist().barrier()


def broadcast(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (any picklable object)."""
    if not _active():
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src)
    return box[0]


def gather(obj: Any) -> list:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` for one process)."""
    if not _active():
        return [obj]
    dist = _dist()
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def on_main(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only and return its result on every rank. When it raises a
    :class:`UserError`, every rank raises the same one-line error (the others would otherwise
    wait for rank 0 at the next collective until the timeout)."""
    if not _active():
        return fn()
    result, error = None, None
    if _dist().get_rank() == 0:
        try:
            result = fn()
        except UserError as e:
            error = str(e)
    result, error = broadcast((result, error))
    if error is not None:
        raise UserError(error)
    return result


def all_ok(error: str | None) -> None:
    """Every rank passes its own check's error (None when fine); if any rank failed, every rank
    raises the first failure (lowest rank), named by rank."""
    if not _active():
        if error is not None:
            raise UserError(error)
        return
    errors = gather(error)
    for r, e in enumerate(errors):
        if e is not None:
            raise UserError(f"rank {r}: {e}" if len(errors) > 1 else e)


# ---- part files ----------------------------------------------------------------------------

_PART = re.compile(r"\.part-(\d+)$")


def part_path(path: str | Path, rank: int) -> Path:
    """Rank ``rank``'s part file of ``path``: ``generations.jsonl`` -> ``generations.part-1.jsonl``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.part-{rank}{path.suffix}")


def part_files(path: str | Path) -> list[Path]:
    """The part files of ``path`` that exist, in rank order (any number of ranks: a resume may
    use another process count than the run that wrote them)."""
    path = Path(path)
    found = []
    for p in path.parent.glob(f"{path.stem}.part-*{path.suffix}"):
        m = _PART.search(p.name[: len(p.name) - len(path.suffix)] if path.suffix else p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def merge_parts(path: str | Path, *, identity: Callable[[dict], Hashable],
                order: Callable[[dict], Any]) -> int:
    """Fold the part files of ``path`` into ``path``: the rows already there and the parts' rows
    (a torn last line, from a killed rank, cut off), each ``identity`` kept once (the first seen:
    the file's own row), stably sorted by ``order``. ``path`` is replaced atomically before the
    parts are deleted, so a crash at any moment loses no row (merging again is harmless).
    Call it on one process only, while no rank writes. Returns the number of rows added."""
    from .io import atomic_write_text, read_jsonl, truncate_torn_tail

    path = Path(path)
    parts = part_files(path)
    if not parts:
        return 0
    rows: list[dict] = []
    if path.exists():
        truncate_torn_tail(path)
        rows = read_jsonl(path)
    seen = {identity(r) for r in rows}
    n_old = len(rows)
    for p in parts:
        truncate_torn_tail(p)
        for r in read_jsonl(p):
            k = identity(r)
            if k not in seen:
                seen.add(k)
                rows.append(r)
    rows.sort(key=order)
    import json

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    for p in parts:
        p.unlink(missing_ok=True)
    return len(rows) - n_old

