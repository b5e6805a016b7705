"""Phase 2: process a batch and stage its encoded windows (runs on a worker)."""

from __future__ import annotations

import functools
import io as _io
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from biosig_prep.config import PrepConfig
from biosig_prep.convert.plan import _STATUS_LEN, _Batch, _config, _io_for, _RunSpec
from biosig_prep.processing import process_dreamer_trial, process_recording
from biosig_prep.readers import ReadError, SourceFile, read_dreamer, read_source
from biosig_prep.recording import ProcessedRecord
from biosig_prep.store import (
    LABELS,
    STAGING,
    RawIO,
)


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


def _load_npz(io: RawIO, key: str) -> dict[str, np.ndarray]:
    data = io.get(key)
    if data is None:
        raise FileNotFoundError(f"staging object {key} is missing; the conversion cannot "
                                "resume (rerun the same command with --overwrite to start it over)")
    with np.load(_io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


def write_parts(io: RawIO, base: str, first_part: int, windows: Sequence[bytes], limit: int,
                final: bool) -> tuple[int, list[int], list[int], list[str]]:
    """Write encoded ``windows`` as part files ``base/pNNNN`` of about ``limit`` bytes each (cut
    at window boundaries, at least one window per part), numbered from ``first_part``; without
    ``final`` a last part smaller than ``limit`` is not written.

    Returns (windows written, part number of each, offset of each in its part, part keys).
    """
    written, n_parts = 0, first_part
    part_of: list[int] = []
    offsets: list[int] = []
    keys: list[str] = []
    pending = sum(map(len, windows))
    while written < len(windows) and (final or pending >= limit):
        last, size = written, 0
        while last < len(windows) and (size < limit or last == written):
            offsets.append(size)
            part_of.append(n_parts)
            size += len(windows[last])
            last += 1
        key = f"{base}/p{n_parts:04d}"
        io.put(key, list(windows[written:last]))
        keys.append(key)
        pending -= size
        written, n_parts = last, n_parts + 1
    return written, part_of, offsets, keys


_LABEL_PREFIX = "label_"  # per-window labels in a staged index.npz


def _merge_classes(into: dict[str, list[str]], classes: dict[str, list[str]]) -> None:
    """Class lists of a label, merged by keeping the longest (they are prefixes of one fixed
    vocabulary, see :mod:`biosig_prep.readers.rhythm`)."""
    for key, names in classes.items():
        if len(names) > len(into.get(key, [])):
            into[key] = list(names)


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
    pmask: np.ndarray  # (n, P) patch mask
    parts: list[str]
    mem: list[bytes] | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # per-window, -1 unlabelled

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
                 record=self.record, mask=self.mask, pmask=self.pmask,
                 **{_LABEL_PREFIX + k: v for k, v in self.labels.items()})
        return buf.getvalue()

    @classmethod
    def from_staging(cls, io: RawIO, base: str) -> _Staged:
        idx = _load_npz(io, f"{base}/index.npz")
        labels = {k[len(_LABEL_PREFIX):]: idx.pop(k) for k in list(idx)
                  if k.startswith(_LABEL_PREFIX)}
        n_parts = int(idx["part"].max()) + 1 if len(idx["part"]) else 0
        return cls(parts=[f"{base}/p{k:04d}" for k in range(n_parts)], labels=labels, **idx)


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
        self.pmasks: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.entries: list[list[int]] = []  # [row, n_windows, channel variant]
        self.variants: list[tuple[str, ...]] = []
        self.info: dict[str, Any] = {}
        self.labels: list[tuple[int, dict[str, np.ndarray] | None]] = []  # (n, labels)
        self.label_classes: dict[str, list[str]] = {}

    def add(self, row: int, sw) -> None:
        channels = tuple(sw.channels)
        if channels not in self.variants:
            self.variants.append(channels)
        if not self.info:
            self.info = {"modality": sw.modality, "fs": int(sw.fs), "units": sw.units}
        n = int(sw.windows.shape[0])
        encoded = self.batch.codecs[sw.modality].encode_many(sw.windows)
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
            self.pmasks.append(np.ones((n, sw.windows.shape[2]), bool) if sw.patch_mask is None
                               else np.asarray(sw.patch_mask, dtype=bool))
            self.rows.append(np.full(n, row, dtype=np.int64))
            self.labels.append((n, sw.labels))
            _merge_classes(self.label_classes, sw.label_classes or {})

    def spill(self, final: bool) -> None:
        """Write the pending windows to part files of about ``part_bytes`` (a last, smaller
        one only when ``final``)."""
        base = f"{self.batch.data}/{self.name}"
        written, part, offset, keys = write_parts(self.batch.io, base, len(self.parts),
                                                  self.pending, self.batch.part_bytes, final)
        size = sum(map(len, self.pending[:written]))
        self.part_of += part
        self.offsets += offset
        self.parts += keys
        del self.pending[:written]
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
                         mask=masks, pmask=(np.concatenate(self.pmasks) if self.pmasks
                                            else np.zeros((0, 0), bool)),
                         parts=self.parts, mem=mem, labels=self._label_arrays())
        info = {**self.info, "variants": [list(v) for v in self.variants],
                "entries": self.entries, "count": n}
        if self.label_classes:
            info["labels"] = self.label_classes
        return info, staged

    def _label_arrays(self) -> dict[str, np.ndarray]:
        """(n,) int64 per label name; -1 for the windows of records without that label."""
        out: dict[str, np.ndarray] = {}
        for key in sorted(self.label_classes):
            out[key] = np.concatenate(
                [np.full(n, -1, np.int64) if labels is None or key not in labels
                 else np.asarray(labels[key], np.int64) for n, labels in self.labels]
                or [np.zeros(0, np.int64)])
        return out


class _BatchStage:
    """The output of one batch task as it is produced."""

    def __init__(self, spec: _RunSpec, batch: _Batch, io: RawIO) -> None:
        self.io, self.codecs = io, spec.codecs
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


def _run_batch(spec: _RunSpec, batch: _Batch) -> _BatchResult:
    """Process one batch (runs on a worker)."""
    config = _config(spec.config_json)
    threads = spec.threads or os.cpu_count() or 1
    io = _io_for(spec)
    stage = _BatchStage(spec, batch, io)
    for src in batch.sources:
        for pr in _records_of(src, config, threads):
            stage.add(pr)
    result = stage.finish()
    _trim_memory()
    return result


def _marker(result: _BatchResult) -> dict[str, Any]:
    """What the driver needs of a batch result (small; the windows stay where they are)."""
    return result.marker


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
        _, part, offset, _ = write_parts(io, base, 0, data.mem, spec.part_bytes, final=True)
        data = replace(data, part=np.asarray(part, np.int32),
                       offset=np.asarray(offset, np.int64), mem=None)
    io.put(f"{base}/index.npz", data.index_bytes())
    return table


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
