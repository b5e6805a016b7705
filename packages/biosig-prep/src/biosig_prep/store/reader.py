"""Reading a store: :func:`open_store` -> :class:`Store` -> :class:`Stream`, and
:class:`ShardReader` for fast reads of whole shards (the loaders of criss-cross and
fusion-emotion read through these, nothing else)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import zarr

from biosig_prep.store.codec import ShardDecoder
from biosig_prep.store.io import RawIO, open_raw_store, quiet
from biosig_prep.store.layout import (
    LABELS,
    MANIFEST,
    RECORD_COLUMNS,
    RECORDS,
    SCHEMA_VERSION,
    chunk_key,
    is_stream_name,
)

__all__ = ["StoreError", "Store", "Stream", "open_store", "ShardReader", "StoreChangedError"]


class StoreError(ValueError):
    """A URL that is not a readable biosig-prep store (message names the URL and the fix)."""


class StoreChangedError(StoreError):
    """The store was replaced or rewritten while it was open (its generation changed)."""


class ShardReader:
    """Reads rows of a stream's ``windows`` whole shards at a time, as float32 physical values.

    ``read(start, stop)`` returns rows ``start:stop``; ``take(rows)`` arbitrary rows in the
    given order; ``read_rows`` rows into given flat uint8 views of float32 buffers, fetching
    every shard they touch once (all at once on object storage). Uses :class:`ShardDecoder`
    where the layout allows (int16 windows decoded straight into the destination), zarr
    slicing otherwise (``fast=False`` forces it; same values).

    array : the zarr array (``Stream.windows``). io / path : how to reach its objects (default:
        the array's own store and path). where : names the stream in messages.
    """

    def __init__(self, array: Any, *, fast: bool = True, io: RawIO | None = None,
                 path: str | None = None, where: str | None = None,
                 check: Any = None, required: frozenset[int] = frozenset()) -> None:
        self.array = array
        shards = getattr(array, "shards", None)
        self.shard_size = int(shards[0] if shards is not None else array.chunks[0])
        self.n = int(array.shape[0])
        self.row_shape = tuple(int(d) for d in array.shape[1:])
        self.dtype = np.dtype(np.float32)
        self.path = array.path if path is None else path
        self.where = where or f"array {self.path}"
        self.check = check  # called before each fetch (the store's generation check)
        self.required = required  # shards the store's manifest says were written
        self.decoder: ShardDecoder | None = None
        self.io = io
        if fast:
            if self.io is None:
                self.io = RawIO(array.store)
            meta = self.io.get(f"{self.path}/zarr.json" if self.path else "zarr.json")
            if meta is not None:
                self.decoder = ShardDecoder.from_metadata(json.loads(meta), self.where)

    @property
    def fast(self) -> bool:
        return self.decoder is not None

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.row_shape), dtype=np.float32)
        self.read_ranges([(start, stop)], [out])
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Arbitrary rows, in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.row_shape), dtype=np.float32)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n):
            raise IndexError(f"rows out of range for {self.n} windows")
        if not len(rows):
            return out
        flat = out.reshape(len(rows), -1).view(np.uint8)
        self.read_rows(rows.tolist(), list(flat))
        return out

    def read_ranges(self, ranges: Sequence[tuple[int, int]], outs: Sequence[np.ndarray]) -> None:
        """Rows ``start:stop`` of each range into the matching ``outs`` buffer."""
        rows: list[int] = []
        dests: list[np.ndarray] = []
        for (start, stop), out in zip(ranges, outs, strict=True):
            if not 0 <= start <= stop <= self.n:
                raise IndexError(f"rows {start}:{stop} out of range for {self.n} windows")
            if stop == start:  # an empty range (an empty stream) reads nothing
                continue
            rows += range(start, stop)
            dests += list(out.reshape(stop - start, -1).view(np.uint8))
        self.read_rows(rows, dests)

    def shard_keys(self, shards: Sequence[int]) -> list[str]:
        tail = (0,) * len(self.row_shape)
        return [chunk_key(self.path, (int(j), *tail)) for j in shards]

    def read_rows(self, rows: Sequence[int], dests: Sequence[np.ndarray | None]) -> None:
        """Row ``rows[i]`` into ``dests[i]``, a flat uint8 view of a (C, P, S) float32 buffer
        (None: skip). Every shard the rows touch is fetched once, all of them together."""
        k = self.shard_size
        by_shard: dict[int, tuple[list[int], list]] = {}
        for r, d in zip(rows, dests, strict=True):
            if d is None:
                continue
            local, ds = by_shard.setdefault(r // k, ([], []))
            local.append(r % k)
            ds.append(d)
        if not by_shard:
            return
        if self.check is not None:
            self.check()
        shards = sorted(by_shard)
        if self.decoder is None:
            for j in shards:
                local, ds = by_shard[j]
                lo, hi = min(local), max(local) + 1
                with quiet():
                    block = np.asarray(self.array[j * k + lo: j * k + hi], dtype=np.float32)
                for r, d in zip(local, ds, strict=True):
                    d.view(np.float32)[...] = block[r - lo].reshape(-1)
            if self.check is not None:
                self.check()
            return
        assert self.io is not None  # a decoder exists only for fast reads, which set io
        blobs = self.io.get_many(self.shard_keys(shards))
        for j, blob in zip(shards, blobs, strict=True):
            local, ds = by_shard[j]
            if blob is None and j in self.required:
                raise self.decoder._damaged(j, "the object is missing")
            raw = None if blob is None else np.frombuffer(blob, dtype=np.uint8)
            self.decoder.decode_rows(raw, local, ds, shard=j)
        if self.check is not None:  # what was read is from one conversion
            self.check()


class Stream:
    """One stream of a store: windows of one modality at one rate, with their bookkeeping."""

    def __init__(self, store: Store, group: zarr.Group) -> None:
        self._store = store
        self._group = group
        attrs: dict[str, Any] = dict(group.attrs)
        self.attrs = attrs
        self.name: str = group.basename
        self.modality: str = str(attrs["modality"])
        self.fs: int = int(attrs["fs"])
        self.channels: list[str] = list(attrs["channels"])
        self.units: str = str(attrs["units"])
        self.encoding: dict[str, Any] = dict(attrs.get("encoding") or {})
        self.tail: dict[str, Any] = dict(attrs.get("tail") or {})
        with quiet():
            self.windows = cast(zarr.Array, group["windows"])
            self.record = cast(zarr.Array, group["record"])
            self.start = cast(zarr.Array, group["start"])
            self.channel_mask = cast(zarr.Array, group["channel_mask"])
            self.patch_mask = (cast(zarr.Array, group["patch_mask"]) if "patch_mask" in group
                               else None)
        self._reader: ShardReader | None = None

    @property
    def shard_size(self) -> int:
        """Windows per shard (K); reads of whole, aligned shards are the cheapest."""
        shards = self.windows.shards
        return int(shards[0]) if shards else int(self.windows.chunks[0])

    @property
    def window_shape(self) -> tuple[int, ...]:
        return tuple(self.windows.shape[1:])

    @property
    def n_patches(self) -> int:
        return int(self.windows.shape[2])

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    def reader(self, *, fast: bool = True) -> ShardReader:
        """A :class:`ShardReader` of this stream's windows (checks the store's generation)."""
        if not fast:
            return ShardReader(self.windows, fast=False, where=self.where,
                               check=self._store.check)
        if self._reader is None:
            prefix = f"{self.name}/windows/c/"
            required = frozenset(int(k[len(prefix):].split("/")[0])
                                 for k in self._store.manifest() if k.startswith(prefix))
            self._reader = ShardReader(self.windows, io=self._store.raw,
                                       path=f"{self.name}/windows", where=self.where,
                                       check=self._store.check, required=required)
        return self._reader

    @property
    def where(self) -> str:
        return f"{self._store.url} stream {self.name}"

    @property
    def generation(self) -> str:
        """The generation of the store this stream belongs to (:attr:`Store.generation`)."""
        return self._store.generation

    def patch_masks(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """(n, P) bool: True where a patch holds real samples (all True for a store written
        before patch masks existed)."""
        stop = len(self) if stop is None else stop
        if self.patch_mask is None:
            return np.ones((max(0, stop - start), self.n_patches), dtype=bool)
        return np.asarray(self.patch_mask[start:stop], dtype=bool)

    def window_labels(self) -> dict[str, np.ndarray]:
        """Per-window labels of this stream, ``<stream>/labels/<name>``: name -> (N,) int64,
        aligned with the windows; a value is an index into :meth:`label_classes`, -1 where the
        window has no label. ``{}`` for a stream without labels (see
        :mod:`biosig_prep.datasets.keys`)."""
        if LABELS not in self._group:
            return {}
        with quiet():
            group = cast(zarr.Group, self._group[LABELS])
            return {key: np.asarray(cast(zarr.Array, group[key])[:], dtype=np.int64)
                    for key in sorted(group.array_keys())}

    def label_classes(self, name: str) -> list[str]:
        """The class names of the per-window label ``name`` (value i is ``classes[i]``)."""
        with quiet():
            group = self._group.get(LABELS)
            if group is None or name not in group:
                have = sorted(group.array_keys()) if group is not None else []
                raise KeyError(f"{self.where} has no window label {name!r} (available: "
                               f"{', '.join(have) or 'none'})")
            return [str(c) for c in group[name].attrs.get("classes", [])]

    def read(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Windows ``start..stop`` and their bookkeeping: windows (n, C, P, S) float32 in
        physical units, record (n,) int64, start (n,) int64, channel_mask (n, C) bool,
        patch_mask (n, P) bool."""
        n = len(self)
        stop = n if stop is None else min(int(stop), n)
        start = max(0, int(start))
        if start > stop:
            raise IndexError(f"{self.name}: start {start} is after stop {stop} (length {n})")
        windows = self.reader().read(start, stop)
        with quiet():
            out: dict[str, Any] = {"windows": windows, "record": self.record[start:stop],
                                   "start": self.start[start:stop],
                                   "channel_mask": self.channel_mask[start:stop],
                                   "patch_mask": self.patch_masks(start, stop)}
        self._store.check()
        return out

    def __repr__(self) -> str:
        return (f"Stream({self.name!r}, n={len(self)}, channels={len(self.channels)}, "
                f"window={self.window_shape}, units={self.units!r})")


class Store:
    """A biosig-prep store opened for reading (see :func:`open_store`)."""

    def __init__(self, url: str, group: zarr.Group, raw: RawIO) -> None:
        self.url = url
        self._group = group
        self.raw = raw
        self.attrs: dict[str, Any] = dict(group.attrs)
        self._streams: dict[str, Stream] = {}
        self._manifest: dict[str, list[int]] | None = None

    def manifest(self) -> dict[str, list[int]]:
        """``key -> [nbytes, crc32c]`` of every object the conversion wrote ({} if unknown)."""
        if self._manifest is None:
            data = self.raw.get(MANIFEST)
            self._manifest = json.loads(data) if data else {}
        return self._manifest

    @property
    def schema(self) -> int:
        return int(self.attrs["schema"])

    @property
    def generation(self) -> str:
        """Changes whenever a conversion (re)writes the store."""
        return str(self.attrs.get("generation", ""))

    def check(self) -> None:
        """Raise :class:`StoreChangedError` if the store was rewritten since it was opened."""
        data = self.raw.get("zarr.json")
        try:
            attrs = json.loads(data).get("attributes") or {} if data else {}
        except ValueError:
            attrs = {}
        if (data is None or str(attrs.get("generation", "")) != self.generation
                or not attrs.get("complete", False) and self.complete):
            raise StoreChangedError(
                f"{self.url}: the store was rewritten while it was open (generation "
                f"{self.generation or '?'} -> {attrs.get('generation', 'gone')}); windows read "
                "from it may mix two conversions: open it again")

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
        names = [name for name in self._group.group_keys() if is_stream_name(name)]
        return sorted(names, key=lambda n: (n.split("@")[0], int(n.split("@")[1])))

    def stream(self, name: str) -> Stream:
        if name not in self._streams:
            if name not in self.stream_names:
                available = ", ".join(self.stream_names) or "none"
                raise KeyError(f"{self.url} has no stream {name!r} (available: {available})")
            with quiet():
                self._streams[name] = Stream(self, cast(zarr.Group, self._group[name]))
        return self._streams[name]

    def records(self) -> dict[str, np.ndarray]:
        """The ``records/`` table as numpy arrays (strings as ``str`` arrays)."""
        if RECORDS not in self._group:
            return {col: np.array([], dtype=str if dt == "str" else dt)
                    for col, dt in RECORD_COLUMNS.items()}
        out: dict[str, np.ndarray] = {}
        with quiet():
            group = cast(zarr.Group, self._group[RECORDS])
            for col, dtype in RECORD_COLUMNS.items():
                values = cast(zarr.Array, group[col])[:]
                out[col] = (np.asarray(values, dtype=object).astype(str) if dtype == "str"
                            else np.asarray(values))
        return out

    def labels(self) -> dict[str, np.ndarray] | None:
        """The ``labels/`` arrays (aligned with every stream), or None for unlabelled data."""
        if LABELS not in self._group:
            return None
        with quiet():
            group = cast(zarr.Group, self._group[LABELS])
            return {key: np.asarray(cast(zarr.Array, group[key])[:])
                    for key in sorted(group.array_keys())}

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
    biosig-prep store, its schema is not one this version reads (with the fix), or it is
    incomplete.
    """
    text = os.fspath(url)
    try:
        store = open_raw_store(text, storage_options, read_only=True)
        with quiet():
            group = zarr.open_group(store=store, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError,
            KeyError, ValueError) as exc:
        raise StoreError(f"{text}: not a biosig-prep store (no Zarr group there: {exc})") from exc
    attrs = dict(group.attrs)
    if "schema" not in attrs:
        raise StoreError(f"{text}: not a biosig-prep store (the Zarr group has no 'schema' "
                         "attribute; was it written by `biosig-prep convert`?)")
    if attrs["schema"] != SCHEMA_VERSION:
        raise StoreError(
            f"{text}: store schema {attrs['schema']!r} is not supported: this version of "
            f"biosig-prep reads schema {SCHEMA_VERSION} (int16 windows, padded tails with "
            "patch_mask); re-run `biosig-prep convert` on the sources into a new destination (or "
            "with --overwrite) to rewrite it")
    if not attrs.get("complete", False) and not allow_incomplete:
        raise StoreError(f"{text}: the store is incomplete (its conversion has not finished or "
                         "was interrupted; rerun the same `biosig-prep convert` command to resume "
                         "it); pass allow_incomplete=True to read it anyway")
    return Store(text, group, RawIO(store, url=text, storage_options=storage_options))
