"""One writer per output folder, for every command of criss-cross that writes a run folder
(``pretrain``, ``probe``, ``bench``).

``with one_writer(out, "bench run"):`` holds ``out/writer.lock`` (biosig-prep's writer-lock
design: pid, host, start time) for the duration. A second run into the same folder is refused
with a ``ValueError`` naming the holder's pid and host, before it writes anything; the lock of a
killed run (a dead pid on this host) is taken over, and ``report`` gets the note that says so.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["one_writer"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@contextlib.contextmanager
def one_writer(out: str | Path, what: str,
               report: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``out/writer.lock`` while the block runs (see the module docstring)."""
    from biosig_prep.store.lock import FolderLock, LockedError

    if Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"{out} is a file, not a folder: give a folder for the {what}")
    lock = FolderLock(out, what=what)
    try:
        lock.acquire()
    except LockedError as err:
        raise ValueError(str(err)) from None
    except OSError as err:  # a parent that is a file, a read-only or full disk
        raise ValueError(f"{out}: cannot take the {what}'s writer.lock there "
                         f"({err.strerror or err})") from None
    if lock.note:
        (report or _stderr)(lock.note)
    try:
        yield
    finally:
        lock.release()
