"""Writing a store's metadata: :class:`StoreWriter` (used by one process, the convert driver).

Workers never use it: they write whole chunk objects through :class:`~biosig_prep.store.io.RawIO`
(windows as complete shards assembled by :class:`~biosig_prep.store.codec.WindowCodec`, the small
per-window arrays as whole uncompressed chunks), so no two writers touch the same object and no
worker rewrites metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np
import zarr

from biosig_prep.store.codec import WindowCodec
from biosig_prep.store.io import RawIO, open_raw_store, quiet
from biosig_prep.store.layout import (
    LABELS,
    LABELS_CHUNK,
    META,
    RECORD_COLUMNS,
    RECORDS,
    RECORDS_CHUNK,
    SMALL_ARRAYS,
    StreamSpec,
)
from biosig_prep.store.reader import StoreError

__all__ = ["StoreWriter"]


class StoreWriter:
    """The single writer of a store's metadata: groups, array shapes, attributes, records."""

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.url = str(url)
        self.storage_options = storage_options
        self.raw = RawIO(open_raw_store(url, storage_options), url=self.url,
                         storage_options=storage_options)
        self._group: zarr.Group | None = None
        self._arrays: dict[str, zarr.Array] = {}

    # -- the root --------------------------------------------------------------------------
    def read_attrs(self) -> dict[str, Any] | None:
        """Root attributes if a Zarr group exists at the URL, else None ({} for a Zarr node
        that is not a group or whose zarr.json cannot be parsed)."""
        data = self.raw.get("zarr.json")
        if data is None:
            return None
        try:
            meta = json.loads(data)
        except ValueError:
            return {}
        if not isinstance(meta, dict):
            return {}
        return dict(meta.get("attributes") or {}) if meta.get("node_type") == "group" else {}

    def is_empty(self) -> bool:
        """Whether nothing but a writer lock is there."""
        return self.raw.is_empty(ignore=(META,))

    def create(self, attrs: dict[str, Any]) -> None:
        """Create the root group afresh. Everything under the URL is deleted first, but never
        the destination folder itself (it may be a mount point)."""
        self.raw.delete("zarr.json")  # first: an open reader sees the store gone, and raises
        self.raw.delete_prefix("", keep=(META,))
        with quiet():
            self._group = zarr.open_group(store=self.raw.store, mode="a", attributes=attrs)
        self._arrays.clear()

    def open(self) -> zarr.Group:
        if self._group is None:
            with quiet():
                self._group = zarr.open_group(store=self.raw.store, mode="r+")
        return self._group

    def update_attrs(self, **attrs: Any) -> None:
        self.open().attrs.update(attrs)

    def ensure_group(self, name: str, attrs: dict[str, Any] | None = None) -> zarr.Group:
        group = self.open()
        with quiet():
            if name in group:
                return cast(zarr.Group, group[name])
            return group.create_group(name, attributes=attrs or {})

    # -- arrays ----------------------------------------------------------------------------
    def _array(self, path: str) -> zarr.Array:
        arr = self._arrays.get(path)
        if arr is None:
            with quiet():
                arr = cast(zarr.Array, self.open()[path])
            self._arrays[path] = arr
        return arr

    def _create(self, group: zarr.Group, name: str, **kw: Any) -> zarr.Array:
        with quiet():
            if name in group:
                arr = cast(zarr.Array, group[name])
            else:
                arr = group.create_array(name, **kw)
        self._arrays[f"{group.path}/{name}".lstrip("/")] = arr
        return arr

    def ensure_stream(self, spec: StreamSpec, codec: WindowCodec,
                      tail: dict[str, Any] | None = None) -> None:
        """Create the stream's group and arrays (empty) unless they exist; check they match."""
        group = self.ensure_group(spec.name, {
            "modality": spec.modality, "fs": int(spec.fs), "channels": list(spec.channels),
            "units": spec.units, "n_patches": spec.n_patches, "patch_size": spec.patch_size,
            "encoding": codec.describe(spec.units),
            "tail": dict(tail or {"policy": "drop", "min_valid_fraction": 1.0})})
        c, p, s = spec.window_shape
        k, b = spec.shard_size, spec.block_size
        windows = self._create(group, "windows", shape=(0, c, p, s), dtype="float32",
                               chunks=(1, c, p, s), shards=(k, c, p, s),
                               filters=codec.zarr_filters(), compressors=[codec.zarr_codec()],
                               fill_value=0.0)
        if tuple(windows.shards or ()) != (k, c, p, s):
            raise StoreError(f"{self.url}: stream {spec.name} exists with shards "
                             f"{windows.shards}, expected {(k, c, p, s)}")
        self._create(group, "record", shape=(0,), dtype="int64", chunks=(b,), compressors=None,
                     fill_value=0)
        self._create(group, "start", shape=(0,), dtype="int64", chunks=(b,), compressors=None,
                     fill_value=0)
        self._create(group, "channel_mask", shape=(0, c), dtype="bool", chunks=(b, c),
                     compressors=None, fill_value=False)
        self._create(group, "patch_mask", shape=(0, p), dtype="bool", chunks=(b, p),
                     compressors=None, fill_value=False)

    def ensure_stream_labels(self, name: str, classes: dict[str, list[str]]) -> None:
        """Create the stream's per-window label arrays ``<name>/labels/<key>`` (int64, fill -1,
        chunked like ``record``) unless they exist, and set their ``classes``."""
        block = int(self._array(f"{name}/record").chunks[0])
        group = self.ensure_group(f"{name}/{LABELS}")
        for key, names in classes.items():
            arr = self._create(group, key, shape=(self._array(f"{name}/record").shape[0],),
                               dtype="int64", chunks=(block,), compressors=None, fill_value=-1)
            if list(arr.attrs.get("classes", [])) != list(names):
                arr.attrs["classes"] = list(names)

    def set_stream_length(self, name: str, n: int) -> None:
        """Set the length of the stream's arrays to ``n`` windows (metadata only: the chunk
        objects are written by the workers, before or after)."""
        with quiet():
            group = self.open()[name]
            keys = (sorted(cast(zarr.Group, group[LABELS]).array_keys())
                    if LABELS in cast(zarr.Group, group) else [])
        for arr_name in ("windows", *SMALL_ARRAYS, *(f"{LABELS}/{k}" for k in keys)):
            arr = self._array(f"{name}/{arr_name}")
            if arr.shape[0] != n:
                arr.resize((n,) + tuple(arr.shape[1:]))

    def set_stream_attrs(self, name: str, **attrs: Any) -> None:
        with quiet():
            self.open()[name].attrs.update(attrs)

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
            with quiet():
                arr[first:stop] = values
