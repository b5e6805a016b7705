"""The plan of a run: its summary, the layout knobs, the cut into batches, the sources' sizes
and times, and the fingerprint (phase 1 of :mod:`biosig_prep.convert`)."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from biosig_prep.config import PrepConfig
from biosig_prep.convert.types import stream_order
from biosig_prep.datasets.ptbxl import ptbxl_tables_files
from biosig_prep.readers import SourceFile, discover
from biosig_prep.store import (
    SCHEMA_VERSION,
    SOURCES,
)
from biosig_prep.version import __version__

__all__ = ["ConvertSummary", "SkippedRecord", "Layout", "plan_batches", "discover_each",
           "source_stats", "source_sizes", "changed_sources", "run_fingerprint", "SOURCES_KEY",
           "DEFAULT_BATCH_SIZE", "DEFAULT_BATCH_BYTES", "DEFAULT_PART_BYTES",
           "DEFAULT_MEMORY_BYTES", "DEFAULT_SHARD_BYTES", "DEFAULT_BLOCK_BYTES",
           "AUTO_PROCESSES_BYTES", "AUTO_PROCESSES_MIN_CORES", "MAX_SKIPPED_LISTED"]

DEFAULT_BATCH_SIZE = 32  # source files per batch task (a DREAMER file is always alone)
# input bytes per batch task at most (32 ten-second 500 Hz records are ~3.9 MB): long records
# make shorter batches, so the workers' shares stay even to the end and a batch's memory bounded
DEFAULT_BATCH_BYTES = 4 << 20
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


@dataclass(frozen=True)
class Layout:
    """The knobs that fix how a run cuts its work and its objects. All but ``memory_bytes`` are
    part of the fingerprint (a resume needs the same values).

    batch_size : source files per processing task (a DREAMER file is always alone).
    batch_bytes : input bytes per processing task at most (a larger file is a batch alone).
    shard_bytes / block_bytes : target raw (float32) bytes of one shard and of one write task.
    part_bytes : size of a part of encoded windows (in memory, or a spilled staging file).
    memory_bytes : encoded bytes a batch keeps in memory before it spills to the staging area.
    """

    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = DEFAULT_BATCH_BYTES
    shard_bytes: int = DEFAULT_SHARD_BYTES
    block_bytes: int = DEFAULT_BLOCK_BYTES
    part_bytes: int = DEFAULT_PART_BYTES
    memory_bytes: int = DEFAULT_MEMORY_BYTES

    def __post_init__(self) -> None:
        for name in ("batch_size", "batch_bytes", "shard_bytes", "block_bytes", "part_bytes",
                     "memory_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "batch_size" else 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def fingerprint(self) -> dict[str, int]:
        """The knobs that fix the store's objects (memory_bytes does not)."""
        return {"batch_size": self.batch_size, "batch_bytes": self.batch_bytes,
                "shard_bytes": self.shard_bytes,
                "block_bytes": self.block_bytes, "part_bytes": self.part_bytes}


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
    lock_note: str = ""  # set when a killed run's stale writer lock was taken over
    executor: str = ""  # where the tasks ran: "this process", "2 forked processes", ...
    seconds: float = 0.0

    def store_summary(self) -> dict[str, Any]:
        """The ``summary`` root attribute of the store."""
        return {"records_in": self.records_in, "records_ok": self.records_ok,
                "records_skipped": self.records_skipped,
                "skipped_reasons": dict(sorted(self.skipped_reasons.items())),
                "windows": dict(sorted(self.windows.items(), key=lambda kv: stream_order(kv[0]))),
                "problems": list(self.problems)}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["skipped"] = [asdict(s) for s in self.skipped]
        return out


# ------------------------------------------------------------------------------------------
# The plan
# ------------------------------------------------------------------------------------------
def plan_batches(sources: Sequence[SourceFile], batch_size: int = DEFAULT_BATCH_SIZE,
                 batch_bytes: int | None = None, sizes: Sequence[int] | None = None
                 ) -> list[tuple[SourceFile, ...]]:
    """Consecutive runs of at most ``batch_size`` sources and, with ``batch_bytes`` and the
    ``sizes`` of the sources (bytes, see :func:`source_sizes`), at most ``batch_bytes`` of
    input (a larger source is a batch alone); a DREAMER file is a batch alone."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if batch_bytes is not None and sizes is not None and len(sizes) != len(sources):
        raise ValueError(f"{len(sizes)} sizes given for {len(sources)} sources")
    limit = batch_bytes if batch_bytes is not None and sizes is not None else None
    batches: list[tuple[SourceFile, ...]] = []
    current: list[SourceFile] = []
    held = 0
    for i, src in enumerate(sources):
        size = sizes[i] if limit is not None and sizes is not None else 0
        if current and (src.format == "dreamer" or (limit is not None and held + size > limit)):
            batches.append(tuple(current))
            current, held = [], 0
        if src.format == "dreamer":
            batches.append((src,))
            continue
        current.append(src)
        held += size
        if len(current) == batch_size:
            batches.append(tuple(current))
            current, held = [], 0
    if current:
        batches.append(tuple(current))
    return batches


def discover_each(sources: Sequence[str | os.PathLike | SourceFile], fmt: str
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


SOURCES_KEY = SOURCES  # what each source file was (size, mtime) when converted


def source_stats(sources: Sequence[SourceFile]) -> dict[str, list[int]]:
    """``path -> [size, mtime_ns]`` of every file a source is read from (a WFDB header and its
    ``.mat`` / ``.dat`` signal file, its ``.atr`` annotations, PTB-XL's two CSVs; ``[-1, -1]``
    for a file that cannot be stat'ed)."""
    out: dict[str, list[int]] = {}
    for src in sources:
        base = os.path.splitext(src.path)[0]
        paths = [src.path] + [p for p in (base + ".mat", base + ".dat", base + ".atr")
                              if p != src.path and os.path.exists(p)]
        if src.format == "ptbxl":  # the metadata and labels come from the CSVs
            paths += ptbxl_tables_files(src.path)
        for path in paths:
            try:
                st = os.stat(path)
                out[path] = [int(st.st_size), int(st.st_mtime_ns)]
            except OSError:
                out[path] = [-1, -1]
    return out


def source_sizes(sources: Sequence[SourceFile], stats: dict[str, list[int]]) -> list[int]:
    """Bytes of each source's files (header and signal file), from :func:`source_stats`."""
    out = []
    for src in sources:
        base = os.path.splitext(src.path)[0]
        files = {src.path, base + ".mat", base + ".dat"}
        out.append(sum(max(0, stats[f][0]) for f in files if f in stats))
    return out


def changed_sources(before: dict[str, list[int]], now: dict[str, list[int]]) -> list[str]:
    """One line per file that differs between two :func:`source_stats` (changed, new, gone)."""
    lines = []
    for path in sorted(set(before) | set(now)):
        a, b = before.get(path), now.get(path)
        if a is None:
            lines.append(f"{path} (new)")
        elif b is None:
            lines.append(f"{path} (no longer a source)")
        elif list(a) != list(b):
            what = (f"size {a[0]} -> {b[0]}" if a[0] != b[0] else "modified")
            lines.append(f"{path} ({what})")
    return lines


def run_fingerprint(sources: Sequence[SourceFile], config: PrepConfig, layout: dict[str, Any],
                 stats: dict[str, list[int]] | None = None) -> str:
    """The identity of a run: settings, layout, and every source by path, size and mtime."""
    h = hashlib.sha256()
    h.update(json.dumps({"schema": SCHEMA_VERSION, "version": __version__,
                         "config": config.model_dump(mode="json"), "layout": layout},
                        sort_keys=True).encode())
    for src in sources:
        h.update(f"\n{src.path}\t{src.format}\t{src.record_id}".encode())
    h.update(json.dumps(stats if stats is not None else source_stats(sources),
                        sort_keys=True).encode())
    return h.hexdigest()
