"""Moved: the loader lives in :mod:`criss_cross.data` (epoch plan, dataset, loader), the shard
decoder in :mod:`biosig_prep.store`. These names stay importable from here."""

from criss_cross.data import (
    ShardReader,
    SourceInfo,
    StreamSource,
    ThreadedLoader,
    WindowDataset,
    epoch_pieces,
    make_loader,
    open_sources,
    steps_per_epoch,
)

__all__ = [
    "SourceInfo",
    "StreamSource",
    "WindowDataset",
    "ShardReader",
    "open_sources",
    "epoch_pieces",
    "make_loader",
    "ThreadedLoader",
    "steps_per_epoch",
]
