"""Atomic writes: a reader sees the old file or the whole new one, never half of it.

The data go to a hidden temporary file in the same folder (same file system), are flushed and
fsync'ed, then renamed over the target with :func:`os.replace` (atomic on POSIX and Windows).
A failure (disk full, a signal) removes the temporary file and leaves the old target as it was;
the error names the target.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "fsync_dir"]


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder so that a rename inside it survives a power cut (no-op where folders
    cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:  # the folder itself is gone or is not a folder
        pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview, *,
                       durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (the parent folder is created if needed).

    durable : fsync the file and its folder (slower; what checkpoints and markers need).
    Raises OSError naming ``path`` if it cannot be written (the old file is left intact).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise OSError(exc.errno, f"could not write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _discard(tmp)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2,
                      durable: bool = True, **dumps_kw: Any) -> Path:
    """:func:`atomic_write_bytes` for JSON (``allow_nan=False``: NaN is not JSON; a trailing
    newline is added)."""
    dumps_kw.setdefault("allow_nan", False)
    return atomic_write_text(path, json.dumps(data, indent=indent, **dumps_kw) + "\n",
                             durable=durable)
