"""``biosig-prep convert``: source files in, a complete store out; parallel and resumable.

How a run goes
--------------
1. **Plan.** :func:`~biosig_prep.readers.discover` lists the sources (path-sorted); they are
   cut into batches of ``batch_size`` consecutive files (a DREAMER file is a batch of its own:
   the ``.mat`` is read once and its trials are processed on a thread pool). The sources, the
   config, the layout settings and the package version give the run's *fingerprint*.
2. **Process** (parallel: one task per batch). A batch task reads and processes its records one
   at a time and encodes every window exactly as it will sit in its shard (Blosc, one window
   per chunk). The encoded windows stay in the worker's memory, unless the batch outgrows
   ``memory_bytes``: then they are *spilled* to ``_convert/b<batch>/data/``. A record that
   cannot be read or fails QC gets a ``records/`` row with the reason as its status; it never
   stops the batch.
3. **Admit** (the driver, in plan order). Window counts are only known after processing, so the
   driver admits finished batches in plan order (the *frontier*): an admitted batch gets its
   final window offsets in every stream (prefix sums) and its ``records/`` rows are written.
   Nothing is predicted from headers; a failed record simply contributes no windows, so the
   counts are exact and there are no gaps. At most ``lookahead`` batches run ahead of the
   frontier.
4. **Write blocks** (parallel: one task per block). A block is a run of whole shards
   (``block_size`` windows, a multiple of the shard size K) whose windows have all been
   admitted. Its task receives the batches' data it needs (dask moves it if it lives on
   another worker), writes complete shard objects and the block's whole chunks of ``record``,
   ``start``, ``channel_mask`` (and ``labels/``), then the marker
   ``_convert/blocks/<stream>/<block>``. Blocks are aligned to shards and chunks, so parallel
   writers never write the same object, and workers never touch metadata. Data that waits for
   its block longer than ``spill_age`` admitted batches (a slowly filling low-rate stream) is
   spilled, so memory stays flat. Once all of a batch's windows are in written blocks or
   spilled, the driver writes the batch's marker ``_convert/b<batch>/done.json`` (its rows and
   window counts).
5. **Finish.** Array lengths and the summary are set, the staging group is deleted, and only
   then ``complete = True`` is written.

Resume: a killed run leaves ``complete = False`` and its markers. Rerunning the same command
(same fingerprint) reads the batch markers (those batches are not processed again), skips the
blocks whose markers exist, and does the rest. A batch has a marker only when its windows are
durable (in written blocks, or spilled), and every object's content is a deterministic function
of the plan, so the result equals an uninterrupted run's. A store of another fingerprint at the
destination is refused unless ``overwrite=True``.

Executors: ``workers=0`` runs everything in this process, one task at a time (tests,
debugging); ``workers=N`` starts a local dask.distributed cluster of N single-threaded worker
processes; ``scheduler=ADDRESS`` (or a ``Client``) runs on an existing dask cluster, whose
workers must see the sources and the destination URL. The default (``workers=None``) is one
worker per CPU core: threads of this process, a plain priority thread pool (the numerical work
of filters, resampling, compression and file I/O releases the GIL, while worker processes cost
seconds to start and ~40 % more CPU per record, and dask's in-process scheduler ~1 ms of CPU
per record), unless the machine has at least ``AUTO_PROCESSES_MIN_CORES`` cores and the job at
least ``AUTO_PROCESSES_BYTES`` of input: then a local dask process cluster. A single batch runs
in this process. ``processes=True/False`` forces either. The task graph is the same
whichever executor runs it.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import io as _io
import json
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from biosig_prep import __version__
from biosig_prep.config import PrepConfig
from biosig_prep.leads import stream_channels
from biosig_prep.processing import process_dreamer_trial, process_recording
from biosig_prep.progress import progress_bar
from biosig_prep.readers import ReadError, SourceFile, discover, read_dreamer, read_source
from biosig_prep.recording import ProcessedRecord
from biosig_prep.store import (
    LABELS,
    LABELS_CHUNK,
    RECORDS_CHUNK,
    SCHEMA_VERSION,
    STAGING,
    RawIO,
    StoreError,
    StoreWriter,
    StreamSpec,
    WindowCodec,
    auto_block_size,
    auto_shard_size,
    chunk_key,
    small_chunk_bytes,
)

__all__ = ["convert", "ConvertSummary", "SkippedRecord", "plan_batches", "DEFAULT_BATCH_SIZE"]


DEFAULT_BATCH_SIZE = 32  # source files per batch task (a DREAMER file is always alone)
DEFAULT_PART_BYTES = 32 << 20  # encoded windows per part (in memory, or a spilled file)
DEFAULT_MEMORY_BYTES = 128 << 20  # a batch holding more encoded bytes spills to staging
DEFAULT_SHARD_BYTES = 4 << 20  # target raw bytes of one shard (K windows)
DEFAULT_BLOCK_BYTES = 8 << 20  # target raw bytes of one write task (whole shards)
# workers=None: worker processes (rather than threads of this process) for at least this much
# input on a machine with at least this many cores. Worker processes cost seconds to start and
# ~40 % more CPU per record (dask, transfers between workers); threads are limited by the GIL
# to ~1.5-2 cores' worth of work.
AUTO_PROCESSES_BYTES = 256 << 20
AUTO_PROCESSES_MIN_CORES = 4
MAX_SKIPPED_LISTED = 1000  # skipped records kept in the summary object (all are in records/)
_STATUS_LEN = 300


@dataclass(frozen=True)
class SkippedRecord:
    """A record that was not converted: its id, its file and the reason (its ``status``)."""

    id: str
    path: str
    status: str


@dataclass
class ConvertSummary:
    """What a run did. ``records_*`` and ``windows`` are also in the store's ``summary``."""

    url: str
    records_in: int = 0
    records_ok: int = 0
    records_skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)
    skipped: list[SkippedRecord] = field(default_factory=list)  # first MAX_SKIPPED_LISTED
    problems: list[str] = field(default_factory=list)  # inputs that gave no record at all
    sources: int = 0
    batches: int = 0
    batches_resumed: int = 0  # batches found finished by an earlier, interrupted run
    already_complete: bool = False  # the store was complete already: nothing was done
    seconds: float = 0.0

    def store_summary(self) -> dict[str, Any]:
        """The ``summary`` root attribute of the store."""
        return {"records_in": self.records_in, "records_ok": self.records_ok,
                "records_skipped": self.records_skipped,
                "skipped_reasons": dict(sorted(self.skipped_reasons.items())),
                "windows": dict(sorted(self.windows.items(), key=lambda kv: _stream_order(kv[0]))),
                "problems": list(self.problems)}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["skipped"] = [asdict(s) for s in self.skipped]
        return out


# ------------------------------------------------------------------------------------------
# The plan
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Batch:
    index: int
    sources: tuple[SourceFile, ...]

    @property
    def prefix(self) -> str:
        return f"{STAGING}/b{self.index:06d}"

    @property
    def result_key(self) -> str:
        """The marker of a finished batch, for the driver (``done.json`` once durable)."""
        return f"{self.prefix}/result.json"


def plan_batches(sources: Sequence[SourceFile], batch_size: int = DEFAULT_BATCH_SIZE
                 ) -> list[tuple[SourceFile, ...]]:
    """Consecutive runs of at most ``batch_size`` sources; a DREAMER file is a batch alone."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batches: list[tuple[SourceFile, ...]] = []
    current: list[SourceFile] = []
    for src in sources:
        if src.format == "dreamer":
            if current:
                batches.append(tuple(current))
                current = []
            batches.append((src,))
            continue
        current.append(src)
        if len(current) == batch_size:
            batches.append(tuple(current))
            current = []
    if current:
        batches.append(tuple(current))
    return batches


@dataclass(frozen=True)
class _RunSpec:
    """What every task needs (small and picklable)."""

    url: str
    storage_options: dict | None
    config_json: str
    codec: WindowCodec
    part_bytes: int
    memory_bytes: int  # encoded bytes a batch keeps in memory before it spills to staging
    threads: int | None  # DREAMER trial threads per task (None: the worker's CPU count)


@functools.lru_cache(maxsize=8)
def _config(config_json: str) -> PrepConfig:
    return PrepConfig.model_validate_json(config_json)


@functools.lru_cache(maxsize=8)
def _raw_io(url: str, options_json: str) -> RawIO:
    return RawIO.open(url, json.loads(options_json) or None)


def _io_for(spec: _RunSpec) -> RawIO:
    return _raw_io(spec.url, json.dumps(spec.storage_options or {}, sort_keys=True))


# ------------------------------------------------------------------------------------------
# Phase 1: process a batch and stage its windows (runs on a worker)
# ------------------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _STATUS_LEN else text[: _STATUS_LEN - 3] + "..."


def _failed(src: SourceFile, status: str, record_id: str | None = None) -> ProcessedRecord:
    return ProcessedRecord(record_id=record_id or src.record_id, source="unknown", path=src.path,
                           fs_original=float("nan"), n_samples=0, status=_short(status))


def _records_of(src: SourceFile, config: PrepConfig, threads: int) -> Iterator[ProcessedRecord]:
    """The processed records of one source file; errors become statuses, never exceptions."""
    if src.format == "dreamer":
        yield from _dreamer_records(src, config, threads)
        return
    try:
        recordings = read_source(src)
    except ReadError as exc:
        yield _failed(src, f"read: {exc.reason}")
        return
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a run
        yield _failed(src, f"read: {type(exc).__name__}: {exc}")
        return
    for rec in recordings:
        try:
            yield process_recording(rec, config)
        except Exception as exc:  # noqa: BLE001
            yield _failed(src, f"error: {type(exc).__name__}: {exc}", rec.record_id)


def _ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], threads: int) -> Iterator[Any]:
    """``map(fn, items)`` on a thread pool, in order, at most ``2 * threads`` items in flight."""
    if threads <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _dreamer_records(src: SourceFile, config: PrepConfig, threads: int
                     ) -> Iterator[ProcessedRecord]:
    """Trials of a DREAMER file: the .mat is read once, trials are processed on threads."""
    try:
        data = read_dreamer(src.path, ecg_scale=config.dreamer.ecg_scale)
    except ReadError as exc:
        yield _failed(src, f"read: {exc.reason}")
        return
    except Exception as exc:  # noqa: BLE001
        yield _failed(src, f"read: {type(exc).__name__}: {exc}")
        return
    trials = data.trials()
    try:
        yield from _ordered_map(lambda t: process_dreamer_trial(t, config), trials, threads)
    except ReadError as exc:  # a malformed subject: the rest of the file is unreadable
        yield _failed(src, f"read: {exc.reason}", f"{src.record_id}/unreadable")


@dataclass
class _Staged:
    """Encoded windows of one stream of one batch, with their bookkeeping.

    In memory, window i is ``mem[i]``; spilled (``mem`` is None), it is bytes ``offset[i] :
    offset[i] + sizes[i]`` of the part file ``parts[part[i]]``.
    """

    sizes: np.ndarray
    part: np.ndarray
    offset: np.ndarray
    start: np.ndarray
    record: np.ndarray  # row within the batch
    mask: np.ndarray  # (n, C)
    parts: list[str]
    mem: list[bytes] | None = None

    def window_bytes(self, io: RawIO, lo: int, hi: int) -> list:
        """Encoded bytes of windows ``lo..hi`` (one ranged read per part file)."""
        if self.mem is not None:
            return self.mem[lo:hi]
        out: list[memoryview] = []
        at = lo
        while at < hi:
            part = int(self.part[at])
            end = at
            while end < hi and self.part[end] == part:
                end += 1
            first = int(self.offset[at])
            data = memoryview(io.get(self.parts[part], first,
                                     int(self.offset[end - 1] + self.sizes[end - 1])))
            for i in range(at, end):
                o = int(self.offset[i]) - first
                out.append(data[o:o + int(self.sizes[i])])
            at = end
        return out

    def index_bytes(self) -> bytes:
        buf = _io.BytesIO()
        np.savez(buf, sizes=self.sizes, part=self.part, offset=self.offset, start=self.start,
                 record=self.record, mask=self.mask)
        return buf.getvalue()

    @classmethod
    def from_staging(cls, io: RawIO, base: str) -> _Staged:
        idx = _load_npz(io, f"{base}/index.npz")
        n_parts = int(idx["part"].max()) + 1 if len(idx["part"]) else 0
        return cls(parts=[f"{base}/p{k:04d}" for k in range(n_parts)], **idx)


@dataclass
class _BatchResult:
    """What a batch task returns: its marker (JSON-able) and its encoded windows."""

    marker: dict[str, Any]
    streams: dict[str, _Staged]
    labels: dict[str, np.ndarray] | None


class _StreamStage:
    """Collects the encoded windows of one stream of one batch (written out as part files of
    about ``part_bytes`` once the batch spills)."""

    def __init__(self, batch: _BatchStage, name: str) -> None:
        self.batch, self.name = batch, name
        self.pending: list[bytes] = []  # windows not in a part file (all of them, in memory)
        self.pending_bytes = 0
        self.parts: list[str] = []
        self.sizes: list[int] = []
        self.part_of: list[int] = []
        self.offsets: list[int] = []  # in the window's part file
        self.starts: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.entries: list[list[int]] = []  # [row, n_windows, channel variant]
        self.variants: list[tuple[str, ...]] = []
        self.info: dict[str, Any] = {}

    def add(self, row: int, sw) -> None:
        channels = tuple(sw.channels)
        if channels not in self.variants:
            self.variants.append(channels)
        if not self.info:
            self.info = {"modality": sw.modality, "fs": int(sw.fs), "units": sw.units}
        windows = np.ascontiguousarray(sw.windows, dtype="<f4")
        n = int(windows.shape[0])
        encoded = [self.batch.codec.encode(w) for w in windows]
        size = sum(map(len, encoded))
        self.pending += encoded
        self.pending_bytes += size
        self.sizes += map(len, encoded)
        self.batch.in_memory += size
        if self.batch.spilling and self.pending_bytes >= self.batch.part_bytes:
            self.spill(final=False)
        self.entries.append([row, n, self.variants.index(channels)])
        if n:
            self.starts.append(np.asarray(sw.start, dtype=np.int64))
            self.masks.append(np.asarray(sw.channel_mask, dtype=bool))
            self.rows.append(np.full(n, row, dtype=np.int64))

    def spill(self, final: bool) -> None:
        """Write the pending windows to part files of about ``part_bytes`` (a last, smaller
        one only when ``final``)."""
        limit = self.batch.part_bytes
        while self.pending and (final or self.pending_bytes >= limit):
            take, size = 0, 0
            while take < len(self.pending) and (size < limit or take == 0):
                size += len(self.pending[take])
                take += 1
            self.batch.io.put(f"{self.batch.data}/{self.name}/p{len(self.parts):04d}",
                              self.pending[:take])
            offset = 0
            for data in self.pending[:take]:
                self.part_of.append(len(self.parts))
                self.offsets.append(offset)
                offset += len(data)
            self.parts.append(f"{self.batch.data}/{self.name}/p{len(self.parts):04d}")
            del self.pending[:take]
            self.pending_bytes -= size
            self.batch.in_memory -= size

    def finish(self) -> tuple[dict[str, Any], _Staged]:
        n = len(self.sizes)
        mem = None
        if self.batch.spilling:
            self.spill(final=True)
            part, offset = self.part_of, self.offsets
        else:
            mem, part, offset = self.pending, [-1] * n, [0] * n
        width = max((m.shape[1] for m in self.masks), default=0)
        masks = np.zeros((n, width), dtype=bool)
        at = 0
        for m in self.masks:
            masks[at:at + len(m), : m.shape[1]] = m
            at += len(m)
        staged = _Staged(sizes=np.asarray(self.sizes, dtype=np.int64),
                         part=np.asarray(part, np.int32), offset=np.asarray(offset, np.int64),
                         start=(np.concatenate(self.starts) if self.starts
                                else np.zeros(0, np.int64)),
                         record=(np.concatenate(self.rows) if self.rows
                                 else np.zeros(0, np.int64)),
                         mask=masks, parts=self.parts, mem=mem)
        info = {**self.info, "variants": [list(v) for v in self.variants],
                "entries": self.entries, "count": n}
        return info, staged


class _BatchStage:
    """The output of one batch task as it is produced."""

    def __init__(self, spec: _RunSpec, batch: _Batch, io: RawIO) -> None:
        self.io, self.codec = io, spec.codec
        self.part_bytes, self.memory_bytes = spec.part_bytes, spec.memory_bytes
        self.batch = batch
        self.data = f"{batch.prefix}/data"
        self.in_memory = 0  # encoded bytes held
        self.spilling = False
        self.streams: dict[str, _StreamStage] = {}
        self.rows: list[dict[str, Any]] = []
        self.labels: dict[str, list[np.ndarray]] = {}
        self.label_entries: list[list[int]] = []
        self.label_keys: list[str] | None = None

    def add(self, pr: ProcessedRecord) -> None:
        row = len(self.rows)
        self.rows.append({"id": pr.record_id, "source": pr.source, "path": pr.path,
                          "status": _short(pr.status),
                          "metadata": json.dumps(pr.metadata, sort_keys=True,
                                                 default=_json_default),
                          "fs": float(pr.fs_original), "n_samples": int(pr.n_samples)})
        if not pr.ok:
            return
        for name in sorted(pr.streams):
            stage = self.streams.get(name)
            if stage is None:
                stage = self.streams[name] = _StreamStage(self, name)
            stage.add(row, pr.streams[name])
        if pr.labels is not None:
            keys = sorted(pr.labels)
            self.label_keys = self.label_keys or keys
            same = keys == self.label_keys
            n = len(pr.labels[keys[0]]) if keys else 0
            self.label_entries.append([row, n if same else 0, int(same)])
            if same:
                for k in keys:
                    self.labels.setdefault(k, []).append(np.asarray(pr.labels[k], np.int64))
        if not self.spilling and self.in_memory > self.memory_bytes:
            self.spilling = True
            for stage in self.streams.values():
                stage.spill(final=False)

    def finish(self) -> _BatchResult:
        streams: dict[str, _Staged] = {}
        infos: dict[str, Any] = {}
        for name, stage in sorted(self.streams.items()):
            infos[name], streams[name] = stage.finish()
            stage.batch, stage.pending = None, []  # no cycle keeps the windows alive
        self.streams.clear()
        labels = None
        if self.label_keys is not None:
            labels = {k: np.concatenate(v) for k, v in self.labels.items()}
        marker: dict[str, Any] = {
            "batch": self.batch.index, "n_sources": len(self.batch.sources), "rows": self.rows,
            "streams": infos,
            "labels": None if self.label_keys is None else {"keys": self.label_keys,
                                                             "entries": self.label_entries},
            "spilled": [],
        }
        if self.spilling:  # everything to the staging area: the batch is durable already
            for name, staged in streams.items():
                self.io.put(f"{self.data}/{name}/index.npz", staged.index_bytes())
            if labels:
                _put_labels(self.io, f"{self.data}/{LABELS}", labels)
            marker["spilled"] = sorted(streams) + ([LABELS] if labels else [])
        return _BatchResult(marker=marker, streams=streams, labels=labels)


def _put_labels(io: RawIO, base: str, labels: dict[str, np.ndarray]) -> None:
    buf = _io.BytesIO()
    np.savez(buf, **labels)
    io.put(f"{base}/labels.npz", buf.getvalue())


def _run_batch(spec: _RunSpec, batch: _Batch, report: bool = True) -> _BatchResult:
    """Process one batch (runs on a worker); with ``report``, also write its marker to
    ``batch.result_key`` for the driver."""
    config = _config(spec.config_json)
    threads = spec.threads or os.cpu_count() or 1
    io = _io_for(spec)
    stage = _BatchStage(spec, batch, io)
    for src in batch.sources:
        for pr in _records_of(src, config, threads):
            stage.add(pr)
    result = stage.finish()
    if report:
        io.put(batch.result_key, json.dumps(result.marker).encode())
    _trim_memory()
    return result


def _pick(result: _BatchResult, table: str) -> _Staged | dict[str, np.ndarray] | None:
    """One table's part of a batch result (so the rest of the result can be freed)."""
    return result.labels if table == LABELS else result.streams.get(table)


def _spill(spec: _RunSpec, batch: int, table: str, data: _Staged | dict[str, np.ndarray]
           ) -> str:
    """Write one table's windows of a batch to the staging area (runs where ``data`` lives);
    later blocks read them from there."""
    io = _io_for(spec)
    base = f"{STAGING}/b{batch:06d}/data/{table}"
    if table == LABELS:
        _put_labels(io, base, data)
        return table
    if data.mem is not None:  # parts of about part_bytes, cut at window boundaries
        part = np.zeros(len(data.mem), np.int32)
        offset = np.zeros(len(data.mem), np.int64)
        first, n_parts = 0, 0
        while first < len(data.mem):
            last, size = first, 0
            while last < len(data.mem) and (size < spec.part_bytes or last == first):
                offset[last] = size
                size += len(data.mem[last])
                last += 1
            io.put(f"{base}/p{n_parts:04d}", data.mem[first:last])
            part[first:last] = n_parts
            first, n_parts = last, n_parts + 1
        data = replace(data, part=part, offset=offset, mem=None)
    io.put(f"{base}/index.npz", data.index_bytes())
    return table


# ------------------------------------------------------------------------------------------
# Phase 2: write one block of whole shards / chunks (runs on a worker)
# ------------------------------------------------------------------------------------------
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


def _load_npz(io: RawIO, key: str) -> dict[str, np.ndarray]:
    data = io.get(key)
    if data is None:
        raise FileNotFoundError(f"staging object {key} is missing; the conversion cannot "
                                "resume (delete the destination and convert again)")
    with np.load(_io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


def _write_block(spec: _RunSpec, block: _Block, *data: Any) -> tuple[str, int]:
    """Write one block. ``data`` holds this table's part of each batch in ``block.batches``
    (a ``_Staged``, a labels dict, or None: read it from the staging area)."""
    io = _io_for(spec)
    by_batch = dict(zip(block.batches, data, strict=True))
    if block.stream is None:
        _write_label_block(io, block, by_batch)
    else:
        _write_stream_block(io, block, block.stream, by_batch)
    io.put(block.marker, b"")
    return block.table, block.index


@functools.lru_cache(maxsize=1)
def _libc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _trim_memory() -> None:
    """Give freed heap memory back to the OS (once per batch: a trim costs ~ms). Encoded
    windows (~70 kB each) come and go by the thousand on several threads, and glibc keeps such
    freed memory in its arenas: without this the RSS of a long run creeps up further above
    its bounded live data."""
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)


def _write_stream_block(io: RawIO, block: _Block, s: StreamSpec, by_batch: dict[int, Any]
                        ) -> None:
    chunks: list = []
    records, starts, masks = [], [], []
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


# ------------------------------------------------------------------------------------------
# Executors: this process (inline or threads), or dask.distributed
# ------------------------------------------------------------------------------------------
class _LocalTask:
    def __init__(self, fn: Callable, args: tuple) -> None:
        self.fn, self.args, self.value = fn, args, None

    def run(self) -> Any:
        args = [a.value if isinstance(a, _LocalTask) else a for a in self.args]
        self.value = self.fn(*args)
        return self.value


class _LocalExecutor:
    """Tasks in this process, highest priority first: one at a time in the calling thread
    (``threads=0``), or on a pool of ``threads`` threads. No scheduler, no serialization: the
    numerical work (filters, resampling, compression, file I/O) releases the GIL."""

    reports = False  # batch markers come back with the results

    def __init__(self, threads: int = 0) -> None:
        self._heap: list[tuple[int, int, Any, _LocalTask]] = []
        self._n = 0
        self._pending = 0
        self.lookahead = threads + 2 if threads else 1
        self._threads: list[threading.Thread] = []
        if threads:
            self._cv = threading.Condition()
            self._done: queue.Queue = queue.Queue()
            self._closed = False
            for i in range(threads):
                t = threading.Thread(target=self._work, name=f"biosig-prep-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def submit(self, tag: Any, fn: Callable, *args: Any, priority: int = 0) -> _LocalTask:
        task = _LocalTask(fn, args)
        item = (-priority, self._n, tag, task)
        self._n += 1
        self._pending += 1
        if self._threads:
            with self._cv:
                heapq.heappush(self._heap, item)
                self._cv.notify()
        else:
            heapq.heappush(self._heap, item)
        return task

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                _, _, tag, task = heapq.heappop(self._heap)
            try:
                self._done.put((tag, task.run(), None))
            except BaseException as exc:  # noqa: BLE001 - re-raised by next_done
                self._done.put((tag, None, exc))

    def __len__(self) -> int:
        return self._pending

    def next_done(self) -> tuple[Any, Any]:
        if self._threads:
            tag, value, exc = self._done.get()
            self._pending -= 1
            if exc is not None:
                raise exc
        else:
            _, _, tag, task = heapq.heappop(self._heap)
            self._pending -= 1
            value = task.run()
        return tag, value.marker if isinstance(value, _BatchResult) else value

    def pick(self, handle: _LocalTask, table: str) -> Any:
        return _pick(handle.value, table)

    def close(self) -> None:
        if self._threads:
            with self._cv:
                self._closed = True
                self._heap.clear()
                self._cv.notify_all()
            for t in self._threads:
                t.join()
        self._heap.clear()


class _DaskExecutor:
    """Tasks on a dask.distributed cluster, reported in completion order.

    A batch's result stays on its worker (block tasks receive it from there); the driver reads
    only its marker, which the batch task also writes to the staging area.
    """

    def __init__(self, client: Any, io: RawIO, cluster: Any = None,
                 owns_client: bool = True) -> None:
        from dask.distributed import as_completed

        self.client, self.io, self.cluster, self.owns_client = client, io, cluster, owns_client
        self._done = as_completed()
        self._tags: dict[str, Any] = {}
        self._run = uuid.uuid4().hex[:8]
        threads = sum(client.nthreads().values()) or 1
        self.lookahead = threads + 2  # batches ahead of the frontier: bounds the memory
        self.reports = True  # batch tasks write their marker for the driver

    def submit(self, tag: Any, fn: Callable, *args: Any, priority: int = 0) -> Any:
        key = f"biosig-prep-{self._run}-" + "-".join(str(t) for t in tag)
        fut = self.client.submit(fn, *args, key=key, priority=priority, pure=False, retries=0)
        self._tags[fut.key] = tag
        self._done.add(fut)
        return fut

    def __len__(self) -> int:
        return self._done.count()

    def pick(self, handle: Any, table: str) -> Any:
        """A future of one table's part of a batch result (on the same worker)."""
        return self.client.submit(_pick, handle, table, key=f"{handle.key}-{table}",
                                  priority=100, pure=False)

    def next_done(self) -> tuple[Any, Any]:
        fut = next(self._done)
        tag = self._tags.pop(fut.key)
        if fut.status == "error":
            fut.result()  # raises the task's exception
        if tag[0] == "batch":
            data = self.io.get(_Batch(tag[1], ()).result_key)
            return tag, json.loads(data)
        return tag, fut.result()

    def close(self) -> None:
        try:
            self._done.clear()
        except Exception:  # noqa: BLE001 - best effort while shutting down
            pass
        if self.owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _start_executor(workers: int | None, scheduler: Any, batches: Sequence[_Batch], io: RawIO,
                    processes: bool | None = None):
    """The executor of a run (see the module docstring for the choices)."""
    if scheduler is None and (workers == 0 or (workers is None and len(batches) <= 1)):
        return _LocalExecutor(0)
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 0:
        raise ValueError(f"workers must be >= 0, got {n}")
    if scheduler is None:
        if processes is None:
            processes = workers is not None or (
                n >= AUTO_PROCESSES_MIN_CORES and _input_bytes(batches) >= AUTO_PROCESSES_BYTES)
        if not processes:
            return _LocalExecutor(n)
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        if isinstance(scheduler, Client):
            return _DaskExecutor(scheduler, io, owns_client=False)
        return _DaskExecutor(Client(str(scheduler)), io)
    import dask

    # No statistical profiler (it samples every thread's stack every 10 ms), and no
    # MALLOC_TRIM_THRESHOLD_ in the workers' environment: setting it fixes glibc's mmap
    # threshold at 128 kB, so every numpy temporary of a record is a fresh mmap, page-faulted
    # in and unmapped again (measured: 8x the page faults and ~1.8x the CPU time per record).
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
               if not k.startswith("MALLOC_")}
    with dask.config.set({"distributed.worker.profile.enabled": False,
                          "distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        return _DaskExecutor(Client(cluster), io, cluster)


def _input_bytes(batches: Sequence[_Batch]) -> int:
    """Bytes of the source files still to convert (header and signal file of a record)."""
    total = 0
    for batch in batches:
        for src in batch.sources:
            for path in {src.path, os.path.splitext(src.path)[0] + ".mat",
                         os.path.splitext(src.path)[0] + ".dat"}:
                try:
                    total += os.path.getsize(path)
                except OSError:
                    pass
    return total


# ------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------
@dataclass
class _Table:
    """A stream (or the labels) as the frontier fills it."""

    name: str
    block_size: int
    stream: StreamSpec | None = None
    label_keys: tuple[str, ...] = ()
    count: int = 0  # windows (rows) admitted so far
    pieces: deque = field(default_factory=deque)  # _Piece not yet in a submitted block
    next_block: int = 0


class _Progress:
    """A rich progress bar over source files (a no-op when disabled)."""

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self._bar = progress_bar(enabled, "files", "{task.fields[note]}")
        if self._bar is not None:
            self._task = self._bar.add_task("converting", total=total, completed=done, note="")
            self._bar.start()

    def advance(self, n: int, note: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n, note=note)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@dataclass
class _Entry:
    """One table's windows of one batch, from admission until they are durable."""

    handle: Any  # the data (an object, a future) for block tasks; None: in the staging area
    admitted: int  # frontier position when the batch was admitted
    open_pieces: int = 0  # pieces not yet in a submitted block
    readers: int = 0  # submitted block tasks that read it and have not finished
    spilled: bool = False  # its data is in the staging area
    spilling: bool = False  # a spill task is running

    @property
    def written(self) -> bool:
        return self.open_pieces == 0 and self.readers == 0


class _Driver:
    """Admits batches in plan order, cuts blocks, and keeps track of what is durable.

    A batch becomes *durable* (its ``done.json`` is written) when each of its tables (streams,
    labels) is written in finished blocks or spilled to the staging area. Data that waits
    longer than ``spill_age`` admitted batches for its block (a slowly filling low-rate stream)
    is spilled, so memory stays bounded and a kill loses at most a few batches of work.
    """

    def __init__(self, spec: _RunSpec, writer: StoreWriter, config: PrepConfig,
                 batches: list[_Batch], summary: ConvertSummary, shard_bytes: int,
                 block_bytes: int, spill_age: int = 4) -> None:
        self.spec, self.writer, self.config = spec, writer, config
        self.io = writer.raw
        self.batches = batches
        self.summary = summary
        self.shard_bytes, self.block_bytes, self.spill_age = shard_bytes, block_bytes, spill_age
        self.tables: dict[str, _Table] = {}
        self.markers: dict[int, dict[str, Any]] = {}  # finished, waiting for the frontier
        self.resumed: set[int] = set()  # batches done by an earlier run
        self.handles: dict[int, Any] = {}  # batch -> its result (a future) until admitted
        self.entries: dict[int, dict[str, _Entry]] = {}  # batch -> table -> entry
        self.pending: dict[int, dict[str, Any]] = {}  # admitted, done.json not yet written
        self.frontier = 0  # next batch to admit
        self.n_rows = 0
        self.rows_pending: list[dict[str, Any]] = []
        self.rows_written = 0
        self.done_blocks: set[tuple[str, int]] = set()
        self.reasons: Counter = Counter()
        self.executor: Any = None
        self.running: dict[tuple, Any] = {}  # tag -> block or (batch, table) of a spill

    # -- resume --------------------------------------------------------------------------
    def load_markers(self) -> None:
        for key in self.io.list(f"{STAGING}/"):
            if key.startswith(f"{STAGING}/b") and key.endswith("/done.json"):
                try:
                    marker = json.loads(self.io.get(key) or b"")
                    self.markers[int(marker["batch"])] = marker
                except (ValueError, KeyError, TypeError):
                    continue  # a torn marker: that batch runs again
            elif key.startswith(f"{STAGING}/blocks/"):
                _, _, table, index = key.split("/", 3)
                self.done_blocks.add((table, int(index)))
        self.resumed = set(self.markers)

    # -- tasks ---------------------------------------------------------------------------
    def submit_batch(self, batch: _Batch) -> None:
        ex = self.executor
        self.handles[batch.index] = ex.submit(("batch", batch.index), _run_batch, self.spec,
                                              batch, ex.reports, priority=0)

    def task_done(self, tag: tuple, result: Any) -> None:
        if tag[0] == "batch":
            self.markers[tag[1]] = result
            self.admit_ready()
        elif tag[0] == "block":
            self._block_done(self.running.pop(tag))
        else:  # spill
            b, table = self.running.pop(tag)
            entry = self.entries[b][table]
            entry.spilled, entry.spilling, entry.handle = True, False, None
            self._settle(b)

    # -- admitting batches in plan order -------------------------------------------------
    def _stream_table(self, name: str, info: dict[str, Any], channels: tuple[str, ...]
                      ) -> _Table:
        window_bytes = 4 * len(channels) * self.config.window_samples
        k = auto_shard_size(window_bytes, self.shard_bytes)
        spec = StreamSpec(name=name, modality=info["modality"], fs=int(info["fs"]),
                          channels=channels, units=info["units"],
                          n_patches=self.config.n_patches, patch_size=self.config.patch_size,
                          shard_size=k,
                          block_size=auto_block_size(k, window_bytes, self.block_bytes))
        self.writer.ensure_stream(spec, self.spec.codec)
        table = self.tables[name] = _Table(name=name, block_size=spec.block_size, stream=spec)
        return table

    def admit_ready(self) -> None:
        while self.frontier < len(self.batches) and self.frontier in self.markers:
            self._admit(self.markers.pop(self.frontier))
            self.frontier += 1
            self._submit_blocks(final=self.frontier == len(self.batches))
            self._spill_old()

    def _admit(self, marker: dict[str, Any]) -> None:
        b = int(marker["batch"])
        rows = marker["rows"]
        excluded: dict[int, str] = {}
        labels = marker.get("labels")
        for name, info in marker["streams"].items():
            for row, _n, variant in info["entries"]:
                channels = tuple(info["variants"][variant])
                table = self.tables.get(name) or self._stream_table(name, info, stream_channels(
                    info["modality"], channels, self.config.leads, paired=bool(labels)))
                if table.stream.channels != channels and row not in excluded:
                    excluded[row] = _short(
                        f"skipped: channels {list(channels)} differ from stream {name}'s "
                        f"{list(table.stream.channels)} (one channel set per stream)")
        if labels:
            keys = tuple(labels["keys"])
            table = self.tables.get(LABELS)
            if table is None:
                self.writer.ensure_labels(keys, LABELS_CHUNK)
                table = self.tables[LABELS] = _Table(name=LABELS, block_size=LABELS_CHUNK,
                                                     label_keys=keys)
            for row, _n, same in labels["entries"]:
                if (not same or keys != table.label_keys) and row not in excluded:
                    excluded[row] = f"skipped: label names {list(keys)} differ from the store's"
        row0 = self.n_rows
        entries: dict[str, _Entry] = {}
        handle = self.handles.pop(b, None)
        spilled = set(marker.get("spilled") or [])
        placed = [(name, info["entries"]) for name, info in marker["streams"].items()]
        if labels:
            placed.append((LABELS, labels["entries"]))
        for name, table_entries in placed:
            n_pieces = self._place(self.tables[name], b, row0, table_entries, excluded)
            if n_pieces:
                in_staging = b in self.resumed or name in spilled
                data = None if in_staging else self.executor.pick(handle, name)
                entries[name] = _Entry(handle=data, admitted=self.frontier,
                                       open_pieces=n_pieces, spilled=name in spilled)
        for i, row in enumerate(rows):
            if i in excluded:
                row = {**row, "status": excluded[i]}
            self._count_row(row)
            self.rows_pending.append(row)
        self.n_rows += len(rows)
        self._flush_rows(final=False)
        self.entries[b] = entries
        if b not in self.resumed:
            self.pending[b] = marker
        self._settle(b)

    def _place(self, table: _Table, b: int, row0: int, entries: list, excluded: dict) -> int:
        """Append a batch's windows to a table; return the number of pieces added."""
        local, added = 0, 0
        for entry in entries:
            row, n = entry[0], entry[1]
            if n and row not in excluded:
                last = table.pieces[-1] if table.pieces else None
                if last is not None and last.batch == b and last.local_hi == local:
                    table.pieces[-1] = _Piece(b, last.local_lo, local + n, last.global_lo, row0)
                else:
                    table.pieces.append(_Piece(b, local, local + n, table.count, row0))
                    added += 1
                table.count += n
            local += n
        return added

    def _count_row(self, row: dict[str, Any]) -> None:
        s = self.summary
        s.records_in += 1
        if row["status"] == "ok":
            s.records_ok += 1
        else:
            s.records_skipped += 1
            self.reasons[row["status"]] += 1
            if len(s.skipped) < MAX_SKIPPED_LISTED:
                s.skipped.append(SkippedRecord(row["id"], row["path"], row["status"]))

    def _flush_rows(self, final: bool) -> None:
        while len(self.rows_pending) >= RECORDS_CHUNK or (final and self.rows_pending):
            chunk = self.rows_pending[:RECORDS_CHUNK]
            self.writer.write_records(self.rows_written, chunk)
            self.rows_written += len(chunk)
            del self.rows_pending[:len(chunk)]

    # -- blocks and spills ---------------------------------------------------------------
    def _submit_blocks(self, final: bool) -> None:
        for table in self.tables.values():
            bs = table.block_size
            while (table.next_block + 1) * bs <= table.count or (
                    final and table.next_block * bs < table.count):
                k = table.next_block
                lo, hi = k * bs, min((k + 1) * bs, table.count)
                pieces = []
                for p in table.pieces:
                    if p.global_lo >= hi:
                        break
                    a, z = max(p.global_lo, lo), min(p.global_hi, hi)
                    pieces.append(_Piece(p.batch, p.local_lo + a - p.global_lo,
                                         p.local_lo + z - p.global_lo, a, p.row0))
                consumed = []
                while table.pieces and table.pieces[0].global_hi <= hi:
                    consumed.append(table.pieces.popleft().batch)
                block = _Block(table.name, k, lo, hi, tuple(pieces), table.stream,
                               table.label_keys)
                table.next_block += 1
                if (table.name, k) not in self.done_blocks:
                    data = []
                    for b in block.batches:
                        entry = self.entries[b][table.name]
                        entry.readers += 1
                        data.append(entry.handle)
                    tag = ("block", table.name, k)
                    self.running[tag] = block
                    self.executor.submit(tag, _write_block, self.spec, block, *data,
                                         priority=10)
                for b in consumed:
                    self.entries[b][table.name].open_pieces -= 1
                    self._settle(b)

    def _spill_old(self) -> None:
        """Spill the data of tables whose pieces wait too long for their block."""
        for table in self.tables.values():
            for p in table.pieces:
                entry = self.entries[p.batch][table.name]
                if self.frontier - entry.admitted < self.spill_age:
                    break
                if not (entry.spilled or entry.spilling or entry.handle is None):
                    entry.spilling = True
                    tag = ("spill", p.batch, table.name)
                    self.running[tag] = (p.batch, table.name)
                    self.executor.submit(tag, _spill, self.spec, p.batch, table.name,
                                         entry.handle, priority=20)

    def _block_done(self, block: _Block) -> None:
        self.done_blocks.add((block.table, block.index))
        for b in block.batches:
            self.entries[b][block.table].readers -= 1
            self._settle(b)

    def _settle(self, b: int) -> None:
        """Free what no task needs any more; write ``done.json`` once the batch is durable;
        delete staged data once its blocks are written."""
        entries = self.entries.get(b, {})
        for table, entry in list(entries.items()):
            if entry.written and not entry.spilling:
                entry.handle = None
                if b not in self.pending:  # done.json written (or from an earlier run)
                    if entry.spilled:
                        self.io.delete_prefix(f"{STAGING}/b{b:06d}/data/{table}")
                    del entries[table]
        if b in self.pending and all(e.spilled or (e.written and not e.spilling)
                                     for e in entries.values()):
            marker = self.pending.pop(b)
            marker = {**marker, "spilled": sorted(t for t, e in entries.items() if e.spilled)}
            self.io.put(f"{STAGING}/b{b:06d}/done.json", json.dumps(marker).encode())
            self._settle(b)  # now its spilled, written tables can go
        elif b not in self.pending and not entries:
            self.entries.pop(b, None)

    def finish(self) -> None:
        self._flush_rows(final=True)
        for table in self.tables.values():
            if table.stream is not None:
                self.writer.set_stream_length(table.name, table.count)
            else:
                self.writer.set_labels_length(table.label_keys, table.count)
        s = self.summary
        s.skipped_reasons = dict(self.reasons)
        s.windows = {name: t.count for name, t in sorted(self.tables.items(),
                                                         key=lambda kv: _stream_order(kv[0]))
                     if t.stream}


def _stream_order(name: str) -> tuple[str, int]:
    modality, _, rate = name.partition("@")
    return modality, int(rate) if rate.isdigit() else 0


def _discover_each(sources: Sequence[str | os.PathLike | SourceFile], fmt: str
                   ) -> tuple[list[SourceFile], list[str]]:
    """Discover every input on its own: one that fails (missing, unknown format, a folder
    with no records) is reported and the others are still converted. Raises if none is left."""
    if not sources:
        raise ValueError("no input paths given")
    found: list[SourceFile] = []
    problems: list[str] = []
    paths = []
    for src in sources:
        if isinstance(src, SourceFile):
            found.append(src)
        else:
            paths.append(src)
    for path in paths:
        try:
            found += discover([path], fmt)
        except (FileNotFoundError, ValueError) as exc:
            problems.append(str(exc))
    if not found:
        if len(problems) == 1:
            raise ValueError(problems[0])
        raise ValueError("nothing to convert:\n  " + "\n  ".join(problems))
    if paths:  # as discover() gives them for all inputs at once: by path, each file once,
        unique: dict[str, SourceFile] = {}  # record ids unique (#2, #3 for repeats)
        for src in found:
            unique.setdefault(os.path.realpath(src.path), src)
        found, seen = [], Counter()
        for src in sorted(unique.values(), key=lambda s: s.path):
            seen[src.record_id] += 1
            if seen[src.record_id] > 1:
                src = replace(src, record_id=f"{src.record_id}#{seen[src.record_id]}")
            found.append(src)
    return found, problems


def _fingerprint(sources: Sequence[SourceFile], config: PrepConfig, layout: dict[str, Any]
                 ) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"schema": SCHEMA_VERSION, "version": __version__,
                         "config": config.model_dump(mode="json"), "layout": layout},
                        sort_keys=True).encode())
    for src in sources:
        h.update(f"\n{src.path}\t{src.format}\t{src.record_id}".encode())
    return h.hexdigest()


def convert(
    sources: Sequence[str | os.PathLike | SourceFile] | str | os.PathLike,
    dst: str | os.PathLike,
    config: PrepConfig | None = None,
    *,
    fmt: str = "auto",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    resume: bool = True,
    overwrite: bool = False,
    storage_options: dict | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    part_bytes: int = DEFAULT_PART_BYTES,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    codec: WindowCodec | None = None,
    threads: int | None = None,
    processes: bool | None = None,
) -> ConvertSummary:
    """Convert source files into a store at ``dst`` (a local path or any fsspec URL).

    sources : files and/or directories (walked recursively, see
        :func:`biosig_prep.readers.discover`), or already discovered ``SourceFile`` objects.
    config : preprocessing settings (default ``PrepConfig()``).
    fmt : ``"auto"``, ``"wfdb"``, ``"edf"`` or ``"dreamer"`` (passed to ``discover``).
    workers : 0 = everything in this process; N = a local dask cluster of N single-threaded
        processes; None (default) = one worker per CPU core, as threads of this process for
        small jobs (see ``processes``).
    processes : local workers as dask worker processes (True) or as threads of this process
        (False); None (default) = processes when ``workers`` is given, or on a machine of at
        least ``AUTO_PROCESSES_MIN_CORES`` cores for at least ``AUTO_PROCESSES_BYTES`` of input.
    scheduler : address of a dask.distributed scheduler, or a ``Client``, instead of a local
        cluster (its workers must see the sources and ``dst``); exclusive with ``workers``.
    resume : continue an interrupted conversion of the same plan at ``dst`` (default); False
        starts it over. A complete store of the same plan is left as it is.
    overwrite : replace the store at ``dst`` whatever it holds (only a Zarr store: a non-empty
        folder that is not one is never deleted).
    storage_options : fsspec options for ``dst`` (credentials, endpoint, ...).
    batch_size : source files per processing task. shard_bytes / block_bytes : target raw bytes
        of one shard and of one write task; part_bytes : size of a part of encoded windows;
        codec : window compression. These fix the layout and are part of the fingerprint (resume needs the
        same values).
    memory_bytes : encoded bytes a batch keeps in memory; beyond that it spills them to the
        staging area in the store (not part of the fingerprint).
    threads : threads for the trials of a DREAMER file (default: the worker's CPU count).

    Returns a :class:`ConvertSummary`. Records that cannot be read or fail QC are counted and
    listed with their reason; they never stop the run. Raises FileNotFoundError / ValueError for
    inputs with nothing to convert (see ``discover``), :class:`StoreError` when ``dst`` holds
    something else.
    """
    t0 = time.perf_counter()
    config = config or PrepConfig()
    codec = codec or WindowCodec()
    url = os.fspath(dst)
    if scheduler is not None and workers is not None:
        raise ValueError("give workers or scheduler, not both")
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = list(sources)
    found, problems = _discover_each(sources, fmt)
    formats = {s.format for s in found}
    if "dreamer" in formats and len(formats) > 1:
        raise ValueError("DREAMER files cannot share a store with other formats (their labels "
                         "are aligned with every stream); convert them into a store of their own")
    batches = [_Batch(i, b) for i, b in enumerate(plan_batches(found, batch_size))]
    layout = {"batch_size": batch_size, "shard_bytes": shard_bytes, "block_bytes": block_bytes,
              "part_bytes": part_bytes, "codec": asdict(codec)}
    fingerprint = _fingerprint(found, config, layout)
    summary = ConvertSummary(url=url, sources=len(found), batches=len(batches),
                             problems=problems)

    writer = StoreWriter(url, storage_options)
    mode = _start_mode(url, writer, fingerprint, resume=resume, overwrite=overwrite)
    if mode == "complete":
        return _done_summary(url, writer, summary, resumed=0, t0=t0)
    if mode == "finalize":  # killed while finishing: only the last steps remain
        _finalize(writer)
        return _done_summary(url, writer, summary, resumed=len(batches), t0=t0)
    conversion = {"fingerprint": fingerprint, "state": "running", "sources": len(found),
                  "batches": len(batches), "layout": layout}
    if mode == "fresh":
        writer.create({"schema": SCHEMA_VERSION, "version": __version__,
                       "config": config.model_dump(mode="json"), "complete": False,
                       "summary": None, "conversion": conversion})
        writer.ensure_group(STAGING, {"note": "staging area of an unfinished biosig-prep "
                                              "conversion; deleted when it completes"})
        writer.ensure_records()
    else:
        writer.open()
        writer.update_attrs(complete=False, conversion=conversion)

    spec = _RunSpec(url=url, storage_options=storage_options,
                    config_json=config.model_dump_json(), codec=codec, part_bytes=part_bytes,
                    memory_bytes=memory_bytes, threads=threads)
    driver = _Driver(spec, writer, config, batches, summary, shard_bytes, block_bytes)
    if mode == "resume":
        driver.load_markers()
    summary.batches_resumed = len(driver.markers)
    todo = deque(b for b in batches if b.index not in driver.markers)

    executor = _start_executor(workers, scheduler, todo, writer.raw, processes)
    driver.executor = executor
    bar = _Progress(progress, len(found),
                    sum(len(b.sources) for b in batches if b.index in driver.markers))
    try:
        driver.admit_ready()
        while True:
            while todo and todo[0].index < driver.frontier + executor.lookahead:
                driver.submit_batch(todo.popleft())
            if not len(executor):
                break
            tag, result = executor.next_done()
            driver.task_done(tag, result)
            if tag[0] == "batch":
                windows = sum(t.count for t in driver.tables.values() if t.stream)
                bar.advance(len(batches[tag[1]].sources), f"{windows} windows")
    finally:
        executor.close()
        bar.close()
    if driver.frontier != len(batches) or driver.running:
        raise RuntimeError(f"{url}: the conversion stopped early ({driver.frontier} of "
                           f"{len(batches)} batches admitted); rerun the same command to resume")
    driver.finish()
    writer.update_attrs(summary=summary.store_summary(),
                        conversion={**conversion, "state": "finalizing"})
    _finalize(writer)
    summary.seconds = time.perf_counter() - t0
    return summary


def _start_mode(url: str, writer: StoreWriter, fingerprint: str, *, resume: bool,
                overwrite: bool) -> str:
    """What to do with ``dst``: "fresh", "resume", "finalize" or "complete" (nothing)."""
    attrs = writer.read_attrs()
    if attrs is None:
        if not writer.is_empty():
            raise StoreError(f"{url} exists and is not a Zarr store; refusing to write into it "
                             "(choose another destination)")
        return "fresh"
    if overwrite:
        return "fresh"
    if "schema" not in attrs:
        raise StoreError(f"{url} holds a Zarr node that is not a biosig-prep store; choose "
                         "another destination or pass overwrite=True (--overwrite)")
    conversion = attrs.get("conversion") or {}
    if conversion.get("fingerprint") != fingerprint:
        raise StoreError(f"{url} already holds a biosig-prep store made from other sources or "
                         "settings; choose another destination or pass overwrite=True "
                         "(--overwrite) to replace it")
    if attrs.get("complete"):
        return "complete"
    if not resume:
        return "fresh"
    return "finalize" if conversion.get("state") == "finalizing" else "resume"


def _done_summary(url: str, writer: StoreWriter, summary: ConvertSummary, *, resumed: int,
                  t0: float) -> ConvertSummary:
    """The summary of a store that is (now) complete, read back from its attributes."""
    s = (writer.read_attrs() or {}).get("summary") or {}
    summary.records_in = s.get("records_in", 0)
    summary.records_ok = s.get("records_ok", 0)
    summary.records_skipped = s.get("records_skipped", 0)
    summary.skipped_reasons = dict(s.get("skipped_reasons", {}))
    summary.windows = dict(sorted(s.get("windows", {}).items(),
                                  key=lambda kv: _stream_order(kv[0])))
    summary.problems = list(s.get("problems", []))
    summary.batches_resumed = resumed
    summary.already_complete = resumed == 0
    summary.seconds = time.perf_counter() - t0
    return summary


def _finalize(writer: StoreWriter) -> None:
    """Delete the staging area, then set ``complete`` (the very last write)."""
    writer.raw.delete_prefix(f"{STAGING}/blocks")
    writer.raw.delete_prefix(STAGING)
    attrs = writer.read_attrs() or {}
    conversion = {**(attrs.get("conversion") or {}), "state": "complete"}
    writer.update_attrs(conversion=conversion, complete=True)
