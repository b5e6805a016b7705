"""The epoch plan: which (rank, worker) reads which windows, in which shuffled order (pure,
no I/O). See :mod:`criss_cross.data` for the whole picture."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["StreamSource", "epoch_pieces", "steps_per_epoch"]

# Salts keep the random streams of the plan apart from each other and from the masks.
_SALT_ORDER = 0x5EED_0001
_SALT_BLOCK = 0x5EED_0002


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSource:
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


# --------------------------------------------------------------------------------------------
# The epoch plan (pure)
# --------------------------------------------------------------------------------------------


def _units(sources: Sequence[StreamSource]) -> np.ndarray:
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
    sources: Sequence[StreamSource],
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
class _ShuffleBlock:
    """One shuffle block: the pieces to read and the batches cut from (carry + block)."""

    pieces: np.ndarray  # (m, 3)
    # per shape group: pool ids (n, 2) [source, row] = carried-in ids followed by the block's
    pools: dict[int, np.ndarray]
    n_carried: dict[int, int]
    batches: list[tuple[int, np.ndarray]]  # (group, positions into that group's pool)
    carry: dict[int, np.ndarray]  # positions into each pool carried to the next block


def _blocks(
    sources: Sequence[StreamSource],
    groups: Sequence[int],
    pieces: np.ndarray,
    *,
    batch_size: int,
    shuffle_windows: int,
    drop_last: bool,
    key: Sequence[int],
) -> Iterator[_ShuffleBlock]:
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
        yield _ShuffleBlock(blk, pools, n_carried, batches, carry)
        carry_ids = {g: pools[g][p] for g, p in carry.items()}



def steps_per_epoch(total_windows: int, global_batch: int) -> int:
    """Optimizer steps that make one pass over ``total_windows`` at ``global_batch``."""
    return max(1, math.ceil(total_windows / global_batch))
