"""Shard-aware, shuffled loading of windows from biosig-prep stores, split over DDP ranks and workers.

Reading a Zarr store one window at a time is slow (each call pays the store round trip, the
shard index and the codec pipeline for 96 kB); reading whole shards in storage order is fast but
not shuffled. This loader gets both:

1. **Epoch plan (pure, no I/O).** Every shard of every source (a stream of a store) is a unit of
   work. Each epoch the units are put in a random order drawn from ``(seed, epoch)``; that
   order is cut into ``world_size`` contiguous pieces of equal window count (sizes differ by at
   most one window), then each rank's piece into ``num_workers`` pieces the same way. Every
   window of the epoch is thus owned by exactly one (rank, worker); a cut may fall inside a shard,
   and then its two owners both fetch it and each decodes only its part.
2. **Shuffle buffer.** A worker walks its pieces in order and gathers them into blocks of at least
   ``shuffle_windows`` windows (several shards). A block, plus the windows left over from the
   previous block, is permuted and cut into batches; what does not fill a batch is carried into
   the next block. At the end of a worker's epoch the carried windows form one last, smaller
   batch (or are dropped with ``drop_last=True``). Every random draw comes from
   ``(seed, epoch, rank, worker, block)``, never from consumed generator state, so any batch of
   any epoch can be recomputed, which is how a resumed run continues the same data order.
3. **Whole-shard reads.** When the ``windows`` array has the store contract's layout (one
   window per chunk inside shards, bytes + an optional zstd/gzip/blosc compressor), every
   shard of a block is fetched whole with one request (a plain file read for a local store;
   all of the block's requests at once through zarr's async store API otherwise) and each
   chunk is decoded straight into its final place, the row of the batch tensor it was shuffled
   to, bypassing zarr's per-chunk pipeline: a window is written once. Any other layout falls
   back to zarr slicing (same values, tested).
4. **Overlap.** ``make_loader`` runs ``num_workers`` readers ahead of the consumer, each
   holding ``prefetch_factor`` batches: threads in the training process by default
   (:class:`ThreadedLoader`; the decoding runs in C and numpy, and a 12 MB batch needs no
   copy between processes), or the worker processes of a
   :class:`torch.utils.data.DataLoader` (``workers="process"``). The batches and their order
   are the same either way. The dataset iterates epoch after epoch without end (unless
   ``num_epochs`` is given), so readers live for the whole run (persistent by construction)
   and never restart at an epoch boundary.

Batches, one stream shape each. One sample is one window of one stream. Streams whose windows
have the same shape ``(C, P, S)`` (all 12-lead ECG rates: (12, 10, 200)) are mixed in a batch,
as the paper mixes its four ECG rates; streams of another shape (14-channel EEG) are batched
apart, so a batch is always one tensor. ``mix_streams=False`` keeps every batch to one stream.
Sources are mixed in proportion to their sizes (their shards are shuffled together).

Order of batches. Batches are taken round-robin from the readers (batch ``i`` of a rank comes
from reader ``i % num_workers``, as a DataLoader does) and, iterating without end, no reader
ever runs dry; so the rank's batch sequence is a pure function of ``(seed, rank, world_size,
num_workers, batch_size, shuffle_windows)``. ``skip_batches=g`` starts that sequence at batch
``g`` (worker ``p`` then plays the role of worker ``(p + g) % num_workers``), which is what a
resumed run uses.

Uneven splits. Ranks get the same number of windows per epoch to within one, and workers the
same to within one; the last batch of each worker's epoch (per shape group) may be short. Nothing
is padded or repeated, so every window is seen exactly once per epoch. Training is counted in
steps over the endless stream, so all DDP ranks take the same number of steps even when their
epochs end at slightly different batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

__all__ = [
    "SourceInfo",
    "WindowDataset",
    "ShardReader",
    "open_sources",
    "epoch_pieces",
    "make_loader",
    "ThreadedLoader",
]

# Salts keep the random streams of the plan apart from each other and from the masks.
_SALT_ORDER = 0x5EED_0001
_SALT_BLOCK = 0x5EED_0002


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInfo:
    """One stream of one store, as the loader sees it (picklable; no open handles).

    n : number of windows; shard_size : windows per shard (the unit of reading);
    shape : (C, P, S) of one window.
    """

    url: str
    stream: str
    n: int
    shard_size: int
    shape: tuple[int, int, int]
    modality: str = ""
    fs: int = 0
    storage_options: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def name(self) -> str:
        return f"{self.url}::{self.stream}"


def open_sources(
    stores: Sequence[str],
    streams: Sequence[str],
    *,
    storage_options: dict[str, Any] | None = None,
) -> list[SourceInfo]:
    """Every requested stream of every store, through :func:`biosig_prep.open_store`.

    A store that lacks one of the streams is fine (a DREAMER store has no ``ecg@500``); a stream
    found in none of the stores is an error that lists what each store holds. Order: stores as
    given, then streams as given.
    """
    from biosig_prep import open_store

    if not stores:
        raise ValueError("no stores given: pass at least one store (--store)")
    if not streams:
        raise ValueError("no streams given: pass at least one stream, e.g. --stream ecg@500")
    opened = [(str(url), open_store(str(url), storage_options=storage_options)) for url in stores]
    out: list[SourceInfo] = []
    for name in streams:
        found = False
        for url, store in opened:
            if name not in store.stream_names:
                continue
            found = True
            s = store.stream(name)
            w = s.windows
            out.append(
                SourceInfo(
                    url=url,
                    stream=name,
                    n=len(s),
                    shard_size=int(s.shard_size),
                    shape=tuple(int(d) for d in w.shape[1:]),
                    modality=str(s.modality),
                    fs=int(s.fs),
                    storage_options=storage_options,
                )
            )
        if not found:
            have = "; ".join(f"{url}: {', '.join(st.stream_names) or '(none)'}" for url, st in opened)
            raise ValueError(f"stream {name!r} is in none of the stores ({have})")
    return out


# --------------------------------------------------------------------------------------------
# Reading whole shards fast
# --------------------------------------------------------------------------------------------


class _ShardDecoder:
    """Decodes one shard of a ``(N, ...)`` array whose chunks hold one row each.

    Only for the layout the store contract writes: a single ``sharding_indexed`` codec whose
    inner chunk is one row, inner codecs ``bytes`` (+ one of zstd/gzip/blosc), index codecs
    ``bytes`` (+ ``crc32c``). :meth:`from_array` returns None for anything else.
    """

    _EMPTY = np.uint64(2**64 - 1)

    def __init__(self, array: Any, codec: Any, decompress: Any | None):
        self.array = array
        self.k = int(array.shards[0])
        self.row_shape = tuple(int(d) for d in array.shape[1:])
        self.dtype = np.dtype(array.dtype)
        self.row_nbytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self.decompress = decompress
        self.index_at_end = str(getattr(codec.index_location, "value", codec.index_location)) == "end"
        self.index_crc = len(codec.index_codecs) == 2
        self.index_nbytes = 16 * self.k + (4 if self.index_crc else 0)
        self.fill_value = array.fill_value

    @classmethod
    def from_array(cls, array: Any) -> _ShardDecoder | None:
        try:
            from zarr.codecs import (
                BloscCodec,
                BytesCodec,
                Crc32cCodec,
                GzipCodec,
                ShardingCodec,
                ZstdCodec,
            )
        except ImportError:  # pragma: no cover - zarr < 3
            return None
        try:
            codecs = array.metadata.codecs
            shards = array.shards
        except AttributeError:
            return None
        if shards is None or len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
            return None
        codec = codecs[0]
        if tuple(codec.chunk_shape) != (1, *array.shape[1:]) or tuple(shards[1:]) != tuple(
            array.shape[1:]
        ):
            return None
        dtype = np.dtype(array.dtype)
        if dtype.byteorder == ">" or dtype.hasobject:
            return None
        inner = list(codec.codecs)
        if not inner or not isinstance(inner[0], BytesCodec):
            return None
        endian = getattr(getattr(inner[0], "endian", None), "value", "little")
        if dtype.itemsize > 1 and endian not in (None, "little"):
            return None
        import numcodecs

        decompress = None  # a function (compressed bytes, flat uint8 destination)
        if len(inner) == 2:
            c = inner[1]
            if isinstance(c, ZstdCodec):
                from numcodecs import zstd

                decompress = zstd.decompress  # the module function skips the codec's checks
            elif isinstance(c, GzipCodec):
                gz = numcodecs.GZip()
                decompress = lambda src, out: gz.decode(src, out=out)  # noqa: E731
            elif isinstance(c, BloscCodec):
                from numcodecs import blosc

                decompress = blosc.decompress
            else:
                return None
        elif len(inner) > 2:
            return None
        idx = list(codec.index_codecs)
        if not idx or not isinstance(idx[0], BytesCodec) or len(idx) > 2:
            return None
        if len(idx) == 2 and not isinstance(idx[1], Crc32cCodec):
            return None
        return cls(array, codec, decompress)

    def _keys(self, shards: Sequence[int]) -> list[str]:
        path = self.array.store_path.path
        tail = (0,) * len(self.row_shape)
        keys = [self.array.metadata.encode_chunk_key((int(j), *tail)) for j in shards]
        return [f"{path}/{k}" if path else k for k in keys]

    def fetch(self, shards: Sequence[int]) -> list[np.ndarray | None]:
        """Raw bytes of whole shard objects (None where a shard was never written).

        A local store is read with plain file reads (no event-loop round trip); any other
        store gets all the requests at once through zarr's async store API, so object
        storage serves them concurrently.
        """
        store = self.array.store_path.store
        keys = self._keys(shards)
        root = getattr(store, "root", None)
        if root is not None and type(store).__name__ == "LocalStore":
            out: list[np.ndarray | None] = []
            for k in keys:
                try:
                    out.append(np.fromfile(Path(root) / k, dtype=np.uint8))
                except FileNotFoundError:
                    out.append(None)
            return out
        import asyncio

        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        proto = default_buffer_prototype()

        async def get_all():
            return await asyncio.gather(*(store.get(k, prototype=proto) for k in keys))

        return [None if b is None else b.as_numpy_array().view(np.uint8) for b in sync(get_all())]

    def _index(self, raw: np.ndarray) -> np.ndarray:
        if self.index_at_end:
            idx = raw[len(raw) - self.index_nbytes :]
        else:
            idx = raw[: self.index_nbytes]
        if self.index_crc:
            import google_crc32c

            body, crc = idx[: 16 * self.k], idx[16 * self.k :]
            if google_crc32c.value(body.tobytes()) != int(crc.view("<u4")[0]):
                raise OSError(f"shard index checksum mismatch in {self.array.store_path}")
            idx = body
        return idx.view("<u8").reshape(self.k, 2)

    def decode_rows(self, raw: np.ndarray | None, rows: Sequence[int],
                    dests: Sequence[np.ndarray | None]) -> None:
        """Decode shard-local ``rows`` of one fetched shard, row i into ``dests[i]`` (a flat
        uint8 view of its destination; None = not needed, not decoded)."""
        if raw is None:
            for d in dests:
                if d is not None:
                    d.view(self.dtype)[...] = self.fill_value
            return
        index = self._index(raw).tolist()
        decode = self.decompress
        for r, d in zip(rows, dests, strict=True):
            if d is None:
                continue
            off, length = index[r]
            if off == 2**64 - 1:
                d.view(self.dtype)[...] = self.fill_value
            elif decode is None:
                d[...] = raw[off : off + length]
            else:
                decode(raw[off : off + length], d)


class ShardReader:
    """Reads rows of a window array (``Stream.windows``) whole shards at a time.

    ``read(start, stop)`` returns rows ``start:stop``; ``take(rows)`` arbitrary rows in the
    given order; ``read_ranges`` several ranges into given buffers, fetching every shard they
    touch once (concurrently on object storage). Uses the fast shard decoder where the layout
    allows (:class:`_ShardDecoder`), zarr slicing otherwise (``fast=False`` forces it).
    """

    def __init__(self, array: Any, *, fast: bool = True):
        self.array = array
        self.decoder = _ShardDecoder.from_array(array) if fast else None
        shards = getattr(array, "shards", None)
        self.shard_size = int(shards[0] if shards is not None else array.chunks[0])
        self.n = int(array.shape[0])
        self.row_shape = tuple(int(d) for d in array.shape[1:])
        self.dtype = np.dtype(array.dtype)

    @property
    def fast(self) -> bool:
        return self.decoder is not None

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.row_shape), dtype=self.dtype)
        self.read_ranges([(start, stop)], [out])
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Arbitrary rows, in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n):
            raise IndexError(f"rows out of range for {self.n} windows")
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
            rows += range(start, stop)
            dests += list(out.reshape(stop - start, -1).view(np.uint8))
        self.read_rows(rows, dests)

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
        shards = sorted(by_shard)
        if self.decoder is None:
            for j in shards:
                local, ds = by_shard[j]
                lo, hi = min(local), max(local) + 1
                block = np.asarray(self.array[j * k + lo : j * k + hi], dtype=self.dtype)
                for r, d in zip(local, ds, strict=True):
                    d.view(self.dtype)[...] = block[r - lo].reshape(-1)
            return
        for j, raw in zip(shards, self.decoder.fetch(shards), strict=True):
            local, ds = by_shard[j]
            self.decoder.decode_rows(raw, local, ds)


class _SourceHandle:
    """Per-process open state of a source: its window reader and its whole channel mask."""

    def __init__(self, info: SourceInfo, fast: bool):
        from biosig_prep import open_store

        store = open_store(info.url, storage_options=info.storage_options)
        stream = store.stream(info.stream)
        self.reader = ShardReader(stream.windows, fast=fast)
        # (N, C) bool is small (1 MB for 88k 12-lead windows): read it once.
        self.channel_mask = np.asarray(stream.channel_mask[:], dtype=bool)


# --------------------------------------------------------------------------------------------
# The epoch plan (pure)
# --------------------------------------------------------------------------------------------


def _units(sources: Sequence[SourceInfo]) -> np.ndarray:
    """All shards of all sources as rows (source, start, stop), in storage order."""
    rows = []
    for s_idx, s in enumerate(sources):
        k = max(1, s.shard_size)
        for start in range(0, s.n, k):
            rows.append((s_idx, start, min(start + k, s.n)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _cut(pieces: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The part of a piece sequence that covers window positions [lo, hi) of its concatenation."""
    lengths = pieces[:, 2] - pieces[:, 1]
    ends = np.cumsum(lengths)
    begins = ends - lengths
    keep = (ends > lo) & (begins < hi)
    out = pieces[keep].copy()
    out[:, 1] += np.maximum(lo - begins[keep], 0)  # trim the head of the first piece
    out[:, 2] -= np.maximum(ends[keep] - hi, 0)  # and the tail of the last
    return out


def _split(pieces: np.ndarray, part: int, n_parts: int) -> np.ndarray:
    total = int((pieces[:, 2] - pieces[:, 1]).sum())
    return _cut(pieces, part * total // n_parts, (part + 1) * total // n_parts)


def epoch_pieces(
    sources: Sequence[SourceInfo],
    *,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    worker: int = 0,
    num_workers: int = 1,
) -> np.ndarray:
    """The (source, start, stop) pieces one (rank, worker) reads in one epoch, in order.

    Shards of all sources are permuted by ``(seed, epoch)``; the sequence is split by window
    count into ``world_size`` parts, each part into ``num_workers`` parts.
    """
    units = _units(sources)
    rng = np.random.default_rng([seed, epoch, _SALT_ORDER])
    units = units[rng.permutation(len(units))]
    mine = _split(units, rank, world_size)
    return _split(mine, worker, num_workers)


@dataclass
class _Block:
    """One shuffle block: the pieces to read and the batches cut from (carry + block)."""

    pieces: np.ndarray  # (m, 3)
    # per shape group: pool ids (n, 2) [source, row] = carried-in ids followed by the block's
    pools: dict[int, np.ndarray]
    n_carried: dict[int, int]
    batches: list[tuple[int, np.ndarray]]  # (group, positions into that group's pool)
    carry: dict[int, np.ndarray]  # positions into each pool carried to the next block


def _blocks(
    sources: Sequence[SourceInfo],
    groups: Sequence[int],
    pieces: np.ndarray,
    *,
    batch_size: int,
    shuffle_windows: int,
    drop_last: bool,
    key: Sequence[int],
) -> Iterator[_Block]:
    """The shuffle blocks of one worker's epoch (pure: ids only, no data)."""
    carry_ids: dict[int, np.ndarray] = {}
    lengths = pieces[:, 2] - pieces[:, 1]
    starts = [0]
    acc = 0
    for i, n in enumerate(lengths.tolist()):
        acc += n
        if acc >= shuffle_windows and i + 1 < len(lengths):
            starts.append(i + 1)
            acc = 0
    starts.append(len(pieces))
    n_blocks = len(starts) - 1 if len(pieces) else 0
    for b in range(n_blocks):
        blk = pieces[starts[b] : starts[b + 1]]
        last = b == n_blocks - 1
        rng = np.random.default_rng([*key, b, _SALT_BLOCK])
        new_ids: dict[int, list[np.ndarray]] = {}
        for s, lo, hi in blk.tolist():
            ids = np.stack([np.full(hi - lo, s, dtype=np.int64), np.arange(lo, hi)], axis=1)
            new_ids.setdefault(groups[s], []).append(ids)
        pools: dict[int, np.ndarray] = {}
        n_carried: dict[int, int] = {}
        for g in sorted(set(carry_ids) | set(new_ids)):
            old = carry_ids.get(g, np.empty((0, 2), dtype=np.int64))
            pools[g] = np.concatenate([old, *new_ids.get(g, [])], axis=0)
            n_carried[g] = len(old)
        batches: list[tuple[int, np.ndarray]] = []
        carry: dict[int, np.ndarray] = {}
        for g, pool in pools.items():
            pos = rng.permutation(len(pool))
            n_full = len(pos) // batch_size
            batches += [(g, pos[i * batch_size : (i + 1) * batch_size]) for i in range(n_full)]
            rest = pos[n_full * batch_size :]
            if last:
                if len(rest) and not drop_last:
                    batches.append((g, rest))
            elif len(rest):
                carry[g] = rest
        order = rng.permutation(len(batches))
        batches = [batches[i] for i in order]
        yield _Block(blk, pools, n_carried, batches, carry)
        carry_ids = {g: pools[g][p] for g, p in carry.items()}


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


class WindowDataset(IterableDataset):
    """Shuffled batches of windows from one or several sources; see the module docstring.

    Parameters
    ----------
    sources : list of SourceInfo (see :func:`open_sources`).
    batch_size : windows per batch on this rank.
    seed : seeds the shard order, the shuffle blocks, nothing else.
    rank, world_size : this process's place in DDP (every rank reads a disjoint part).
    shuffle_windows : a shuffle block holds at least this many windows (several shards); a
        reader holds about one block of windows (decoded into its batches) plus the batches
        waiting in its queue: ~100 MB for 1024 windows of (12, 10, 200).
    scale : multiplies every window (the model config's ``input_scale``).
    mix_streams : batch together streams whose windows have the same shape (default), or keep
        every batch to one stream.
    drop_last : drop the short last batch of each worker's epoch (then some windows are not
        seen in that epoch).
    start_epoch, skip_batches : begin at batch ``skip_batches`` of the rank's endless sequence
        whose first epoch is ``start_epoch`` (resume).
    num_epochs : stop after this many epochs (None: endless).
    fast : use the fast whole-shard decoder where the layout allows.

    Each batch is a dict: ``windows`` float32 tensor (B, C, P, S), ``channel_mask`` bool
    (B, C), ``source`` int64 (B,) index into ``sources``, ``index`` int64 (B,) row in that
    source's stream, ``epoch`` int, ``worker`` int.
    """

    def __init__(
        self,
        sources: Sequence[SourceInfo],
        *,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle_windows: int = 1024,
        scale: float = 1.0,
        mix_streams: bool = True,
        drop_last: bool = False,
        start_epoch: int = 0,
        skip_batches: int = 0,
        num_epochs: int | None = None,
        fast: bool = True,
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size ({batch_size}) must be at least 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank ({rank}) must be in [0, world_size={world_size})")
        if skip_batches < 0:
            raise ValueError(f"skip_batches ({skip_batches}) must be >= 0")
        self.sources = list(sources)
        if not self.sources or sum(s.n for s in self.sources) == 0:
            raise ValueError("no windows to load: every source is empty")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shuffle_windows = max(1, int(shuffle_windows))
        self.scale = float(scale)
        self.mix_streams = bool(mix_streams)
        self.drop_last = bool(drop_last)
        self.start_epoch = int(start_epoch)
        self.skip_batches = int(skip_batches)
        self.num_epochs = num_epochs
        self.fast = fast
        keys: dict[Any, int] = {}
        self.groups = [
            keys.setdefault(s.shape if mix_streams else i, len(keys))
            for i, s in enumerate(self.sources)
        ]
        self._handles: dict[int, _SourceHandle] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    # -- the pure plan ------------------------------------------------------------------------

    @property
    def total_windows(self) -> int:
        return sum(s.n for s in self.sources)

    def pieces(self, epoch: int, worker: int = 0, num_workers: int = 1) -> np.ndarray:
        return epoch_pieces(
            self.sources,
            seed=self.seed,
            epoch=epoch,
            rank=self.rank,
            world_size=self.world_size,
            worker=worker,
            num_workers=num_workers,
        )

    def blocks(self, epoch: int, worker: int = 0, num_workers: int = 1) -> Iterator[_Block]:
        return _blocks(
            self.sources,
            self.groups,
            self.pieces(epoch, worker, num_workers),
            batch_size=self.batch_size,
            shuffle_windows=self.shuffle_windows,
            drop_last=self.drop_last,
            key=(self.seed, epoch, self.rank, self.world_size, worker, num_workers),
        )

    def batches_in_epoch(self, epoch: int, worker: int = 0, num_workers: int = 1) -> int:
        return sum(len(b.batches) for b in self.blocks(epoch, worker, num_workers))

    def batch_ids(self, epoch: int, worker: int = 0, num_workers: int = 1) -> list[np.ndarray]:
        """(source, row) ids of every batch of one worker's epoch, in order (no I/O)."""
        out = []
        for blk in self.blocks(epoch, worker, num_workers):
            out += [blk.pools[g][pos] for g, pos in blk.batches]
        return out

    # -- reading ------------------------------------------------------------------------------

    def _handle(self, s: int) -> _SourceHandle:
        h = self._handles.get(s)
        if h is None:
            h = self._handles[s] = _SourceHandle(self.sources[s], self.fast)
        return h

    def _materialise(self, blk: _Block, first: int, carried: dict[int, np.ndarray] | None,
                     shared: bool) -> tuple[list[torch.Tensor], dict[int, np.ndarray]]:
        """Decode the windows of batches ``first:`` of a block straight into their batch
        tensors (and the carried-over windows into a carry buffer): each window is written
        once, where it will be consumed. Returns (batch tensors, carry buffers)."""
        needed = blk.batches[first:]
        outs: list[torch.Tensor] = []
        dest: dict[int, list[np.ndarray | None]] = {
            g: [None] * len(pool) for g, pool in blk.pools.items()}
        for g, pos in needed:
            shape = self.sources[int(blk.pools[g][pos[0], 0])].shape
            t = torch.empty((len(pos), *shape), dtype=torch.float32)
            if shared:  # in a DataLoader worker: filled in shared memory, sent without a copy
                t.share_memory_()
            outs.append(t)
            flat = t.numpy().reshape(len(pos), -1).view(np.uint8)
            d = dest[g]
            for j, p in enumerate(pos.tolist()):
                d[p] = flat[j]
        carry: dict[int, np.ndarray] = {}
        for g, pos in blk.carry.items():
            shape = self.sources[int(blk.pools[g][pos[0], 0])].shape
            carry[g] = np.empty((len(pos), *shape), dtype=np.float32)
            flat = carry[g].reshape(len(pos), -1).view(np.uint8)
            d = dest[g]
            for j, p in enumerate(pos.tolist()):
                d[p] = flat[j]
        # windows carried in from the previous block
        for g, pool in blk.pools.items():
            nc = blk.n_carried[g]
            if not nc:
                continue
            if carried is not None and g in carried:
                for p in range(nc):
                    if dest[g][p] is not None:
                        dest[g][p][...] = carried[g][p].reshape(-1).view(np.uint8)
            else:  # resumed mid-epoch: fetch the carried windows by id
                for s in np.unique(pool[:nc, 0]).tolist():
                    sel = np.flatnonzero(pool[:nc, 0] == s)
                    self._handle(s).reader.read_rows(
                        pool[sel, 1].tolist(), [dest[g][p] for p in sel.tolist()])
                    if self.scale != 1.0:
                        for p in sel.tolist():
                            if dest[g][p] is not None:
                                dest[g][p].view(np.float32)[...] *= np.float32(self.scale)
        # the block's own pieces, one reader call per source (all its shards fetched together)
        fill = dict(blk.n_carried)
        by_source: dict[int, tuple[list[int], list]] = {}
        for s, lo, hi in blk.pieces.tolist():
            g = self.groups[s]
            rows, ds = by_source.setdefault(s, ([], []))
            rows += range(lo, hi)
            ds += dest[g][fill[g] : fill[g] + hi - lo]
            fill[g] += hi - lo
        for s, (rows, ds) in by_source.items():
            self._handle(s).reader.read_rows(rows, ds)
        if self.scale != 1.0:
            scale = np.float32(self.scale)
            fresh = {g: np.arange(blk.n_carried[g], len(pool)) for g, pool in blk.pools.items()}
            for (g, pos), t in zip(needed, outs, strict=True):
                new = np.isin(pos, fresh[g])
                t.numpy()[new] *= scale
            for g, pos in blk.carry.items():
                carry[g][np.isin(pos, fresh[g])] *= scale
        return outs, carry

    def _batch(self, blk: _Block, g: int, pos: np.ndarray, windows: torch.Tensor,
               epoch: int, worker: int) -> dict[str, Any]:
        ids = blk.pools[g][pos]
        mask = np.empty((len(ids), windows.shape[1]), dtype=bool)
        for s in np.unique(ids[:, 0]).tolist():
            sel = ids[:, 0] == s
            mask[sel] = self._handle(s).channel_mask[ids[sel, 1]]
        return {
            "windows": windows,
            "channel_mask": torch.from_numpy(mask),
            "source": torch.from_numpy(ids[:, 0].copy()),
            "index": torch.from_numpy(ids[:, 1].copy()),
            "epoch": epoch,
            "worker": worker,
        }

    def _worker_stream(self, worker: int, num_workers: int, skip: int,
                       shared: bool = False) -> Iterator[dict]:
        """Endless (or num_epochs) batches of one virtual worker, the first ``skip`` skipped."""
        epoch = self.start_epoch
        while self.num_epochs is None or epoch < self.start_epoch + self.num_epochs:
            carried: dict[int, np.ndarray] | None = None
            produced = 0
            for blk in self.blocks(epoch, worker, num_workers):
                nb = len(blk.batches)
                produced += nb
                if skip >= nb:  # nothing of this block is needed: no I/O
                    skip -= nb
                    carried = None
                    continue
                outs, carried = self._materialise(blk, skip, carried, shared)
                for (g, pos), windows in zip(blk.batches[skip:], outs, strict=True):
                    yield self._batch(blk, g, pos, windows, epoch, worker)
                skip = 0
            if produced == 0:
                raise ValueError(
                    f"worker {worker} of rank {self.rank} has no batch in epoch {epoch}: too few "
                    f"windows ({self.total_windows}) for world_size={self.world_size} x "
                    f"num_workers={num_workers} with batch_size={self.batch_size}"
                    + (" and drop_last" if self.drop_last else "")
                )
            epoch += 1

    def worker_start(self, worker: int, num_workers: int) -> tuple[int, int]:
        """(virtual worker, batches it skips) for reader ``worker`` of ``num_workers``.

        Batch i of the rank's sequence comes from virtual worker i % num_workers; after
        ``skip_batches=g`` the reader that is asked first (worker 0) plays virtual worker
        g % num_workers, and each virtual worker skips the batches it made before g.
        """
        g = self.skip_batches
        virtual = (worker + g) % num_workers
        skip = (g - virtual + num_workers - 1) // num_workers if g > virtual else 0
        return virtual, skip

    def stream(self, worker: int = 0, num_workers: int = 1, *, shared: bool = False
               ) -> Iterator[dict]:
        """The batches of reader ``worker`` of ``num_workers`` (see :meth:`worker_start`)."""
        virtual, skip = self.worker_start(worker, num_workers)
        return self._worker_stream(virtual, num_workers, skip, shared=shared)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        if info is None:
            return self.stream(0, 1)
        return self.stream(info.id, info.num_workers, shared=True)


_END = object()


class ThreadedLoader:
    """Reader threads in this process, each running one worker's stream of a WindowDataset;
    batches are taken from the threads round-robin, so the order equals a
    ``DataLoader(num_workers=n)`` over the same dataset.

    Why threads by default: a batch of 128 windows of (12, 10, 200) is 12 MB, and handing it
    from a worker process to the trainer (shared memory segment per tensor, page faults on
    both sides) cost ~20 ms per batch on the 2-core development machine, a ceiling of ~6,000
    windows/s before any reading is done; the readers decode in C (Blosc, numpy file reads),
    so threads overlap with the training step without that copy.
    """

    def __init__(self, dataset: WindowDataset, *, num_workers: int = 2, prefetch_factor: int = 4,
                 pin_memory: bool = False):
        if num_workers < 1:
            raise ValueError(f"num_workers ({num_workers}) must be at least 1 for threads")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = max(1, prefetch_factor)
        self.pin_memory = pin_memory

    def __iter__(self) -> Iterator[dict]:
        import queue
        import threading

        n = self.num_workers
        queues = [queue.Queue(self.prefetch_factor) for _ in range(n)]
        stop = threading.Event()

        def run(w: int) -> None:
            try:
                for batch in self.dataset.stream(w, n):
                    if self.pin_memory:
                        batch["windows"] = batch["windows"].pin_memory()
                        batch["channel_mask"] = batch["channel_mask"].pin_memory()
                    while not stop.is_set():
                        try:
                            queues[w].put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                queues[w].put(_END)
            except BaseException as exc:  # handed to the consumer, re-raised there
                queues[w].put(exc)

        threads = [threading.Thread(target=run, args=(w,), daemon=True,
                                    name=f"criss-cross-reader-{w}") for w in range(n)]
        for t in threads:
            t.start()
        try:
            active = list(range(n))
            while active:
                for w in list(active):
                    item = queues[w].get()
                    if item is _END:
                        active.remove(w)
                        continue
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            stop.set()
            for q in queues:  # unblock producers waiting on a full queue
                try:
                    while True:
                        q.get_nowait()
                except queue.Empty:
                    pass
            for t in threads:
                t.join(timeout=5)


def make_loader(
    dataset: WindowDataset,
    *,
    num_workers: int = 2,
    prefetch_factor: int = 4,
    pin_memory: bool = False,
    workers: str = "process",
) -> Any:
    """An iterable of the dataset's batches read ahead by ``num_workers`` readers.

    workers : "thread" (:class:`ThreadedLoader`, readers in this process, no inter-process
        copy) or "process" (a :class:`torch.utils.data.DataLoader` with worker processes).
        Both give the same batches in the same order. ``num_workers=0`` reads in the
        consuming thread (no overlap).
    """
    if workers not in ("thread", "process"):
        raise ValueError(f"workers must be 'thread' or 'process', got {workers!r}")
    if workers == "thread" and num_workers > 0:
        return ThreadedLoader(dataset, num_workers=num_workers, prefetch_factor=prefetch_factor,
                              pin_memory=pin_memory)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        **kwargs,
    )


def steps_per_epoch(total_windows: int, global_batch: int) -> int:
    """Optimizer steps that make one pass over ``total_windows`` at ``global_batch``."""
    return max(1, math.ceil(total_windows / global_batch))
