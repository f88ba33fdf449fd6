"""Small file helpers: JSONL that tolerates a torn last line, atomic writes, CSV/JSONL row files."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import UserError


def read_jsonl(path: str | Path, *, tolerate_torn_tail: bool = True) -> list[dict]:
    """Read a JSONL file. A last line without its newline that does not parse (a write cut off
    by a crash) is dropped; a bad line elsewhere is a UserError naming its line number."""
    path = Path(path)
    rows = []
    with path.open("rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            if tolerate_torn_tail and i == len(lines):  # last chunk had no newline: torn write
                break
            raise UserError(f"{path}: line {i} is not valid JSON; fix or remove that line") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}: line {i} is not a JSON object")
        rows.append(obj)
    return rows


def _last_line(path: Path) -> bytes:
    """The bytes after the file's last newline (b"" when it ends with one, is empty or missing),
    read backwards from the end in 1 MB steps."""
    if not path.exists():
        return b""
    with path.open("rb") as f:
        pos, tail = f.seek(0, os.SEEK_END), b""
        while pos > 0:
            step = min(1 << 20, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
            cut = tail.rfind(b"\n")
            if cut >= 0:
                return tail[cut + 1:]
        return tail


def _is_row(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def torn_tail(path: str | Path) -> int:
    """Bytes of a partial last line (no trailing newline, and not a JSON object: a write cut off
    by a crash, which :func:`read_jsonl` drops); 0 when there is none."""
    last = _last_line(Path(path))
    return 0 if not last.strip() or _is_row(last) else len(last)


def truncate_torn_tail(path: str | Path) -> int:
    """Cut a partial last line (:func:`torn_tail`) so appends start on a fresh line; a last line
    that parses but lacks only its newline is kept and ended. Returns the number of bytes removed."""
    path = Path(path)
    last = _last_line(path)
    if not last:
        return 0
    with path.open("rb+") as f:
        if _is_row(last):  # written whole by something that ends files without a newline: a row, not a tear
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
            return 0
        f.truncate(f.seek(0, os.SEEK_END) - len(last))
        return len(last)


class JsonlAppender:
    """Append rows durably, so a crash loses at most the batch being written (and may tear its last line)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.f = self.path.open("a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self.write_many([row])

    def write_many(self, rows: list[dict]) -> None:
        """Append rows and make them durable with one fsync (per batch, not per row: an fsync
        per row cost seconds per thousand rows on network disks)."""
        try:
            self.f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            self.f.flush()
            os.fsync(self.f.fileno())
        except OSError as e:  # disk full: name the file in the one-line error
            raise _named(e, self.path) from None

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file + rename so readers never see a half-written file."""
    atomic_write_bytes(path, text.encode("utf-8"))



def trim_jsonl(path: str | Path, last_step: int, *, rewrite: bool = True) -> list[dict]:
    """The rows of a per-step log with ``step`` <= ``last_step``; with ``rewrite``, the file is
    rewritten with only those (a resumed run redoes the steps after its checkpoint)."""
    rows = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= last_step]
    if rewrite:
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows

def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """:func:`atomic_write_text` for bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                f.write(data)
                f.flush()
            except OSError as e:  # disk full: name the file in the one-line error
                raise _named(e, path) from None
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _named(e: OSError, path) -> OSError:
    """``e`` with ``path`` as its filename (writes to an open file raise without one)."""
    return e if e.filename is not None else OSError(e.errno, e.strerror or str(e), str(path))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a JSONL or CSV file (for judge inputs)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path)
    if suffix == ".csv":
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = [{k: _csv_uncell(v) for k, v in r.items()} for r in csv.DictReader(f)]
        except UnicodeDecodeError as e:
            raise UserError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 CSV") from None
        for r in rows:
            if isinstance(r.get("scores"), str) and r["scores"].strip().startswith("{"):
                try:
                    r["scores"] = json.loads(r["scores"])
                except json.JSONDecodeError:
                    pass
        return rows
    raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl or .csv")


# Spreadsheets run a cell starting with one of these as a formula (=HYPERLINK(...) from a model's
# answer, say). OWASP's rule: prefix such text cells with ' so they stay text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v):
    """``v`` safe for a spreadsheet: text that a spreadsheet would run as a formula gets a leading
    ``'``. Numbers (also negative ones, also written as text like "-0.5") are left alone."""
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        try:
            float(v)
            return v
        except ValueError:
            return "'" + v
    return v


def _csv_uncell(v):
    """Undo :func:`csv_cell` when reading a CSV back (ours round-trip; a lone ' before other text stays)."""
    if isinstance(v, str) and v.startswith("'") and v[1:].startswith(_FORMULA_START):
        return v[1:]
    return v


def write_rows(path: str | Path, rows: Iterable[dict]) -> None:
    """Write rows as JSONL or CSV (by extension), atomically. CSV cells holding dicts are JSON;
    text cells that a spreadsheet would run as formulas are escaped (:func:`csv_cell`)."""
    path = Path(path)
    rows = list(rows)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif suffix == ".csv":
        import io

        fields: list[str] = []
        for r in rows:
            for k in r:
                if k not in fields:
                    fields.append(k)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: csv_cell(json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()})
        atomic_write_text(path, buf.getvalue())
    else:
        raise UserError(f"{path}: unsupported output type {suffix or '(none)'}; use .jsonl or .csv")


def iter_chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
