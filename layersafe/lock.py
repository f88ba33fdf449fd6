"""One writer per output folder: an OS lock on a lock file that names its holder.

Two runs appending to the same generations.jsonl would interleave and duplicate rows. The lock
records pid and host; the OS releases it when its process dies (killed, machine rebooted), so the
file a dead run left behind is stale and is taken over with a notice, and a crashed run never
blocks its own ``--resume``.
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


class DirLock:
    """An OS lock (``flock``) on OUT/.layersafe.lock, which also records pid, host and start time.

    Taking it is atomic: the kernel grants the lock to one process only, and releases it when
    that process dies, however it dies. (The earlier create-then-write scheme let a second
    process read the still-empty file, call it unreadable and take it: issue 24.) The file's
    content only names the holder in messages and tells a dead run's leftover from a live one.
    """

    def __init__(self, folder: str | Path, log=print):
        self.path = Path(folder) / LOCK_NAME
        self.log = log
        self.held = False
        self._fd: int | None = None

    def acquire(self) -> "DirLock":
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                os.close(fd)
                self._refuse(self._read(), me)
            try:
                st = os.fstat(fd)
                if st.st_nlink == 0 or os.stat(self.path).st_ino != st.st_ino:
                    os.close(fd)  # the holder released (unlinked) it between our open and lock: retry
                    continue
            except FileNotFoundError:
                os.close(fd)
                continue
            other = _parse(os.pread(fd, 4096, 0))
            pid = other.get("pid")
            if other and other.get("host") != me["host"]:
                # Lock files on a shared filesystem: the OS lock may not reach the other machine.
                os.close(fd)
                self._refuse(other, me)
            if isinstance(pid, int) and pid != me["pid"]:
                self.log(f"note: removing stale lock of dead process {pid} in {self.path.parent}")
            data = json.dumps(me).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
            self._fd, self.held = fd, True
            return self
        raise UserError(f"cannot take the lock {self.path}; delete it if no run is using the folder")

    def _refuse(self, other: dict, me: dict):
        pid = other.get("pid")
        if other:
            where = f"pid {pid} on {other.get('host')}" + (f" since {other.get('since')}" if other.get("since") else "")
        else:
            where = "a process that is starting"
        raise UserError(f"{self.path.parent} is in use by another layersafe run ({where}); wait for it, "
                        f"or delete {self.path} if that run is dead")

    def _read(self) -> dict:
        try:
            return _parse(self.path.read_bytes())
        except OSError:
            return {}

    def release(self) -> None:
        if self.held:
            # Unlink while still holding the lock: a waiter that opened the old file sees it
            # unlinked (st_nlink 0) and retries on a fresh one.
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd, self.held = None, False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _parse(raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _try_lock(fd: int) -> bool:
    """Non-blocking exclusive OS lock on ``fd``; held until the fd is closed or the process dies."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


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


def read_holder(folder: str | Path) -> dict:
    """What OUT/.layersafe.lock says about its holder (pid, host, since); {} if unreadable."""
    try:
        return _parse((Path(folder) / LOCK_NAME).read_bytes())
    except OSError:
        return {}


def holder_error(folder: str | Path, holder: dict) -> str | None:
    """For the ranks other than 0 of a multi-process run (docs/scale.md): None when the folder's
    lock names ``holder`` (what rank 0 wrote there on taking it), else why not: the folder is on
    a filesystem this process does not share with rank 0, or another run holds it."""
    path = Path(folder) / LOCK_NAME
    seen = read_holder(folder)
    if not path.exists():
        return (f"{path} (taken by rank 0) does not exist on {socket.gethostname()}: --out must be on a "
                "filesystem that every process of the launch sees")
    if not holder or seen.get("pid") != holder.get("pid") or seen.get("host") != holder.get("host"):
        return (f"{path.parent} is locked by pid {seen.get('pid')} on {seen.get('host')}, not by rank 0 of this "
                f"launch (pid {holder.get('pid')} on {holder.get('host')}); is another run writing there?")
    return None


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
    import dataclasses

    # a setting added since the original run was recorded counts as its default (e.g. template)
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else {}
    diff = [k for k in keys if old.get(k, defaults.get(k)) != getattr(cfg, k)]
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
        # A run that stopped before its first checkpoint (killed, or failed: a reward judge that
        # would not load) starts over in the same folder, if its settings are the same.
        try:
            status = json.loads((out / run_json).read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            status = None
        if status in ("running", "failed", "interrupted"):
            check_resume_settings(out, run_json, cfg, keys)
            return None
        raise UserError(f"--resume: no checkpoint in {out / ckpt_dir}; start without --resume")
    point = out / ckpt_dir / pointer.read_text().strip()
    if not (point / "trainer_state.json").is_file():
        raise UserError(f"--resume: {point} is incomplete; remove {pointer} to fall back")
    check_resume_settings(out, run_json, cfg, keys)
    return point
