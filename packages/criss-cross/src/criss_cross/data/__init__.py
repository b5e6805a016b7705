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
3. **Whole-shard reads** through :class:`biosig_prep.store.ShardReader` (biosig-prep owns the
   format): every shard of a block is fetched whole with one request (a plain file read for a
   local store; all of the block's requests at once on object storage) and each chunk is
   decoded (int16 -> physical float32) straight into its final place, the row of the batch
   tensor it was shuffled to: a window is written once. Any other layout falls back to zarr
   slicing (same values, tested).
4. **Overlap.** ``make_loader`` runs ``num_workers`` readers ahead of the consumer, each
   holding ``prefetch_factor`` batches: threads in the training process by default
   (``workers="thread"``, :class:`ThreadedLoader`; the decoding runs in C and numpy, and a 12 MB batch needs no
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

from biosig_prep.store import ShardReader
from criss_cross.data.dataset import WindowDataset, open_sources
from criss_cross.data.loader import ThreadedLoader, make_loader
from criss_cross.data.plan import StreamSource, epoch_pieces, steps_per_epoch

__all__ = [
    "StreamSource",
    "WindowDataset",
    "ShardReader",
    "open_sources",
    "epoch_pieces",
    "make_loader",
    "ThreadedLoader",
    "steps_per_epoch",
]
