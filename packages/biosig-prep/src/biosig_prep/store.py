"""The Zarr v3 store that ``biosig-prep convert`` writes and every other package reads.

Layout (schema 1)::

    <root>/                      attrs: schema, version, config, complete, summary, conversion
        records/                 one row per source record, in plan order
            id source path status metadata   (variable-length strings; metadata is JSON text)
            fs (float64)  n_samples (int64)
        ecg@500/  eeg@200/ ...   one group per stream (a modality at a rate)
            windows        (N, C, n_patches, patch_size) float32, chunks (1, C, P, S) inside
                           shards (K, C, P, S); Blosc-LZ4 with byte shuffle per chunk
            record         (N,) int64, row of ``records/`` the window comes from
            start          (N,) int64, first sample of the window at the stream's rate
            channel_mask   (N, C) bool, False where a channel was missing and zero-filled
            attrs: modality, fs, channels, units, n_patches, patch_size
        labels/                  only for paired, labelled data (DREAMER): (N,) int64 arrays
                                 (valence, arousal, dominance, subject, clip), aligned with
                                 every stream

``complete`` is written last; :func:`open_store` refuses a store without it unless asked.

Reading: :func:`open_store` returns a :class:`Store`; ``store.stream("ecg@500")`` a
:class:`Stream` whose ``read(start, stop)`` gives numpy arrays.

Writing (used by :mod:`biosig_prep.convert`): :class:`StoreWriter` owns the metadata (groups,
array shapes, attributes, the records table) and is used by one process only; workers write
whole chunk objects through :class:`RawIO` (windows as complete shards assembled by
:class:`WindowCodec`, the small per-window arrays as whole uncompressed chunks), so no two
writers ever touch the same object and no worker rewrites metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import RangeByteRequest
from zarr.codecs import BloscCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

__all__ = [
    "SCHEMA_VERSION",
    "StoreError",
    "Store",
    "Stream",
    "open_store",
    "StreamSpec",
    "WindowCodec",
    "RawIO",
    "StoreWriter",
    "open_raw_store",
    "chunk_key",
    "RECORD_COLUMNS",
    "STAGING",
]

SCHEMA_VERSION = 1
RECORDS = "records"
LABELS = "labels"
STAGING = "_convert"  # private group of an unfinished conversion, removed when it completes
RECORD_COLUMNS: dict[str, str] = {
    "id": "str", "source": "str", "path": "str", "status": "str", "metadata": "str",
    "fs": "float64", "n_samples": "int64",
}
RECORDS_CHUNK = 4096
LABELS_CHUNK = 4096
_STREAM_NAME = re.compile(r"^[a-z][a-z0-9_]*@\d+$")
_EMPTY = np.uint64(2**64 - 1)  # shard index entry of a chunk that is not stored


class StoreError(ValueError):
    """A URL that is not a readable biosig-prep store (message names the URL and the fix)."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Zarr warns that variable-length strings are not yet in the v3 spec; we rely on them."""
    with warnings.catch_warnings():
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


def chunk_key(array_path: str, coords: Sequence[int]) -> str:
    """Key of one chunk (or shard) object under the default v3 chunk key encoding."""
    return f"{array_path}/c/" + "/".join(str(int(c)) for c in coords)


class RawIO:
    """Whole-object access to a store: staging files, markers and chunk/shard objects.

    Local stores are written with plain file calls (write to a temporary name, then rename, as
    zarr's LocalStore does); other stores go through zarr's store API.
    """

    def __init__(self, store: zarr.abc.store.Store) -> None:
        self.store = store
        self._proto = default_buffer_prototype()
        self._root = Path(store.root) if isinstance(store, LocalStore) else None

    @classmethod
    def open(cls, url: str, storage_options: dict | None = None) -> RawIO:
        return cls(open_raw_store(url, storage_options))

    def put(self, key: str, data: bytes | bytearray | memoryview | Sequence[Any]) -> None:
        """Write one object; ``data`` is bytes-like or a list of bytes-like pieces."""
        pieces = data if isinstance(data, (list, tuple)) else [data]
        if self._root is not None:
            path = self._root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
            try:
                with open(tmp, "wb") as f:
                    for piece in pieces:
                        f.write(piece)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return
        sync(self.store.set(key, self._proto.buffer.from_bytes(b"".join(pieces))))

    def get(self, key: str, start: int | None = None, stop: int | None = None) -> bytes | None:
        """Bytes of ``key`` (``[start, stop)`` if given), None if it does not exist."""
        if self._root is not None:
            try:
                with open(self._root / key, "rb") as f:
                    if start is None:
                        return f.read()
                    f.seek(int(start))
                    return f.read(int(stop) - int(start))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
        rng = None if start is None else RangeByteRequest(int(start), int(stop))
        buf = sync(self.store.get(key, prototype=self._proto, byte_range=rng))
        return None if buf is None else buf.to_bytes()

    def exists(self, key: str) -> bool:
        if self._root is not None:
            return (self._root / key).is_file()
        return bool(sync(self.store.exists(key)))

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a folder-like prefix such as ``"_convert/"``)."""
        if self._root is not None:
            base = self._root / prefix.rstrip("/")
            if not base.is_dir():
                return []
            return sorted(p.relative_to(self._root).as_posix() for p in base.rglob("*")
                          if p.is_file() and not p.name.endswith(".partial"))

        async def collect() -> list[str]:
            return [k async for k in self.store.list_prefix(prefix)]

        return sorted(sync(collect()))

    def is_empty(self) -> bool:
        if self._root is not None:
            return not self._root.exists() or not any(self._root.iterdir())
        return not self.list("")

    def delete(self, key: str) -> None:
        if self._root is not None:
            (self._root / key).unlink(missing_ok=True)
            return
        sync(self.store.delete(key))

    def delete_prefix(self, prefix: str) -> None:
        if self._root is not None:
            shutil.rmtree(self._root / prefix.rstrip("/"), ignore_errors=True)
            return
        sync(self.store.delete_dir(prefix.rstrip("/")))

    def size(self, prefix: str = "") -> int:
        """Bytes stored under ``prefix`` (the whole store for ``""``)."""
        if self._root is not None:
            base = self._root / prefix
            return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
        return int(sync(self.store.getsize_prefix(prefix)))


@dataclass(frozen=True)
class WindowCodec:
    """How the windows of a stream are encoded: one window per chunk, Blosc with shuffle.

    :meth:`encode` gives the bytes zarr itself would store for one window chunk (bytes codec,
    little-endian, then Blosc), and :meth:`shard` the bytes of one shard object
    (``sharding_indexed``: chunks back to back, then the (offset, nbytes) index with a CRC32C,
    index at the end), so a worker can write a complete shard without going through zarr.
    """

    cname: str = "lz4"
    clevel: int = 5
    shuffle: str = "shuffle"

    def zarr_codec(self) -> BloscCodec:
        return BloscCodec(cname=self.cname, clevel=self.clevel, shuffle=self.shuffle,
                          typesize=4, blocksize=0)

    def _blosc(self):
        blosc = getattr(self, "_blosc_cache", None)
        if blosc is None:
            from numcodecs import Blosc

            shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[self.shuffle]
            blosc = Blosc(cname=self.cname, clevel=self.clevel, shuffle=shuffle, blocksize=0,
                          typesize=4)
            object.__setattr__(self, "_blosc_cache", blosc)
        return blosc

    def encode(self, window: np.ndarray) -> bytes:
        """Encoded bytes of one window, shape (C, P, S) (converted to little-endian float32)."""
        w = np.ascontiguousarray(window, dtype="<f4")
        return self._blosc().encode(w.reshape(-1).view(np.uint8))

    @staticmethod
    def shard(chunks: Sequence[bytes | memoryview], n_slots: int) -> list[bytes | memoryview]:
        """One shard object holding ``chunks`` in slots ``0..len(chunks)-1`` of ``n_slots``, as
        a list of buffers to write one after the other (join them for the bytes)."""
        import google_crc32c

        if len(chunks) > n_slots:
            raise ValueError(f"{len(chunks)} chunks do not fit a shard of {n_slots}")
        index = np.full((n_slots, 2), _EMPTY, dtype="<u8")
        sizes = np.fromiter((len(c) for c in chunks), dtype=np.uint64, count=len(chunks))
        offsets = np.zeros(len(chunks), dtype=np.uint64)
        if len(chunks) > 1:
            np.cumsum(sizes[:-1], out=offsets[1:])
        index[: len(chunks), 0] = offsets
        index[: len(chunks), 1] = sizes
        index_bytes = index.tobytes()
        crc = np.array([google_crc32c.value(index_bytes)], dtype="<u4").tobytes()
        return [*chunks, index_bytes + crc]


@dataclass(frozen=True)
class StreamSpec:
    """Everything fixed about a stream before its first window is written (picklable).

    shard_size : windows per shard (K); block_size : windows per write task, a multiple of K,
        also the chunk length of ``record``, ``start`` and ``channel_mask``.
    """

    name: str
    modality: str
    fs: int
    channels: tuple[str, ...]
    units: str
    n_patches: int
    patch_size: int
    shard_size: int
    block_size: int

    @property
    def window_shape(self) -> tuple[int, int, int]:
        return (len(self.channels), self.n_patches, self.patch_size)

    @property
    def window_bytes(self) -> int:
        return 4 * int(np.prod(self.window_shape))

    def shard_key(self, shard: int) -> str:
        return chunk_key(f"{self.name}/windows", (shard, 0, 0, 0))

    def small_keys(self, block: int) -> dict[str, str]:
        return {"record": chunk_key(f"{self.name}/record", (block,)),
                "start": chunk_key(f"{self.name}/start", (block,)),
                "channel_mask": chunk_key(f"{self.name}/channel_mask", (block, 0))}


def auto_shard_size(window_bytes: int, target_bytes: int = 4 << 20) -> int:
    """Largest power of two of windows whose shard stays within ``target_bytes`` (at least 1)."""
    n = max(1, target_bytes // max(1, window_bytes))
    return int(min(4096, 1 << (int(n).bit_length() - 1)))


def auto_block_size(shard_size: int, window_bytes: int, target_bytes: int = 16 << 20) -> int:
    """Windows per write task: whole shards, about ``target_bytes`` of raw windows."""
    shards = max(1, target_bytes // max(1, shard_size * window_bytes))
    return int(shard_size * (1 << (int(shards).bit_length() - 1)))


def small_chunk_bytes(values: np.ndarray, length: int, dtype: str) -> bytes:
    """Raw bytes of one uncompressed chunk of ``length`` rows, zero-padded past the data."""
    values = np.asarray(values, dtype=dtype)
    if values.shape[0] < length:
        pad = np.zeros((length - values.shape[0],) + values.shape[1:], dtype=dtype)
        values = np.concatenate([values, pad])
    return np.ascontiguousarray(values).tobytes()


class StoreWriter:
    """The single writer of a store's metadata: groups, array shapes, attributes, records."""

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.url = str(url)
        self.storage_options = storage_options
        self.raw = RawIO(open_raw_store(url, storage_options))
        self._group: zarr.Group | None = None
        self._arrays: dict[str, zarr.Array] = {}

    # -- the root --------------------------------------------------------------------------
    def read_attrs(self) -> dict[str, Any] | None:
        """Root attributes if a Zarr group exists at the URL, else None."""
        data = self.raw.get("zarr.json")
        if data is None:
            return None
        try:
            meta = json.loads(data)
        except ValueError:
            return {}
        return dict(meta.get("attributes") or {}) if meta.get("node_type") == "group" else {}

    def is_empty(self) -> bool:
        return self.raw.is_empty()

    def create(self, attrs: dict[str, Any]) -> None:
        """Create the root group afresh (everything under the URL is deleted first)."""
        with _quiet():
            self._group = zarr.open_group(store=self.raw.store, mode="w", attributes=attrs)
        self._arrays.clear()

    def open(self) -> zarr.Group:
        if self._group is None:
            with _quiet():
                self._group = zarr.open_group(store=self.raw.store, mode="r+")
        return self._group

    def update_attrs(self, **attrs: Any) -> None:
        self.open().attrs.update(attrs)

    def ensure_group(self, name: str, attrs: dict[str, Any] | None = None) -> zarr.Group:
        group = self.open()
        with _quiet():
            if name in group:
                return group[name]
            return group.create_group(name, attributes=attrs or {})

    # -- arrays ----------------------------------------------------------------------------
    def _array(self, path: str) -> zarr.Array:
        arr = self._arrays.get(path)
        if arr is None:
            with _quiet():
                arr = self.open()[path]
            self._arrays[path] = arr
        return arr

    def _create(self, group: zarr.Group, name: str, **kw: Any) -> zarr.Array:
        with _quiet():
            if name in group:
                arr = group[name]
            else:
                arr = group.create_array(name, **kw)
        self._arrays[f"{group.path}/{name}".lstrip("/")] = arr
        return arr

    def ensure_stream(self, spec: StreamSpec, codec: WindowCodec) -> None:
        """Create the stream's group and arrays (empty) unless they exist; check they match."""
        group = self.ensure_group(spec.name, {
            "modality": spec.modality, "fs": int(spec.fs), "channels": list(spec.channels),
            "units": spec.units, "n_patches": spec.n_patches, "patch_size": spec.patch_size})
        c, p, s = spec.window_shape
        k, b = spec.shard_size, spec.block_size
        windows = self._create(group, "windows", shape=(0, c, p, s), dtype="float32",
                               chunks=(1, c, p, s), shards=(k, c, p, s),
                               compressors=[codec.zarr_codec()], fill_value=0.0)
        if tuple(windows.shards or ()) != (k, c, p, s):
            raise StoreError(f"{self.url}: stream {spec.name} exists with shards "
                             f"{windows.shards}, expected {(k, c, p, s)}")
        self._create(group, "record", shape=(0,), dtype="int64", chunks=(b,), compressors=None,
                     fill_value=0)
        self._create(group, "start", shape=(0,), dtype="int64", chunks=(b,), compressors=None,
                     fill_value=0)
        self._create(group, "channel_mask", shape=(0, c), dtype="bool", chunks=(b, c),
                     compressors=None, fill_value=False)

    def set_stream_length(self, name: str, n: int) -> None:
        """Set the length of the stream's arrays to ``n`` windows (metadata only: the chunk
        objects are written by the workers, before or after)."""
        for arr_name in ("windows", "record", "start", "channel_mask"):
            arr = self._array(f"{name}/{arr_name}")
            if arr.shape[0] != n:
                arr.resize((n,) + tuple(arr.shape[1:]))

    def ensure_labels(self, keys: Iterable[str], chunk: int = LABELS_CHUNK) -> None:
        group = self.ensure_group(LABELS)
        for key in keys:
            self._create(group, key, shape=(0,), dtype="int64", chunks=(chunk,),
                         compressors=None, fill_value=0)

    def set_labels_length(self, keys: Iterable[str], n: int) -> None:
        for key in keys:
            arr = self._array(f"{LABELS}/{key}")
            if arr.shape[0] != n:
                arr.resize((n,))

    def ensure_records(self) -> None:
        group = self.ensure_group(RECORDS)
        for col, dtype in RECORD_COLUMNS.items():
            kw: dict[str, Any] = {"fill_value": ""} if dtype == "str" else {"fill_value": 0}
            self._create(group, col, shape=(0,), dtype=str if dtype == "str" else dtype,
                         chunks=(RECORDS_CHUNK,), **kw)

    def write_records(self, first: int, rows: Sequence[dict[str, Any]]) -> None:
        """Write rows ``first .. first+len(rows)`` of ``records/`` (growing it as needed)."""
        if not rows:
            return
        stop = first + len(rows)
        for col, dtype in RECORD_COLUMNS.items():
            arr = self._array(f"{RECORDS}/{col}")
            if arr.shape[0] < stop:
                arr.resize((stop,))
            if dtype == "str":
                values = np.array([str(r[col]) for r in rows], dtype=object)
            else:
                values = np.array([r[col] for r in rows], dtype=dtype)
            with _quiet():
                arr[first:stop] = values


class Stream:
    """One stream of a store: windows of one modality at one rate, with their bookkeeping."""

    def __init__(self, store: Store, group: zarr.Group) -> None:
        self._store = store
        self._group = group
        attrs = dict(group.attrs)
        self.name: str = group.basename
        self.modality: str = str(attrs["modality"])
        self.fs: int = int(attrs["fs"])
        self.channels: list[str] = list(attrs["channels"])
        self.units: str = str(attrs["units"])
        self.windows: zarr.Array = group["windows"]
        self.record: zarr.Array = group["record"]
        self.start: zarr.Array = group["start"]
        self.channel_mask: zarr.Array = group["channel_mask"]

    @property
    def shard_size(self) -> int:
        """Windows per shard (K); reads of whole, aligned shards are the cheapest."""
        shards = self.windows.shards
        return int(shards[0]) if shards else int(self.windows.chunks[0])

    @property
    def window_shape(self) -> tuple[int, ...]:
        return tuple(self.windows.shape[1:])

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    def read(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Windows ``start..stop`` and their bookkeeping: windows (n, C, P, S) float32, record
        (n,) int64, start (n,) int64, channel_mask (n, C) bool."""
        n = len(self)
        stop = n if stop is None else min(int(stop), n)
        start = max(0, int(start))
        if start > stop:
            raise IndexError(f"{self.name}: start {start} is after stop {stop} (length {n})")
        return {"windows": self.windows[start:stop], "record": self.record[start:stop],
                "start": self.start[start:stop], "channel_mask": self.channel_mask[start:stop]}

    def __repr__(self) -> str:
        return (f"Stream({self.name!r}, n={len(self)}, channels={len(self.channels)}, "
                f"window={self.window_shape}, units={self.units!r})")


class Store:
    """A biosig-prep store opened for reading (see :func:`open_store`)."""

    def __init__(self, url: str, group: zarr.Group) -> None:
        self.url = url
        self._group = group
        self.attrs: dict[str, Any] = dict(group.attrs)
        self._streams: dict[str, Stream] = {}

    @property
    def schema(self) -> int:
        return int(self.attrs["schema"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.attrs.get("config") or {})

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.attrs.get("summary") or {})

    @property
    def complete(self) -> bool:
        return bool(self.attrs.get("complete", False))

    @property
    def version(self) -> str:
        return str(self.attrs.get("version", ""))

    @property
    def stream_names(self) -> list[str]:
        """Stream group names, by modality then rate (``["ecg@100", "ecg@500", "eeg@200"]``)."""
        names = [name for name in self._group.group_keys() if _STREAM_NAME.match(name)]
        return sorted(names, key=lambda n: (n.split("@")[0], int(n.split("@")[1])))

    def stream(self, name: str) -> Stream:
        if name not in self._streams:
            if name not in self.stream_names:
                available = ", ".join(self.stream_names) or "none"
                raise KeyError(f"{self.url} has no stream {name!r} (available: {available})")
            self._streams[name] = Stream(self, self._group[name])
        return self._streams[name]

    def records(self) -> dict[str, np.ndarray]:
        """The ``records/`` table as numpy arrays (strings as ``str`` arrays)."""
        if RECORDS not in self._group:
            return {col: np.array([], dtype=str if dt == "str" else dt)
                    for col, dt in RECORD_COLUMNS.items()}
        group = self._group[RECORDS]
        out: dict[str, np.ndarray] = {}
        for col, dtype in RECORD_COLUMNS.items():
            values = group[col][:]
            out[col] = (np.asarray(values, dtype=object).astype(str) if dtype == "str"
                        else np.asarray(values))
        return out

    def labels(self) -> dict[str, np.ndarray] | None:
        """The ``labels/`` arrays (aligned with every stream), or None for unlabelled data."""
        if LABELS not in self._group:
            return None
        group = self._group[LABELS]
        return {key: np.asarray(group[key][:]) for key in sorted(group.array_keys())}

    def __repr__(self) -> str:
        state = "complete" if self.complete else "INCOMPLETE"
        return f"Store({self.url!r}, {state}, streams={self.stream_names})"


def open_store(url: str | os.PathLike, *, allow_incomplete: bool = False,
               storage_options: dict | None = None) -> Store:
    """Open a store for reading.

    url : a local path or any fsspec URL; storage_options go to fsspec.
    allow_incomplete : open a store whose conversion has not finished (its arrays may be
        shorter than the records say, and ``summary`` is empty).

    Raises :class:`StoreError` naming the URL if there is no Zarr group there, it is not a
    biosig-prep store, its schema is not one this version reads, or it is incomplete.
    """
    text = os.fspath(url)
    try:
        raw = open_raw_store(text, storage_options, read_only=True)
        with _quiet():
            group = zarr.open_group(store=raw, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError,
            KeyError, ValueError) as exc:
        raise StoreError(f"{text}: not a biosig-prep store (no Zarr group there: {exc})") from exc
    attrs = dict(group.attrs)
    if "schema" not in attrs:
        raise StoreError(f"{text}: not a biosig-prep store (the Zarr group has no 'schema' "
                         "attribute; was it written by `biosig-prep convert`?)")
    if attrs["schema"] != SCHEMA_VERSION:
        raise StoreError(f"{text}: store schema {attrs['schema']!r} is not supported (this "
                         f"version of biosig-prep reads schema {SCHEMA_VERSION})")
    if not attrs.get("complete", False) and not allow_incomplete:
        raise StoreError(f"{text}: the store is incomplete (its conversion has not finished or "
                         "was interrupted; rerun the same `biosig-prep convert` command to resume "
                         "it); pass allow_incomplete=True to read it anyway")
    return Store(text, group)
