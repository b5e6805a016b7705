"""Names, keys and sizes of the store layout (schema 2). No I/O here.

Layout::

    <root>/                      attrs: schema (2), version, config, complete, summary,
                                 conversion (fingerprint, state, sources with size+mtime)
        records/                 one row per source record, in plan order
            id source path status metadata   (variable-length strings; metadata is JSON text)
            fs (float64)  n_samples (int64)
        ecg@500/  eeg@200/ ...   one group per stream (a modality at a rate)
            windows        (N, C, P, S): float32 to a reader; stored as int16 multiples of a
                           fixed step (zarr codecs: numcodecs.fixedscaleoffset -> bytes ->
                           blosc bitshuffle/lz4) or as float32 (bytes -> blosc shuffle/lz4);
                           chunks (1, C, P, S) inside shards (K, C, P, S)
            record         (N,) int64, row of ``records/`` the window comes from
            start          (N,) int64, first sample of the window at the stream's rate
            channel_mask   (N, C) bool, False where a channel was missing and zero-filled
            patch_mask     (N, P) bool, False for the zero padding of a record's last,
                           partial window (padding is always at the end)
            labels/        only for labelled windows (rhythm annotations): <name> (N,) int64
                           aligned with the windows, attribute ``classes`` (value i is
                           classes[i], -1 unlabelled); chunked like ``record``
            attrs: modality, fs, channels, units, n_patches, patch_size,
                   encoding {dtype, step, units, max_abs_error}, tail {policy,
                   min_valid_fraction}, shards {count, nbytes: [...]} (written objects)
        labels/                  only for paired, labelled data (DREAMER): (N,) int64 arrays
        _meta/                   a group: sources.json (path -> [size, mtime_ns] of every source
                                 file), manifest.json (key -> [nbytes, crc32c] of every chunk
                                 and shard object written; `biosig-prep verify` checks them),
                                 writer.lock (while a conversion runs: pid, host)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SCHEMA_VERSION", "RECORDS", "LABELS", "STAGING", "LOCK", "META", "SOURCES", "MANIFEST", "RECORD_COLUMNS", "RECORDS_CHUNK",
    "LABELS_CHUNK", "EMPTY_CHUNK", "StreamSpec", "chunk_key", "auto_shard_size",
    "auto_block_size", "small_chunk_bytes", "is_stream_name", "SMALL_ARRAYS", "DamagedShardError",
]

SCHEMA_VERSION = 2
RECORDS = "records"
LABELS = "labels"
STAGING = "_convert"  # private group of an unfinished conversion, removed when it completes
META = "_meta"  # a plain Zarr group for the store's own records (not a stream)
LOCK = f"{META}/writer.lock"  # the one writer's lock object (see biosig_prep.store.lock)
SOURCES = f"{META}/sources.json"  # size and mtime of every source file when converted
MANIFEST = f"{META}/manifest.json"  # key -> [nbytes, crc32c] of every chunk object written
RECORD_COLUMNS: dict[str, str] = {
    "id": "str", "source": "str", "path": "str", "status": "str", "metadata": "str",
    "fs": "float64", "n_samples": "int64",
}
RECORDS_CHUNK = 4096
LABELS_CHUNK = 4096
# Shard index entry (offset and nbytes) of a chunk that is not stored (the sharding codec's
# spec value). Defined here only.
EMPTY_CHUNK = 2**64 - 1
SMALL_ARRAYS = ("record", "start", "channel_mask", "patch_mask")
_STREAM_NAME = re.compile(r"^[a-z][a-z0-9_]*@\d+$")


def is_stream_name(name: str) -> bool:
    return bool(_STREAM_NAME.match(name))


def chunk_key(array_path: str, coords: Sequence[int]) -> str:
    """Key of one chunk (or shard) object under the default v3 chunk key encoding."""
    return f"{array_path}/c/" + "/".join(str(int(c)) for c in coords)


@dataclass(frozen=True)
class StreamSpec:
    """Everything fixed about a stream before its first window is written (picklable).

    shard_size : windows per shard (K); block_size : windows per write task, a multiple of K,
        also the chunk length of ``record``, ``start``, ``channel_mask`` and ``patch_mask``.
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
        """Bytes of one window as float32 (the unit the layout sizes shards by)."""
        return 4 * int(np.prod(self.window_shape))

    def shard_key(self, shard: int) -> str:
        return chunk_key(f"{self.name}/windows", (shard, 0, 0, 0))

    def small_keys(self, block: int) -> dict[str, str]:
        return {"record": chunk_key(f"{self.name}/record", (block,)),
                "start": chunk_key(f"{self.name}/start", (block,)),
                "channel_mask": chunk_key(f"{self.name}/channel_mask", (block, 0)),
                "patch_mask": chunk_key(f"{self.name}/patch_mask", (block, 0))}


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


class DamagedShardError(OSError):
    """A shard object that cannot be decoded (the message names the stream and shard)."""
