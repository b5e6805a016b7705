"""Small arrays of a store read with every chunk object checked (see :mod:`.integrity`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from biosig_prep.store.integrity import fully_checked, object_problem
from biosig_prep.store.io import RawIO, quiet
from biosig_prep.store.layout import DamagedShardError, chunk_key

if TYPE_CHECKING:
    import zarr

__all__ = ["CheckedArray", "CheckedSource", "damaged_error"]


class CheckedSource(Protocol):
    """What a :class:`CheckedArray` reads through: the store's objects (``raw``), the manifest
    they are checked against and whether it is complete (``sealed``).
    :class:`~biosig_prep.store.reader.Store` is one; this module needs no more of it."""

    @property
    def raw(self) -> RawIO: ...

    @property
    def sealed(self) -> bool: ...

    def manifest(self) -> dict[str, list]: ...


def damaged_error(where: str, what: str, why: str) -> DamagedShardError:
    return DamagedShardError(f"{where}: {what} is damaged ({why}); run `biosig-prep verify` on "
                             "the store, then re-run its convert")


class CheckedArray:
    """A small array of a store (``record``, ``start``, the masks, labels) read whole chunks at
    a time, every chunk object checked against the manifest (and its own CRC32C) before it is
    decoded. Supports ``len``, ``shape``, ``dtype`` and ``[...]`` like the zarr array it wraps
    (``array``)."""

    def __init__(self, array: zarr.Array, store: CheckedSource, where: str) -> None:
        self.array = array
        self.shape = tuple(int(d) for d in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.chunks = tuple(int(c) for c in array.chunks)
        self.path = array.path
        self._store = store
        self.where = f"{where} {array.basename}"
        self._plain = self._parse(store.raw.get(f"{self.path}/zarr.json"))

    def _parse(self, data: bytes | None) -> bool | None:
        """None: not a plain layout (read through zarr); else whether chunks end with a CRC."""
        try:
            meta = json.loads(data or b"")
            names = [c["name"] for c in meta["codecs"]]
            endian = (meta["codecs"][0].get("configuration") or {}).get("endian", "little")
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        if names not in (["bytes"], ["bytes", "crc32c"]) or self.dtype.kind not in "biuf":
            return None
        if self.dtype.itemsize > 1 and endian != "little":
            return None
        return len(names) == 2

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.read(0, len(self))
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, slice) and first.step in (None, 1):
            start, stop, _ = first.indices(len(self))
            out = self.read(start, max(start, stop))
        elif isinstance(first, (int, np.integer)):
            i = int(first) + (len(self) if first < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"index {int(first)} out of range for {len(self)} rows")
            out = self.read(i, i + 1)[0]
        else:
            out = self.read(0, len(self))[first]
        return out[(slice(None), *rest)] if rest and out.ndim == len(self.shape) else (
            out[rest] if rest else out)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (checked)."""
        c = self.chunks[0]
        tail = self.shape[1:]
        out = np.empty((stop - start, *tail), dtype=self.dtype)
        if stop <= start:
            return out
        store = self._store
        manifest, strict = store.manifest(), store.sealed
        chunks = list(range(start // c, -(-stop // c)))
        keys = [chunk_key(self.path, (j, *(0,) * len(tail))) for j in chunks]
        blobs = store.raw.get_many(keys) if (manifest or self._plain is not None) else []
        for j, key, blob in zip(chunks, keys, blobs, strict=False):  # blobs [] unchecked
            why = object_problem(key, blob, manifest, strict) if manifest else None
            if why is not None:
                raise damaged_error(self.where, f"chunk {j}", why)
        if self._plain is None:
            try:
                with quiet():
                    return np.asarray(self.array[start:stop])
            except (ValueError, RuntimeError, OSError) as exc:
                raise damaged_error(self.where, f"rows {start}:{stop}",
                               f"{type(exc).__name__}: {exc}") from exc
        shape = (c, *tail)
        nbytes = int(np.prod(shape)) * self.dtype.itemsize
        for j, key, blob in zip(chunks, keys, blobs, strict=True):
            lo, hi = max(start, j * c), min(stop, (j + 1) * c)
            if blob is None:
                if strict or (j * c < len(self) and key in manifest):
                    raise damaged_error(self.where, f"chunk {j}", "the object is missing")
                out[lo - start:hi - start] = self.array.fill_value
                continue
            body = blob[:-4] if self._plain else blob
            if len(body) != nbytes:
                raise damaged_error(self.where, f"chunk {j}", f"{len(blob)} bytes, expected "
                               f"{nbytes + (4 if self._plain else 0)}")
            if self._plain and not fully_checked(manifest.get(key)):
                import google_crc32c

                if google_crc32c.value(body) != int.from_bytes(blob[-4:], "little"):
                    raise damaged_error(self.where, f"chunk {j}", "checksum mismatch")
            values = np.frombuffer(body, dtype=self.dtype.newbyteorder("<")).reshape(shape)
            out[lo - start:hi - start] = values[lo - j * c:hi - j * c]
        return out
