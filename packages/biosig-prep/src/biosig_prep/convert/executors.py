"""Executors: where the tasks of a run execute (this process, or dask.distributed), behind
one small protocol (:class:`Executor`) that the driver is given."""

from __future__ import annotations

import gc
import heapq
import logging
import multiprocessing
import os
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Protocol

from biosig_prep.convert.plan import AUTO_PROCESSES_BYTES, AUTO_PROCESSES_MIN_CORES
from biosig_prep.convert.stage import pick_table, run_batch
from biosig_prep.convert.types import Batch
from biosig_prep.store import (
    RawIO,
)

__all__ = ["Executor", "LocalExecutor", "ForkExecutor", "DaskExecutor", "fork_workers",
           "start_executor"]


class Executor(Protocol):
    """What the driver needs of an executor.

    submit(tag, fn, *args, priority, report) runs ``fn(*args)`` (an argument that is a handle
        of an earlier task stands for that task's value) and returns a handle of its value;
        ``report`` (a function of the value) gives what :meth:`next_done` hands back instead
        of the value itself (the value stays where it was made).
    next_done() -> (tag, reported value) of the next finished task, in completion order; a
        task's exception is raised here.
    pick(handle, table) -> a handle of ``pick_table(value, table)`` (one table of a batch result).
    lookahead : batches that may run ahead of the driver's frontier; ``len()`` tasks pending.
    name : where the tasks run, for the summary ("4 threads", "2 forked processes", ...).
    """

    lookahead: int
    name: str

    def submit(self, tag: Any, fn: Callable, *args: Any, priority: int = 0,
               report: Callable[[Any], Any] | None = None) -> Any: ...

    def next_done(self) -> tuple[Any, Any]: ...

    def pick(self, handle: Any, table: str) -> Any: ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class _LocalTask:
    def __init__(self, fn: Callable, args: tuple, report: Callable | None) -> None:
        self.fn, self.args, self.report, self.value = fn, args, report, None

    def run(self) -> Any:
        """Run the task; return what it reports."""
        args = [a.value if isinstance(a, _LocalTask) else a for a in self.args]
        self.value = self.fn(*args)
        return self.value if self.report is None else self.report(self.value)


class LocalExecutor:
    """Tasks in this process, highest priority first: one at a time in the calling thread
    (``threads=0``), or on a pool of ``threads`` threads. No scheduler, no serialization: the
    numerical work (filters, resampling, compression, file I/O) releases the GIL."""

    def __init__(self, threads: int = 0) -> None:
        self._heap: list[tuple[int, int, Any, _LocalTask]] = []
        self._n = 0
        self._pending = 0
        self.lookahead = threads + 2 if threads else 1
        self.name = f"{threads} threads" if threads else "this process"
        self._threads: list[threading.Thread] = []
        if threads:
            self._cv = threading.Condition()
            self._done: queue.Queue = queue.Queue()
            self._closed = False
            for i in range(threads):
                t = threading.Thread(target=self._work, name=f"biosig-prep-{i}", daemon=True)
                t.start()
                self._threads.append(t)

    def submit(self, tag: Any, fn: Callable, *args: Any, priority: int = 0,
               report: Callable[[Any], Any] | None = None) -> _LocalTask:
        task = _LocalTask(fn, args, report)
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
        return tag, value

    def pick(self, handle: _LocalTask, table: str) -> Any:
        return pick_table(handle.value, table)

    def close(self) -> None:
        if self._threads:
            with self._cv:
                self._closed = True
                self._heap.clear()
                self._cv.notify_all()
            for t in self._threads:
                t.join()
        self._heap.clear()


class ForkExecutor:
    """Batch tasks on ``processes`` worker processes forked from this one, every other task
    (block writes, spills: their data is already here) on one thread of this process.

    Forked workers start in milliseconds with every module this process has imported (no
    second import of scipy, no scheduler), and process records without sharing a GIL, so the
    cores are all busy. A batch's result (its encoded windows) comes back to this process by
    pipe, as with threads it would simply stay here. Fork is only safe while this process has
    a single thread, so the workers are forked in the constructor: create the executor before
    anything starts a thread (zarr's event loop does, at the first store operation); see
    :func:`fork_workers`.
    """

    def __init__(self, processes: int) -> None:
        if threading.active_count() > 1:
            raise RuntimeError("ForkExecutor must be created while this process has a single "
                               "thread (fork copies no other thread)")
        self._pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
        # the objects that exist now are the workers' too: keep them out of the collector, or
        # its passes write to every page they sit on and each worker copies those pages
        gc.freeze()
        try:
            self._pool.submit(int)  # forks every worker now (the fork context starts them all)
        finally:
            gc.unfreeze()
        self._local: ThreadPoolExecutor | None = None  # started after the fork, when needed
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0
        self.lookahead = processes + 2
        self.name = f"{processes} forked processes"

    def submit(self, tag: Any, fn: Callable, *args: Any, priority: int = 0,
               report: Callable[[Any], Any] | None = None) -> Future:
        if fn is run_batch:
            fut = self._pool.submit(fn, *args)
        else:  # its arguments are values in this process (see pick)
            if self._local is None:
                self._local = ThreadPoolExecutor(1, thread_name_prefix="biosig-prep-write")
            fut = self._local.submit(fn, *[a.result() if isinstance(a, Future) else a
                                           for a in args])
        self._pending += 1
        fut.add_done_callback(lambda f: self._done.put((tag, report, f)))
        return fut

    def __len__(self) -> int:
        return self._pending

    def next_done(self) -> tuple[Any, Any]:
        tag, report, fut = self._done.get()
        self._pending -= 1
        value = fut.result()  # raises the task's exception
        return tag, value if report is None else report(value)

    def pick(self, handle: Future, table: str) -> Any:
        return pick_table(handle.result(), table)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._local is not None:
            self._local.shutdown(wait=True, cancel_futures=True)


def fork_workers(workers: int | None, scheduler: Any, processes: bool | None,
                 batches: Sequence[Batch], url: str) -> int:
    """Worker processes of the default executor if it is a :class:`ForkExecutor`, else 0.

    The default (``workers``, ``scheduler`` and ``processes`` all None) forks one worker per
    core for a local destination on Linux (macOS has fork, but its system libraries are not
    safe after it), when the run has more than one batch, and neither a dask process cluster
    is due (see :func:`start_executor`) nor this process runs other threads already (a test
    runner's, an embedding application's): then threads of this process.
    """
    if workers is not None or scheduler is not None or processes is not None:
        return 0
    n = os.cpu_count() or 1
    if n < 2 or len(batches) <= 1 or "://" in url:
        return 0
    if n >= AUTO_PROCESSES_MIN_CORES and _input_bytes(batches) >= AUTO_PROCESSES_BYTES:
        return 0
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 0
    return n


class DaskExecutor:
    """Tasks on a dask.distributed cluster, reported in completion order.

    A task's value stays on its worker (later tasks receive it from there); with ``report``
    a small follow-up task on the same worker sends the driver only what it reports.
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
        self.name = f"dask ({threads} worker threads)"

    def submit(self, tag: Any, fn: Callable, *args: Any, priority: int = 0,
               report: Callable[[Any], Any] | None = None) -> Any:
        key = f"biosig-prep-{self._run}-" + "-".join(str(t) for t in tag)
        fut = self.client.submit(fn, *args, key=key, priority=priority, pure=False, retries=0)
        done = fut if report is None else self.client.submit(
            report, fut, key=f"{key}-report", priority=priority + 1, pure=False)
        self._tags[done.key] = tag
        self._done.add(done)
        return fut

    def __len__(self) -> int:
        return self._done.count()

    def pick(self, handle: Any, table: str) -> Any:
        """A future of one table's part of a batch result (on the same worker)."""
        return self.client.submit(pick_table, handle, table, key=f"{handle.key}-{table}",
                                  priority=100, pure=False)

    def next_done(self) -> tuple[Any, Any]:
        fut = next(self._done)
        tag = self._tags.pop(fut.key)
        return tag, fut.result()  # raises the task's exception

    def close(self) -> None:
        try:
            self._done.clear()
        except Exception:  # noqa: BLE001 - best effort while shutting down
            pass
        if self.owns_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def start_executor(workers: int | None, scheduler: Any, batches: Sequence[Batch], io: RawIO,
                   processes: bool | None = None, forked: ForkExecutor | None = None
                   ) -> Executor:
    """The executor of a run (see the module docstring for the choices); ``forked``, made
    earlier (see :func:`fork_workers`), is the default's when given."""
    if forked is not None:
        return forked
    if scheduler is None and (workers == 0 or (workers is None and len(batches) <= 1)):
        return LocalExecutor(0)
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 0:
        raise ValueError(f"workers must be >= 0, got {n}")
    if scheduler is None:
        if processes is None:
            processes = workers is not None or (
                n >= AUTO_PROCESSES_MIN_CORES and _input_bytes(batches) >= AUTO_PROCESSES_BYTES)
        if not processes:
            return LocalExecutor(n)
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        if isinstance(scheduler, Client):
            return DaskExecutor(scheduler, io, owns_client=False)
        return DaskExecutor(Client(str(scheduler)), io)
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
        return DaskExecutor(Client(cluster), io, cluster)


def _input_bytes(batches: Sequence[Batch]) -> int:
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
