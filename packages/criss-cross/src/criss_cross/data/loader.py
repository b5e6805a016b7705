"""Readers ahead of the consumer: :func:`make_loader` (threads by default, or DataLoader worker
processes). See :mod:`criss_cross.data` for the whole picture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from criss_cross.data.dataset import WindowDataset

__all__ = ["ThreadedLoader", "make_loader"]

_END = object()


class ThreadedLoader:
    """Reader threads in this process, each running one worker's stream of a WindowDataset;
    batches are taken from the threads round-robin, so the order equals a
    ``DataLoader(num_workers=n)`` over the same dataset.

    Why threads by default: a batch of 128 windows of (12, 10, 200) is 12 MB, and handing it
    from a worker process to the trainer (shared memory segment per tensor, page faults on
    both sides) cost ~20 ms per batch on the 2-core development machine, a ceiling of ~6,000
    windows/s before any reading is done; the readers decode in C (Blosc, numpy file reads),
    so threads overlap with the training step without that copy.
    """

    def __init__(self, dataset: WindowDataset, *, num_workers: int = 2, prefetch_factor: int = 4,
                 pin_memory: bool = False):
        if num_workers < 1:
            raise ValueError(f"num_workers ({num_workers}) must be at least 1 for threads")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = max(1, prefetch_factor)
        self.pin_memory = pin_memory

    def __iter__(self) -> Iterator[dict]:
        import queue
        import threading

        n = self.num_workers
        queues = [queue.Queue(self.prefetch_factor) for _ in range(n)]
        stop = threading.Event()

        def run(w: int) -> None:
            try:
                for batch in self.dataset.stream(w, n):
                    if self.pin_memory:
                        batch["windows"] = batch["windows"].pin_memory()
                        batch["channel_mask"] = batch["channel_mask"].pin_memory()
                        batch["patch_mask"] = batch["patch_mask"].pin_memory()
                    while not stop.is_set():
                        try:
                            queues[w].put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                queues[w].put(_END)
            except BaseException as exc:  # handed to the consumer, re-raised there
                queues[w].put(exc)

        threads = [threading.Thread(target=run, args=(w,), daemon=True,
                                    name=f"criss-cross-reader-{w}") for w in range(n)]
        for t in threads:
            t.start()
        try:
            active = list(range(n))
            while active:
                for w in list(active):
                    item = queues[w].get()
                    if item is _END:
                        active.remove(w)
                        continue
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            stop.set()
            for q in queues:  # unblock producers waiting on a full queue
                try:
                    while True:
                        q.get_nowait()
                except queue.Empty:
                    pass
            for t in threads:
                t.join(timeout=5)


def make_loader(
    dataset: WindowDataset,
    *,
    num_workers: int = 2,
    prefetch_factor: int = 4,
    pin_memory: bool = False,
    workers: str = "thread",
) -> Any:
    """An iterable of the dataset's batches read ahead by ``num_workers`` readers.

    workers : "thread" (default: :class:`ThreadedLoader`, readers in this process, no
        inter-process copy) or "process" (a :class:`torch.utils.data.DataLoader` with worker
        processes).
        Both give the same batches in the same order. ``num_workers=0`` reads in the
        consuming thread (no overlap).
    """
    if workers not in ("thread", "process"):
        raise ValueError(f"workers must be 'thread' or 'process', got {workers!r}")
    if workers == "thread" and num_workers > 0:
        return ThreadedLoader(dataset, num_workers=num_workers, prefetch_factor=prefetch_factor,
                              pin_memory=pin_memory)
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        **kwargs,
    )

