"""The driver (phase 3): admits finished batches in plan order, cuts blocks, tracks what is
durable."""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from biosig_prep.config import PrepConfig
from biosig_prep.convert.blocks import _Block, _Piece, _write_block
from biosig_prep.convert.executors import Executor
from biosig_prep.convert.plan import (
    MAX_SKIPPED_LISTED,
    ConvertSummary,
    Layout,
    SkippedRecord,
    _Batch,
    _RunSpec,
    _stream_order,
)
from biosig_prep.convert.stage import _marker, _merge_classes, _run_batch, _short, _spill
from biosig_prep.dsp.leads import stream_channels
from biosig_prep.progress import progress_bar
from biosig_prep.store import (
    LABELS,
    LABELS_CHUNK,
    MANIFEST,
    RECORDS_CHUNK,
    STAGING,
    RawIO,
    StoreWriter,
    StreamSpec,
    auto_block_size,
    auto_shard_size,
)


@dataclass
class _Table:
    """A stream (or the labels) as the frontier fills it."""

    name: str
    block_size: int
    stream: StreamSpec | None = None
    label_keys: tuple[str, ...] = ()
    label_classes: dict[str, list[str]] = field(default_factory=dict)  # per-window labels
    count: int = 0  # windows (rows) admitted so far
    pieces: deque = field(default_factory=deque)  # _Piece not yet in a submitted block
    next_block: int = 0

    def stream_labels(self, classes: dict[str, list[str]]) -> bool:
        """Merge a batch's per-window label classes; True if they grew."""
        before = {k: len(v) for k, v in self.label_classes.items()}
        _merge_classes(self.label_classes, classes)
        return before != {k: len(v) for k, v in self.label_classes.items()}


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


def load_markers(io: RawIO) -> tuple[dict[int, dict[str, Any]], set[tuple[str, int]]]:
    """The finished batches (their ``done.json``) and written blocks of an interrupted run."""
    markers: dict[int, dict[str, Any]] = {}
    done_blocks: set[tuple[str, int]] = set()
    for key in io.list(f"{STAGING}/"):
        if key.startswith(f"{STAGING}/b") and key.endswith("/done.json"):
            try:
                marker = json.loads(io.get(key) or b"")
                markers[int(marker["batch"])] = marker
            except (ValueError, KeyError, TypeError):
                continue  # a torn marker: that batch runs again
        elif key.startswith(f"{STAGING}/blocks/"):
            _, _, table, index = key.split("/", 3)
            done_blocks.add((table, int(index)))
    return markers, done_blocks


class _Driver:
    """Admits batches in plan order, cuts blocks, and keeps track of what is durable.

    A batch becomes *durable* (its ``done.json`` is written) when each of its tables (streams,
    labels) is written in finished blocks or spilled to the staging area. Data that waits
    longer than ``spill_age`` admitted batches for its block (a slowly filling low-rate stream)
    is spilled, so memory stays bounded and a kill loses at most a few batches of work.
    """

    def __init__(self, spec: _RunSpec, writer: StoreWriter, config: PrepConfig,
                 batches: list[_Batch], summary: ConvertSummary, layout: Layout,
                 executor: Executor | None = None, spill_age: int = 4) -> None:
        self.spec, self.writer, self.config = spec, writer, config
        self.io = writer.raw
        self.batches = batches
        self.summary = summary
        self.shard_bytes, self.block_bytes = layout.shard_bytes, layout.block_bytes
        self.spill_age = spill_age
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
        self.executor = executor
        self.running: dict[tuple, Any] = {}  # tag -> block or (batch, table) of a spill
        self.manifest: dict[str, list[int]] = {}  # object key -> [nbytes, crc32c] written

    # -- resume --------------------------------------------------------------------------
    def resume_from(self, markers: dict[int, dict[str, Any]],
                    done_blocks: set[tuple[str, int]]) -> None:
        """Take over what an earlier, interrupted run finished (see :func:`load_markers`)."""
        self.markers.update(markers)
        self.done_blocks |= done_blocks
        for table, index in sorted(done_blocks):
            self._record_block(f"{STAGING}/blocks/{table}/{index:08d}")
        self.resumed = set(self.markers)

    # -- tasks ---------------------------------------------------------------------------
    def submit_batch(self, batch: _Batch) -> None:
        ex = self.executor
        self.handles[batch.index] = ex.submit(("batch", batch.index), _run_batch, self.spec,
                                              batch, priority=0, report=_marker)

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
        self.writer.ensure_stream(spec, self.spec.codecs[spec.modality],
                                  self.config.tail.model_dump(mode="json"))
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
                if info.get("labels") and table.stream_labels(info["labels"]):
                    self.writer.ensure_stream_labels(name, table.label_classes)
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
        self._record_block(block.marker)
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

    def _record_block(self, marker: str) -> None:
        """Add what a written block's marker lists to the store's manifest."""
        data = self.io.get(marker)
        if data:
            self.manifest.update(json.loads(data))

    def finish(self) -> None:
        self._flush_rows(final=True)
        for table in self.tables.values():
            if table.stream is not None:
                self.writer.set_stream_length(table.name, table.count)
            else:
                self.writer.set_labels_length(table.label_keys, table.count)
        # the record `biosig-prep verify` checks every object against
        self.io.put(MANIFEST, json.dumps(self.manifest, sort_keys=True).encode())
        s = self.summary
        s.skipped_reasons = dict(self.reasons)
        s.windows = {name: t.count for name, t in sorted(self.tables.items(),
                                                         key=lambda kv: _stream_order(kv[0]))
                     if t.stream}
