"""One writer at a time: a lock object at the store's root that survives ``kill -9``.

The lock holds its owner's pid, host and start time. A second writer is refused with those
facts. A lock whose owner is gone (same host, no such process: the run was killed) is *stale*:
it is reported and taken over, so a killed run never blocks its own resume. A lock of another
host cannot be checked from here; the message says how to proceed if that run is known to be
dead (remove the lock object only: the store itself is left as it is).

Local stores create the lock atomically (``O_CREAT | O_EXCL``); other stores check, write, and
read back (best effort: object stores have no exclusive create).

An empty or unreadable lock is what a writer killed between creating the lock and writing its
pid leaves (or one caught in that instant): after :data:`UNREADABLE_GRACE_S` seconds it is
stale and taken over; before that it is refused with a message saying so (never "pid None").

:class:`FolderLock` is the same design for a plain local folder (a training run's folder:
``criss-cross pretrain --out``, ``fusion-emotion train --out``): a ``writer.lock`` file in it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from biosig_prep.store.io import RawIO
from biosig_prep.store.layout import LOCK, META

_META_GROUP = json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {
    "note": "biosig-prep's own records of this store (sources.json; writer.lock while a "
            "conversion runs)"}}).encode()

__all__ = ["FolderLock", "LockedError", "WriterLock"]

#: Seconds after which an empty or unreadable lock counts as stale (a writer writes its pid
#: right after creating the lock; only a writer killed in between leaves it empty).
UNREADABLE_GRACE_S = 10.0


class LockedError(RuntimeError):
    """Another writer holds the store (the message names its pid and host)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass
class WriterLock:
    """``with WriterLock(raw, url):`` holds the store's writer lock for the block."""

    raw: RawIO
    url: str
    note: str = ""  # set when a stale lock was taken over
    what: str = "conversion"  # who writes: named in the refusal
    lock_name: str = LOCK

    def _age(self) -> float | None:
        """Seconds since the lock was written, where that can be told (local files)."""
        root = self.raw.local_root
        if root is None:
            return None
        try:
            return time.time() - (root / self.lock_name).stat().st_mtime
        except OSError:
            return None

    def _remove(self) -> None:
        self.raw.delete(self.lock_name)

    def _created(self) -> None:
        if not self.raw.exists(f"{META}/zarr.json"):  # a group, so zarr lists it quietly
            self.raw.put(f"{META}/zarr.json", _META_GROUP)

    def _mine(self) -> bytes:
        self.token = uuid.uuid4().hex
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "token": self.token}).encode()

    def _holder(self) -> dict | None:
        data = self.raw.get(self.lock_name)
        if data is None:
            return None
        try:
            holder = json.loads(data)
            return holder if isinstance(holder, dict) else {}
        except ValueError:
            return {}

    def _create(self) -> bool:
        root = self.raw.local_root
        if root is None:
            if self.raw.exists(LOCK):
                return False
            self.raw.put(LOCK, self._mine())
            return (self._holder() or {}).get("token") == self.token
        (root / META).mkdir(parents=True, exist_ok=True)
        return _create_exclusive(root / LOCK, self._mine())

    def acquire(self) -> None:
        for _ in range(3):
            if self._create():
                self._created()
                return
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile: try again
            if not isinstance(holder.get("pid"), int) or not holder.get("host"):
                age = self._age()
                if age is not None and age > UNREADABLE_GRACE_S:
                    self.note = (f"{self.url}: took over a stale writer lock {self.lock_name!r} "
                                 f"that is empty or unreadable ({age:.0f} s old: its writer was "
                                 "killed while taking it)")
                    self._remove()
                    continue
                raise LockedError(
                    f"{self.url}: the writer lock {self.lock_name!r} is empty or unreadable "
                    "(another writer is taking it right now, or one was killed while taking it); "
                    f"rerun in a few seconds, or, if no {self.what} is running, remove "
                    f"{self.lock_name!r} and rerun")
            pid, host = holder.get("pid"), holder.get("host")
            who = f"pid {pid} on host {host}, since {holder.get('started', '?')}"
            if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
                self.note = (f"{self.url}: took over a stale writer lock ({who}: that process "
                             "no longer exists, the run was killed)")
                self._remove()
                continue
            if host == socket.gethostname() and pid == os.getpid():
                raise LockedError(f"{self.url} is already being written by this process")
            raise LockedError(
                f"{self.url} is being written by another {self.what} ({who}); wait for it to "
                "finish, or write to another destination. If that run is known to be dead "
                f"(another host), remove only its lock object {self.lock_name!r} and rerun")
        raise LockedError(f"{self.url}: could not take the writer lock {self.lock_name!r}")

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder.get("token") == getattr(self, "token", None):
            self._remove()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _FolderIO:
    """The part of :class:`RawIO` a lock uses, on a plain local folder."""

    def __init__(self, folder: Path) -> None:
        self.local_root = folder

    def get(self, key: str) -> bytes | None:
        try:
            return (self.local_root / key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return (self.local_root / key).exists()

    def delete(self, key: str) -> None:
        (self.local_root / key).unlink(missing_ok=True)


class FolderLock(WriterLock):
    """``with FolderLock(folder, what="pretraining run"):`` one writer of a local folder.

    The store's design (pid, host, start time; a dead pid on this host is stale and taken over,
    with :attr:`note` saying so) on a ``writer.lock`` file inside ``folder`` (created if
    needed)."""

    def __init__(self, folder: str | os.PathLike, *, what: str = "run",
                 lock_name: str = "writer.lock") -> None:
        path = Path(folder)
        super().__init__(_FolderIO(path), str(path), what=what,  # type: ignore[arg-type]
                         lock_name=lock_name)

    def _create(self) -> bool:
        root = Path(self.url)
        root.mkdir(parents=True, exist_ok=True)
        return _create_exclusive(root / self.lock_name, self._mine())

    def _created(self) -> None:
        pass


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` (synced) unless it exists: False when it does. The
    exclusive create is what makes one writer win a race on a local file system."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return True
