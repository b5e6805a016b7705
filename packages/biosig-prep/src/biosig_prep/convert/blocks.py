"""Phase 4: write one block of whole shards and chunks (runs on a worker)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from biosig_prep.convert.plan import _io_for, _RunSpec
from biosig_prep.convert.stage import _load_npz, _Staged
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


@dataclass(frozen=True)
class _Piece:
    """Windows ``local_lo..local_hi`` of a batch's result, placed at ``global_lo``."""

    batch: int
    local_lo: int
    local_hi: int
    global_lo: int
    row0: int  # row of the batch's first record in records/

    @property
    def global_hi(self) -> int:
        return self.global_lo + self.local_hi - self.local_lo


@dataclass(frozen=True)
class _Block:
    table: str  # a stream name or "labels"
    index: int
    lo: int
    hi: int
    pieces: tuple[_Piece, ...]
    stream: StreamSpec | None = None
    label_keys: tuple[str, ...] = ()

    @property
    def batches(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(p.batch for p in self.pieces))

    @property
    def marker(self) -> str:
        return f"{STAGING}/blocks/{self.table}/{self.index:08d}"


def _write_block(spec: _RunSpec, block: _Block, *data: Any) -> tuple[str, int]:
    """Write one block. ``data`` holds this table's part of each batch in ``block.batches``
    (a ``_Staged``, a labels dict, or None: read it from the staging area)."""
    io = _Recording(_io_for(spec))
    by_batch = dict(zip(block.batches, data, strict=True))
    if block.stream is None:
        _write_label_block(io, block, by_batch)
    else:
        _write_stream_block(io, block, block.stream, by_batch)
    # the marker says what was written: the store's record that `verify` checks against
    io.raw.put(block.marker, json.dumps(io.written).encode())
    return block.table, block.index


class _Recording:
    """RawIO.put that also records ``key -> [nbytes, crc32c]`` of every object written."""

    def __init__(self, raw: RawIO) -> None:
        self.raw = raw
        self.written: dict[str, list[int]] = {}

    def put(self, key: str, data: Any) -> None:
        import google_crc32c

        pieces = data if isinstance(data, (list, tuple)) else [data]
        crc, n = 0, 0
        for piece in pieces:
            crc = google_crc32c.extend(crc, bytes(piece) if isinstance(piece, memoryview)
                                       else piece)
            n += len(piece)
        self.raw.put(key, pieces)
        self.written[key] = [n, int(crc)]

    def get(self, *args: Any, **kw: Any) -> Any:
        return self.raw.get(*args, **kw)


def _write_stream_block(io: RawIO, block: _Block, s: StreamSpec, by_batch: dict[int, Any]
                        ) -> None:
    chunks: list = []
    records, starts, masks, pmasks = [], [], [], []
    labels: list[tuple[int, dict[str, np.ndarray]]] = []
    c = len(s.channels)
    for piece in block.pieces:
        staged = by_batch[piece.batch]
        if staged is None:
            staged = _Staged.from_staging(io, f"{STAGING}/b{piece.batch:06d}/data/{s.name}")
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


def _write_label_block(io: RawIO, block: _Block, by_batch: dict[int, Any]) -> None:
    values: dict[str, list[np.ndarray]] = {k: [] for k in block.label_keys}
    for piece in block.pieces:
        labels = by_batch[piece.batch]
        if labels is None:
            labels = _load_npz(io, f"{STAGING}/b{piece.batch:06d}/data/{LABELS}/labels.npz")
            by_batch[piece.batch] = labels
        for key in block.label_keys:
            values[key].append(labels[key][piece.local_lo:piece.local_hi])
    for key, parts in values.items():
        io.put(chunk_key(f"{LABELS}/{key}", (block.index,)),
               small_chunk_bytes(np.concatenate(parts), LABELS_CHUNK, "<i8"))
