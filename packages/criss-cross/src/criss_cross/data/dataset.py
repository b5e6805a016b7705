"""The dataset: shuffled batches of windows, read whole shards at a time through
:mod:`biosig_prep.store`. See :mod:`criss_cross.data` for the whole picture."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from criss_cross.data.plan import StreamSource, _blocks, _ShuffleBlock, epoch_pieces

__all__ = ["WindowDataset", "open_sources"]


def open_sources(
    stores: Sequence[str],
    streams: Sequence[str],
    *,
    storage_options: dict[str, Any] | None = None,
) -> list[StreamSource]:
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
    out: list[StreamSource] = []
    for name in streams:
        found = False
        for url, store in opened:
            if name not in store.stream_names:
                continue
            found = True
            s = store.stream(name)
            w = s.windows
            out.append(
                StreamSource(
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


class _SourceHandle:
    """Per-process open state of a source: its window reader and its whole channel and patch
    masks (small: (N, C) + (N, P) bool, ~2 MB for 88k 12-lead windows; read once)."""

    def __init__(self, info: StreamSource, fast: bool):
        from biosig_prep import open_store

        store = open_store(info.url, storage_options=info.storage_options)
        stream = store.stream(info.stream)
        self.reader = stream.reader(fast=fast)
        self.channel_mask = np.asarray(stream.channel_mask[:], dtype=bool)
        self.patch_mask = stream.patch_masks()


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


class WindowDataset(IterableDataset):
    """Shuffled batches of windows from one or several sources; see the module docstring.

    Parameters
    ----------
    sources : list of StreamSource (see :func:`open_sources`).
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

    Each batch is a dict: ``windows`` float32 tensor (B, C, P, S) in physical units times
    ``scale``, ``channel_mask`` bool (B, C), ``patch_mask`` bool (B, P) (True = the patch holds
    real samples; False = the zero padding of a record's last window), ``source`` int64 (B,)
    index into ``sources``, ``index`` int64 (B,) row in that source's stream, ``epoch`` int,
    ``worker`` int.
    """

    def __init__(
        self,
        sources: Sequence[StreamSource],
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

    def blocks(self, epoch: int, worker: int = 0, num_workers: int = 1) -> Iterator[_ShuffleBlock]:
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

    def _materialise(self, blk: _ShuffleBlock, first: int, carried: dict[int, np.ndarray] | None,
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

    def _batch(self, blk: _ShuffleBlock, g: int, pos: np.ndarray, windows: torch.Tensor,
               epoch: int, worker: int) -> dict[str, Any]:
        ids = blk.pools[g][pos]
        mask = np.empty((len(ids), windows.shape[1]), dtype=bool)
        pmask = np.empty((len(ids), windows.shape[2]), dtype=bool)
        for s in np.unique(ids[:, 0]).tolist():
            sel = ids[:, 0] == s
            handle = self._handle(s)
            mask[sel] = handle.channel_mask[ids[sel, 1]]
            pmask[sel] = handle.patch_mask[ids[sel, 1]]
        return {
            "windows": windows,
            "channel_mask": torch.from_numpy(mask),
            "patch_mask": torch.from_numpy(pmask),
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

