"""The internal contract of :mod:`biosig_prep.convert`: the plain types and functions that
its modules share (a batch, the spec every task gets, the pieces and blocks the driver cuts,
the store access and config of a task, the status text of a record).

Shared names across the package's modules have no underscore: these here, and in the other
modules what their ``__all__`` lists (the tasks: ``stage.run_batch`` / ``spill_table`` /
``batch_marker`` / ``pick_table`` and ``blocks.write_block``, the staged windows
``stage.Staged``, ``driver.Driver``, ...). A name with an underscore is private to its module.
The package's public API is what :mod:`biosig_prep.convert` exports.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from biosig_prep.config import PrepConfig
from biosig_prep.readers import SourceFile
from biosig_prep.store import STAGING, RawIO, StreamSpec, WindowCodec

__all__ = ["Batch", "RunSpec", "Piece", "Block", "config_for", "io_for", "stream_order",
           "short_status", "STATUS_LEN"]

STATUS_LEN = 300  # characters of a record's status in records/ (longer ones are cut)


@dataclass(frozen=True)
class Batch:
    """Consecutive sources processed by one task; ``prefix`` is its staging folder."""

    index: int
    sources: tuple[SourceFile, ...]

    @property
    def prefix(self) -> str:
        return f"{STAGING}/b{self.index:06d}"


@dataclass(frozen=True)
class RunSpec:
    """What every task needs (small and picklable)."""

    url: str
    storage_options: dict | None
    config_json: str
    codecs: dict[str, WindowCodec]  # by modality
    part_bytes: int
    memory_bytes: int  # encoded bytes a batch keeps in memory before it spills to staging
    threads: int | None  # DREAMER trial threads per task (None: the worker's CPU count)


@functools.lru_cache(maxsize=8)
def config_for(config_json: str) -> PrepConfig:
    """The run's config from :attr:`RunSpec.config_json` (parsed once per process)."""
    return PrepConfig.model_validate_json(config_json)


@functools.lru_cache(maxsize=8)
def _raw_io(url: str, options_json: str) -> RawIO:
    return RawIO.open(url, json.loads(options_json) or None)


def io_for(spec: RunSpec) -> RawIO:
    """The store's :class:`RawIO` for a task (opened once per process)."""
    return _raw_io(spec.url, json.dumps(spec.storage_options or {}, sort_keys=True))


def stream_order(name: str) -> tuple[str, int]:
    """Sort key of a stream name: by modality, then by rate (``ecg@100`` before ``ecg@1000``)."""
    modality, _, rate = name.partition("@")
    return modality, int(rate) if rate.isdigit() else 0


def short_status(text: str) -> str:
    """``text`` on one line, cut to :data:`STATUS_LEN` characters (a record's status)."""
    text = " ".join(str(text).split())
    return text if len(text) <= STATUS_LEN else text[: STATUS_LEN - 3] + "..."


@dataclass(frozen=True)
class Piece:
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
class Block:
    table: str  # a stream name or "labels"
    index: int
    lo: int
    hi: int
    pieces: tuple[Piece, ...]
    stream: StreamSpec | None = None
    label_keys: tuple[str, ...] = ()

    @property
    def batches(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(p.batch for p in self.pieces))

    @property
    def marker(self) -> str:
        return f"{STAGING}/blocks/{self.table}/{self.index:08d}"
