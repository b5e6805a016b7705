"""Whole-object access to a store: the one file of biosig-prep that touches zarr's internals.

Local stores are read and written with plain file calls (write to a temporary name, then
rename, as zarr's LocalStore does). Other stores (any fsspec URL) go through zarr's async store
API, driven by zarr's own event loop (``zarr.core.sync``, not public API). Should those internals
move in a later zarr, :class:`RawIO` falls back to fsspec's public file-system API on the same URL
(tested by forcing it: ``RawIO(store, internals=False)``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import zarr
from zarr.storage import FsspecStore, LocalStore

if TYPE_CHECKING:
    import zarr.abc.store

try:  # zarr internals: the event loop and the buffer prototype of its store API
    from zarr.abc.store import RangeByteRequest
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    HAVE_INTERNALS = True
except ImportError:  # pragma: no cover - exercised through RawIO(internals=False)
    HAVE_INTERNALS = False

__all__ = ["RawIO", "open_raw_store", "quiet", "HAVE_INTERNALS"]


_QUIET = threading.RLock()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence two zarr warnings about things the layout relies on on purpose: variable-length
    strings (records/) and the numcodecs fixed-scale codec, neither in the v3 core spec yet.

    ``warnings.catch_warnings`` swaps a process-wide filter list, so two threads inside it at
    once restore each other's state; the lock keeps one thread at a time in here (reader
    threads open their stores concurrently)."""
    with _QUIET, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr")
        try:
            from zarr.core.dtype.common import UnstableSpecificationWarning

            warnings.filterwarnings("ignore", category=UnstableSpecificationWarning)
        except ImportError:  # pragma: no cover - older zarr
            pass
        yield


def open_raw_store(url: str | os.PathLike, storage_options: dict | None = None, *,
                   read_only: bool = False) -> zarr.abc.store.Store:
    """The zarr Store for a local path, a ``file://`` URL or any fsspec URL (``s3://``,
    ``memory://``, ...). ``storage_options`` go to fsspec."""
    text = os.fspath(url)
    if text.startswith("file://"):
        return LocalStore(text[len("file://"):], read_only=read_only)
    if "://" in text or "::" in text:
        return FsspecStore.from_url(text, storage_options=storage_options or {},
                                    read_only=read_only)
    return LocalStore(text, read_only=read_only)


class _FsspecIO:
    """The fallback for non-local stores: fsspec's synchronous API on the store's URL."""

    def __init__(self, url: str, storage_options: dict | None) -> None:
        import fsspec

        self.fs, base = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self.base = base.rstrip("/")

    def path(self, key: str) -> str:
        return f"{self.base}/{key}" if key else self.base

    def put(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self.path(key), data)

    def get(self, key: str, start: int | None, stop: int | None) -> bytes | None:
        try:
            if start is None:
                return self.fs.cat_file(self.path(key))
            return self.fs.cat_file(self.path(key), start=int(start), end=int(cast(int, stop)))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def list(self, prefix: str) -> list[str]:
        try:
            found = self.fs.find(self.path(prefix.rstrip("/")))
        except FileNotFoundError:
            return []
        base = self.fs._strip_protocol(self.base).rstrip("/") + "/"
        return sorted(p[p.index(base) + len(base):] for p in found if base in p)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(key))

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list(prefix):
            self.delete(key)


class RawIO:
    """Whole-object access to a store: staging files, markers and chunk/shard objects.

    internals : use zarr's store API for non-local stores (default when available); False
        uses fsspec's public API instead (the fallback).
    """

    def __init__(self, store: zarr.abc.store.Store, *, internals: bool | None = None,
                 url: str | None = None, storage_options: dict | None = None) -> None:
        self.store = store
        self._root = Path(store.root) if isinstance(store, LocalStore) else None
        use = HAVE_INTERNALS if internals is None else (internals and HAVE_INTERNALS)
        self._fs = None
        if self._root is None and not use:
            if url is None:
                raise TypeError("the fsspec fallback needs the store's URL")
            self._fs = _FsspecIO(url, storage_options)
        self._proto = default_buffer_prototype() if use else None

    @classmethod
    def open(cls, url: str | os.PathLike, storage_options: dict | None = None, *,
             read_only: bool = False, internals: bool | None = None) -> RawIO:
        text = os.fspath(url)
        return cls(open_raw_store(text, storage_options, read_only=read_only),
                   internals=internals, url=text, storage_options=storage_options)

    @property
    def local_root(self) -> Path | None:
        """The folder of a local store (None for other stores)."""
        return self._root

    def put(self, key: str, data: bytes | bytearray | memoryview | Sequence[Any]) -> None:
        """Write one object; ``data`` is bytes-like or a list of bytes-like pieces."""
        pieces: Sequence[Any] = data if isinstance(data, (list, tuple)) else [data]
        if self._root is not None:
            path = self._root / key
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
            try:
                # the folder is made only when it is missing (a mkdir per put cost 11 % of
                # convert's time)
                try:
                    f = open(tmp, "wb")
                except FileNotFoundError:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    f = open(tmp, "wb")
                with f:
                    for piece in pieces:
                        f.write(piece)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return
        blob = b"".join(bytes(p) for p in pieces)
        if self._fs is not None:
            self._fs.put(key, blob)
            return
        assert self._proto is not None  # neither local nor fsspec: zarr's store API is in use
        sync(self.store.set(key, self._proto.buffer.from_bytes(blob)))

    def get(self, key: str, start: int | None = None, stop: int | None = None) -> bytes | None:
        """Bytes of ``key`` (``[start, stop)`` if given), None if it does not exist."""
        if self._root is not None:
            try:
                with open(self._root / key, "rb") as f:
                    if start is None:
                        return f.read()
                    f.seek(int(start))
                    return f.read(int(cast(int, stop)) - int(start))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
        if self._fs is not None:
            return self._fs.get(key, start, stop)
        assert self._proto is not None  # neither local nor fsspec: zarr's store API is in use
        rng = None if start is None else RangeByteRequest(int(start), int(cast(int, stop)))
        buf = sync(self.store.get(key, prototype=self._proto, byte_range=rng))
        return None if buf is None else buf.to_bytes()

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Whole objects, all requested at once on object storage (in order; None = missing)."""
        if self._root is not None or self._fs is not None:
            return [self.get(k) for k in keys]
        import asyncio

        proto = self._proto
        assert proto is not None  # neither local nor fsspec: zarr's store API is in use

        async def get_all():
            return await asyncio.gather(*(self.store.get(k, prototype=proto)
                                          for k in keys))

        return [None if b is None else b.to_bytes() for b in sync(get_all())]

    def exists(self, key: str) -> bool:
        if self._root is not None:
            return (self._root / key).is_file()
        if self._fs is not None:
            return self._fs.fs.isfile(self._fs.path(key))
        return bool(sync(self.store.exists(key)))

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a folder-like prefix such as ``"_convert/"``)."""
        if self._root is not None:
            base = self._root / prefix.rstrip("/")
            if not base.is_dir():
                return []
            return sorted(p.relative_to(self._root).as_posix() for p in base.rglob("*")
                          if p.is_file() and not p.name.endswith(".partial"))
        if self._fs is not None:
            return self._fs.list(prefix)

        async def collect() -> list[str]:
            return [k async for k in self.store.list_prefix(prefix)]

        return sorted(sync(collect()))

    def is_empty(self, ignore: Sequence[str] = ()) -> bool:
        """Whether the store holds no object (besides those named in ``ignore``)."""
        if self._root is not None:
            return not self._root.exists() or not any(
                p.name not in ignore for p in self._root.iterdir())
        return not [k for k in self.list("") if k.split("/")[0] not in ignore]

    def delete(self, key: str) -> None:
        if self._root is not None:
            (self._root / key).unlink(missing_ok=True)
        elif self._fs is not None:
            self._fs.delete(key)
        else:
            sync(self.store.delete(key))

    def delete_prefix(self, prefix: str, keep: Sequence[str] = ()) -> None:
        """Delete everything under ``prefix``. ``""`` empties the store (but the top-level
        names in ``keep``) and never removes its root folder itself (it may be a mount
        point, or someone else's directory)."""
        if not prefix.strip("/") and keep and self._root is None:
            for key in self.list(""):
                if key.split("/")[0] not in keep:
                    self.delete(key)
            return
        if self._root is not None:
            base = self._root / prefix.rstrip("/")
            if base == self._root:
                for child in list(self._root.iterdir()) if self._root.is_dir() else []:
                    if child.name in keep:
                        continue
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
                return
            shutil.rmtree(base, ignore_errors=True)
        elif self._fs is not None:
            self._fs.delete_prefix(prefix)
        else:
            sync(self.store.delete_dir(prefix.rstrip("/")))

    def size(self, prefix: str = "") -> int:
        """Bytes stored under ``prefix`` (the whole store for ``""``)."""
        if self._root is not None:
            base = self._root / prefix
            return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
        if self._fs is not None:
            return sum(self._fs.fs.size(self._fs.path(k)) for k in self._fs.list(prefix))
        return int(sync(self.store.getsize_prefix(prefix)))
