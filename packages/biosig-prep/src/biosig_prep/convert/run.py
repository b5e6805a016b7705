"""``convert()``: the entry point that ties the phases together (see :mod:`biosig_prep.convert`)."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any

from biosig_prep.config import PrepConfig
from biosig_prep.convert.driver import Driver, Progress, load_markers
from biosig_prep.convert.executors import ForkExecutor, fork_workers, start_executor
from biosig_prep.convert.plan import (
    SOURCES_KEY,
    ConvertSummary,
    Layout,
    changed_sources,
    discover_each,
    plan_batches,
    run_fingerprint,
    source_sizes,
    source_stats,
)
from biosig_prep.convert.types import Batch, RunSpec, stream_order
from biosig_prep.readers import SourceFile
from biosig_prep.readers.edf_header import decide_eeg_channels
from biosig_prep.store import (
    SCHEMA_VERSION,
    STAGING,
    StoreError,
    StoreWriter,
    codec_for,
)
from biosig_prep.store.lock import WriterLock
from biosig_prep.version import __version__

__all__ = ["convert"]


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
    layout: Layout | None = None,
    threads: int | None = None,
    processes: bool | None = None,
    **layout_knobs: int,
) -> ConvertSummary:
    """Convert source files into a store at ``dst`` (a local path or any fsspec URL).

    sources : files and/or directories (walked recursively, see
        :func:`biosig_prep.readers.discover`), or already discovered ``SourceFile`` objects.
    config : preprocessing settings (default ``PrepConfig()``).
    fmt : ``"auto"``, ``"wfdb"``, ``"edf"`` or ``"dreamer"`` (passed to ``discover``).
    workers : 0 = everything in this process; N = a local dask cluster of N single-threaded
        processes; None (default) = one worker per CPU core, as processes forked from this one
        (or threads of this process, see ``processes`` and :mod:`biosig_prep.convert`).
    processes : local workers as dask worker processes (True) or as threads of this process
        (False); None (default) = forked processes (local destination, fork available, this
        process single-threaded; else threads), dask processes when ``workers`` is given, or
        on a machine of at least ``AUTO_PROCESSES_MIN_CORES`` cores for at least
        ``AUTO_PROCESSES_BYTES`` of input.
    scheduler : address of a dask.distributed scheduler, or a ``Client``, instead of a local
        cluster (its workers must see the sources and ``dst``); exclusive with ``workers``.
    resume : continue an interrupted conversion of the same plan at ``dst`` (default); False
        starts it over. A complete store of the same plan is left as it is.
    overwrite : replace the store at ``dst`` whatever it holds (only a Zarr store: a non-empty
        folder that is not one is never deleted).
    storage_options : fsspec options for ``dst`` (credentials, endpoint, ...).
    layout : how the run cuts its work and objects (:class:`~biosig_prep.convert.Layout`:
        batch_size, batch_bytes, shard_bytes, block_bytes, part_bytes, memory_bytes); single
        knobs may also be given as keywords (``batch_size=8``), over ``layout``. The window
        encoding comes from ``config.encoding``.
    threads : threads for the trials of a DREAMER file (default: the worker's CPU count).

    Returns a :class:`ConvertSummary`. Records that cannot be read or fail QC are counted and
    listed with their reason; they never stop the run. Raises FileNotFoundError / ValueError for
    inputs with nothing to convert (see ``discover``), :class:`StoreError` when ``dst`` holds
    something else.
    """
    t0 = time.perf_counter()
    config = config or PrepConfig()
    unknown = sorted(set(layout_knobs) - {f.name for f in fields(Layout)})
    if unknown:
        raise TypeError(f"convert() got unexpected keyword argument(s) {unknown}")
    layout = replace(layout or Layout(), **layout_knobs)
    codecs = {m: codec_for(m, config.encoding.dtype, config.encoding.steps())
              for m in ("ecg", "eeg")}
    url = os.fspath(dst)
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:  # the store keeps its URL in text (attributes, markers)
        shown = os.fsencode(url).decode("utf-8", "backslashreplace")
        raise ValueError(f"{shown}: destination path is not valid UTF-8 (the bytes shown as "
                         "\\xNN); choose a destination with a UTF-8 name") from None
    if scheduler is not None and workers is not None:
        raise ValueError("give workers or scheduler, not both")
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = list(sources)
    found, problems = discover_each(sources, fmt)
    formats = {s.format for s in found}
    if "dreamer" in formats and len(formats) > 1:
        raise ValueError("DREAMER files cannot share a store with other formats (their labels "
                         "are aligned with every stream); convert them into a store of their own")
    # the EEG stream's channels, before any record: declared, or by majority of all headers
    eeg_channels, _ = decide_eeg_channels(found, config.eeg_channels)
    if eeg_channels is not None and "dreamer" not in formats:
        config = config.model_copy(update={"eeg_channels": eeg_channels})
    stats = source_stats(found)
    planned = plan_batches(found, layout.batch_size, layout.batch_bytes,
                           source_sizes(found, stats))
    batches = [Batch(i, b) for i, b in enumerate(planned)]
    knobs = {**layout.fingerprint(), "codecs": {m: asdict(c) for m, c in codecs.items()}}
    fingerprint = run_fingerprint(found, config, knobs, stats)
    summary = ConvertSummary(url=url, sources=len(found), batches=len(batches),
                             problems=problems)

    # forked before the first store operation starts zarr's thread (fork copies one thread)
    n_forked = fork_workers(workers, scheduler, processes, batches, url)
    forked = ForkExecutor(n_forked) if n_forked else None
    try:
        writer = StoreWriter(url, storage_options)
        if writer.read_attrs() is None and not writer.is_empty():
            raise StoreError(f"{url} exists and is not a Zarr store; refusing to write into it "
                             "(choose another destination)")
        lock = WriterLock(writer.raw, url)
        lock.acquire()  # one writer at a time (a stale lock of a killed run is taken over)
        try:
            summary.lock_note = lock.note
            return _convert_locked(url, writer, found, batches, config, codecs, knobs, stats,
                                   fingerprint, summary, t0, resume=resume, overwrite=overwrite,
                                   layout=layout, workers=workers, scheduler=scheduler,
                                   processes=processes, progress=progress,
                                   storage_options=storage_options, threads=threads,
                                   forked=forked)
        finally:
            lock.release()
    finally:
        if forked is not None:
            forked.close()


def _convert_locked(url, writer, found, batches, config, codecs, knobs, stats, fingerprint,
                    summary, t0, *, resume, overwrite, layout, workers, scheduler, processes,
                    progress, storage_options, threads, forked=None) -> ConvertSummary:
    """The rest of :func:`convert`, under the writer lock."""
    mode = _start_mode(url, writer, fingerprint, stats, resume=resume, overwrite=overwrite)
    if mode == "complete":
        return _done_summary(url, writer, summary, resumed=0, t0=t0)
    if mode == "finalize":  # killed while finishing: only the last steps remain
        _finalize(writer)
        return _done_summary(url, writer, summary, resumed=len(batches), t0=t0)
    conversion = {"fingerprint": fingerprint, "state": "running", "sources": len(found),
                  "batches": len(batches), "layout": knobs}
    if mode == "fresh":
        writer.create({"schema": SCHEMA_VERSION, "version": __version__,
                       "generation": fingerprint[:16],
                       "config": config.model_dump(mode="json"), "complete": False,
                       "summary": None, "conversion": conversion})
        writer.ensure_group(STAGING, {"note": "staging area of an unfinished biosig-prep "
                                              "conversion; deleted when it completes"})
        writer.ensure_records()
        writer.raw.put(SOURCES_KEY, json.dumps(stats).encode())
    else:
        writer.open()
        writer.update_attrs(complete=False, conversion=conversion)

    spec = RunSpec(url=url, storage_options=storage_options,
                    config_json=config.model_dump_json(), codecs=codecs,
                    part_bytes=layout.part_bytes, memory_bytes=layout.memory_bytes,
                    threads=threads)
    markers, done_blocks = load_markers(writer.raw) if mode == "resume" else ({}, set())
    summary.batches_resumed = len(markers)
    todo = deque(b for b in batches if b.index not in markers)
    executor = start_executor(workers, scheduler, todo, writer.raw, processes, forked)
    summary.executor = executor.name
    driver = Driver(spec, writer, config, batches, summary, layout, executor)
    driver.resume_from(markers, done_blocks)
    bar = Progress(progress, len(found),
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


def _start_mode(url: str, writer: StoreWriter, fingerprint: str, stats: dict[str, list[int]],
                *, resume: bool, overwrite: bool) -> str:
    """What to do with ``dst``: "fresh", "resume", "finalize" or "complete" (nothing)."""
    attrs = writer.read_attrs()
    if attrs is None:
        if not writer.is_empty():
            raise StoreError(f"{url} exists and is not a Zarr store; refusing to write into it "
                             "(choose another destination)")
        return "fresh"
    if overwrite:
        if attrs == {} and not _parses(writer):
            raise StoreError(f"{url} holds a zarr.json that cannot be parsed: not a store this "
                             "tool wrote; refusing to overwrite it (choose another destination)")
        return "fresh"
    if "schema" not in attrs:
        raise StoreError(f"{url} holds a Zarr node that is not a biosig-prep store; choose "
                         "another destination or pass overwrite=True (--overwrite)")
    conversion = attrs.get("conversion") or {}
    if conversion.get("fingerprint") != fingerprint:
        changed = []
        before = writer.raw.get(SOURCES_KEY)
        if before is not None:
            try:
                changed = changed_sources(json.loads(before), stats)
            except ValueError:
                changed = []
        if changed:
            shown = "; ".join(changed[:10]) + (f"; ... ({len(changed)} in all)"
                                               if len(changed) > 10 else "")
            raise StoreError(f"{url} was converted from source files that have changed since: "
                             f"{shown}. Pass overwrite=True (--overwrite) to convert them again, "
                             "or choose another destination")
        raise StoreError(f"{url} already holds a biosig-prep store made from other sources or "
                         "settings; choose another destination or pass overwrite=True "
                         "(--overwrite) to replace it")
    if attrs.get("complete"):
        return "complete"
    if not resume:
        return "fresh"
    return "finalize" if conversion.get("state") == "finalizing" else "resume"


def _parses(writer: StoreWriter) -> bool:
    """Whether the root zarr.json is JSON (a Zarr node of some kind)."""
    try:
        return isinstance(json.loads(writer.raw.get("zarr.json") or b""), dict)
    except ValueError:
        return False


def _done_summary(url: str, writer: StoreWriter, summary: ConvertSummary, *, resumed: int,
                  t0: float) -> ConvertSummary:
    """The summary of a store that is (now) complete, read back from its attributes."""
    s = (writer.read_attrs() or {}).get("summary") or {}
    summary.records_in = s.get("records_in", 0)
    summary.records_ok = s.get("records_ok", 0)
    summary.records_skipped = s.get("records_skipped", 0)
    summary.skipped_reasons = dict(s.get("skipped_reasons", {}))
    summary.windows = dict(sorted(s.get("windows", {}).items(),
                                  key=lambda kv: stream_order(kv[0])))
    summary.problems = list(s.get("problems", []))
    summary.batches_resumed = resumed
    summary.already_complete = resumed == 0
    summary.seconds = time.perf_counter() - t0
    return summary


def _finalize(writer: StoreWriter) -> None:
    """Delete the staging area, then set ``complete`` (the very last write)."""
    writer.raw.delete_prefix(f"{STAGING}/blocks")
    writer.raw.delete_prefix(STAGING)
    writer.seal()  # the integrity record readers check against (biosig_prep.store.integrity)
    attrs = writer.read_attrs() or {}
    conversion = {**(attrs.get("conversion") or {}), "state": "complete"}
    writer.update_attrs(conversion=conversion, complete=True)
