"""One writer at a time: a lock object at the store's root that survives ``kill -9``.

The lock holds its owner's pid, host and start time. A second writer is refused with those
facts. A lock whose owner is gone (same host, no such process: the run was killed) is *stale*:
it is reported and taken over, so a killed run never blocks its own resume. A lock of another
host cannot be checked from here; the message says how to proceed if that run is known to be
dead (remove the lock object only: the store itself is left as it is).

Local stores create the lock atomically (``O_CREAT | O_EXCL``); other stores check, write, and
read back (best effort: object stores have no exclusive create).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass

from biosig_prep.store.io import RawIO
from biosig_prep.store.layout import LOCK, META

_META_GROUP = json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {
    "note": "biosig-prep's own records of this store (sources.json; writer.lock while a "
            "conversion runs)"}}).encode()

__all__ = ["WriterLock", "LockedError"]


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

    def _mine(self) -> bytes:
        self.token = uuid.uuid4().hex
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "token": self.token}).encode()

    def _holder(self) -> dict | None:
        data = self.raw.get(LOCK)
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
        try:
            fd = os.open(root / LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(self._mine())
            f.flush()
            os.fsync(f.fileno())
        return True

    def acquire(self) -> None:
        for _ in range(3):
            if self._create():
                if not self.raw.exists(f"{META}/zarr.json"):  # a group, so zarr lists it quietly
                    self.raw.put(f"{META}/zarr.json", _META_GROUP)
                return
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile: try again
            pid, host = holder.get("pid"), holder.get("host")
            who = f"pid {pid} on host {host}, since {holder.get('started', '?')}"
            if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
                self.note = (f"{self.url}: took over a stale writer lock ({who}: that process "
                             "no longer exists, the run was killed)")
                self.raw.delete(LOCK)
                continue
            if host == socket.gethostname() and pid == os.getpid():
                raise LockedError(f"{self.url} is already being written by this process")
            raise LockedError(
                f"{self.url} is being written by another conversion ({who}); wait for it to "
                "finish, or write to another destination. If that run is known to be dead "
                f"(another host), remove only its lock object {LOCK!r} and rerun")
        raise LockedError(f"{self.url}: could not take the writer lock {LOCK!r}")

    def release(self) -> None:
        holder = self._holder()
        if holder is not None and holder.get("token") == getattr(self, "token", None):
            self.raw.delete(LOCK)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
