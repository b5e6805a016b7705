"""Phase 4: write one block of whole shards and chunks (runs on a worker)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from biosig_prep.convert.stage import Staged, load_npz
from biosig_prep.convert.types import Block, RunSpec, io_for
from biosig_prep.store import (
    LABELS,
    LABELS_CHUNK,
    STAGING,
    RawIO,
    StreamSpec,
    WindowCodec,
    chunk_key,
    small_chunk_bytes,
)
from biosig_prep.store.integrity import object_record

__all__ = ["write_block"]


def write_block(spec: RunSpec, block: Block, *data: Any) -> tuple[str, int]:
    """Write one block. ``data`` holds this table's part of each batch in ``block.batches``
    (a ``Staged``, a labels dict, or None: read it from the staging area)."""
    io = _Recording(io_for(spec))
    by_batch = dict(zip(block.batches, data, strict=True))
    if block.stream is None:
        _write_label_block(io, block, by_batch)
    else:
        _write_stream_block(io, block, block.stream, by_batch)
    # the marker says what was written: the store's record that `verify` checks against
    io.raw.put(block.marker, json.dumps(io.written).encode())
    return block.table, block.index


class _Recording:
    """RawIO.put that also records ``key -> [nbytes, crc32c, sha256]`` of every object written
    (see :func:`biosig_prep.store.integrity.object_record`)."""

    def __init__(self, raw: RawIO) -> None:
        self.raw = raw
        self.written: dict[str, list] = {}

    def put(self, key: str, data: Any) -> None:
        pieces = data if isinstance(data, (list, tuple)) else [data]
        self.raw.put(key, pieces)
        self.written[key] = object_record(pieces)

    def get(self, *args: Any, **kw: Any) -> Any:
        return self.raw.get(*args, **kw)


def _write_stream_block(io: RawIO, block: Block, s: StreamSpec, by_batch: dict[int, Any]
                        ) -> None:
    chunks: list = []
    records, starts, masks, pmasks = [], [], [], []
    labels: list[tuple[int, dict[str, np.ndarray]]] = []
    c = len(s.channels)
    for piece in block.pieces:
        staged = by_batch[piece.batch]
        if staged is None:
            staged = Staged.from_staging(io, f"{STAGING}/b{piece.batch:06d}/data/{s.name}")
            by_batch[piece.batch] = staged
        sl = slice(piece.local_lo, piece.local_hi)
        chunks += staged.window_bytes(io, piece.local_lo, piece.local_hi)
        records.append(staged.record[sl] + piece.row0)
        starts.append(staged.start[sl])
        masks.append(staged.mask[sl, :c])
        pmasks.append(staged.pmask[sl])
        labels.append((piece.local_hi - piece.local_lo,
                       {k: v[sl] for k, v in staged.labels.items()}))
    if len(chunks) != block.hi - block.lo:
        raise RuntimeError(f"block {block.index} of {s.name}: {len(chunks)} windows found, "
                           f"{block.hi - block.lo} expected")
    k = s.shard_size
    for shard in range(block.lo // k, -(-block.hi // k)):
        a, z = shard * k - block.lo, min((shard + 1) * k, block.hi) - block.lo
        io.put(s.shard_key(shard), WindowCodec.shard(chunks[a:z], k))
    keys = s.small_keys(block.index)
    io.put(keys["record"], small_chunk_bytes(np.concatenate(records), s.block_size, "<i8"))
    io.put(keys["start"], small_chunk_bytes(np.concatenate(starts), s.block_size, "<i8"))
    io.put(keys["channel_mask"], small_chunk_bytes(np.concatenate(masks), s.block_size, "|b1"))
    io.put(keys["patch_mask"], small_chunk_bytes(np.concatenate(pmasks), s.block_size, "|b1"))
    # per-window labels, chunked like `record`; a block without any keeps its fill value -1
    for key in sorted({k for _, parts in labels for k in parts}):
        values = np.concatenate([parts[key] if key in parts else np.full(n, -1, np.int64)
                                 for n, parts in labels])
        io.put(chunk_key(f"{s.name}/{LABELS}/{key}", (block.index,)),
               small_chunk_bytes(values, s.block_size, "<i8"))


def _write_label_block(io: RawIO, block: Block, by_batch: dict[int, Any]) -> None:
    values: dict[str, list[np.ndarray]] = {k: [] for k in block.label_keys}
    for piece in block.pieces:
        labels = by_batch[piece.batch]
        if labels is None:
            labels = load_npz(io, f"{STAGING}/b{piece.batch:06d}/data/{LABELS}/labels.npz")
            by_batch[piece.batch] = labels
        for key in block.label_keys:
            values[key].append(labels[key][piece.local_lo:piece.local_hi])
    for key, parts in values.items():
        io.put(chunk_key(f"{LABELS}/{key}", (block.index,)),
               small_chunk_bytes(np.concatenate(parts), LABELS_CHUNK, "<i8"))
