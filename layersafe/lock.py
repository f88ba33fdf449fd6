"""One writer per output folder: a lock file with stale-lock detection.

Two runs appending to the same generations.jsonl would interleave and duplicate rows. The lock
records pid and host; a lock whose process is gone (killed, machine rebooted) is stale and is
taken over with a notice, so a crashed run never blocks its own ``--resume``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

LOCK_NAME = ".layersafe.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class DirLock:
    def __init__(self, folder: str | Path, log=print):
        self.path = Path(folder) / LOCK_NAME
        self.log = log
        self.held = False

    def acquire(self) -> "DirLock":
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self._read()
                same_host = other.get("host") == me["host"]
                pid = other.get("pid")
                if same_host and isinstance(pid, int) and not _alive(pid):
                    self.log(f"note: removing stale lock of dead process {pid} in {self.path.parent}")
                    self.path.unlink(missing_ok=True)
                    continue
                if not other:  # unreadable: a writer died mid-write of the lock itself
                    self.log(f"note: removing unreadable lock {self.path}")
                    self.path.unlink(missing_ok=True)
                    continue
                where = f"pid {pid} on {other.get('host')}" + (f" since {other.get('since')}" if other.get("since") else "")
                raise UserError(f"{self.path.parent} is in use by another layersafe run ({where}); wait for it, "
                                f"or delete {self.path} if that run is dead")
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise UserError(f"cannot take the lock {self.path}; delete it if no run is using the folder")

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


@contextmanager
def locked_out(folder: str | Path, log=print):
    """Create the output folder and hold its lock for the body. Under torchrun / ``accelerate
    launch`` only rank 0 locks (it is the one writing there). A folder this call created is removed
    again if the body left it empty (e.g. a bad option found before anything was written)."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    lock = DirLock(out, log=log).acquire()
    try:
        yield
    finally:
        lock.release()
        if created and not any(out.iterdir()):
            out.rmdir()


def is_empty(folder: Path) -> bool:
    """True when ``folder`` is missing or holds nothing but our lock file."""
    return not folder.is_dir() or all(p.name == LOCK_NAME for p in folder.iterdir())


def check_resume_settings(out: Path, run_json: str, cfg, keys: tuple[str, ...]) -> None:
    """Refuse to resume ``out`` when any of ``keys`` (settings that change what a step computes)
    differs between ``cfg`` and the ``config`` recorded in OUT/``run_json`` by the original run."""
    try:
        old = json.loads((out / run_json).read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{out / run_json} is missing or unreadable; cannot resume safely") from None
    diff = [k for k in keys if old.get(k) != getattr(cfg, k)]
    if diff:
        desc = ", ".join(f"{k}: {old.get(k)!r} -> {getattr(cfg, k)!r}" for k in diff)
        raise UserError(f"cannot resume {out}: settings differ from the original run ({desc})")


def resume_point(out: Path, cfg, keys: tuple[str, ...], *, run_json: str, ckpt_dir: str, latest: str) -> Path | None:
    """The checkpoint folder a ``--resume`` run continues from (None for a fresh run).

    A fresh run needs an empty OUT; a resume needs OUT/ckpt_dir/latest to name a complete
    checkpoint (one with trainer_state.json) and the settings ``keys`` unchanged."""
    if not cfg.resume:
        if not is_empty(out):
            raise UserError(f"--out {out} is not empty; pass --resume to continue that run or choose a new folder")
        return None
    pointer = out / ckpt_dir / latest
    if not pointer.is_file():
        raise UserError(f"--resume: no checkpoint in {out / ckpt_dir}; start without --resume")
    point = out / ckpt_dir / pointer.read_text().strip()
    if not (point / "trainer_state.json").is_file():
        raise UserError(f"--resume: {point} is incomplete; remove {pointer} to fall back")
    check_resume_settings(out, run_json, cfg, keys)
    return point
