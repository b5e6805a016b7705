"""Loader throughput: criss_cross.data against per-window random access and a sequential read.

Usage: python tools/bench/bench_loader.py [--records 150] [--workers 2] [--repeats 3]

Builds (once, under bench-out/) a store of a few thousand (12, 10, 200) windows with
``biosig-prep convert`` from a synthetic Challenge-style corpus (40 s, 12-lead, 500 Hz records
converted to ecg@500 and ecg@1000), then reads every window of both streams, warm page cache:

  (a)  criss_cross.data: WindowDataset + make_loader (reader threads), batches of 128
  (a1) the same with num_workers=0 (read in the consuming thread: the whole-shard reads alone)
  (a2) the same with DataLoader worker processes
  (b)  a plain torch Dataset whose __getitem__ reads one window (zarr indexing; channel masks
       in memory), DataLoader(shuffle=True, batch_size=128, num_workers worker processes)
  (c)  reading the same windows sequentially, one whole shard per zarr call, one process
       (the floor a shuffled loader is measured against)
  (c0) the shard objects' bytes alone, no decoding (what the disk/page cache gives)

Prints a Markdown table of windows/s (median of the repeats), the CPU time per window where all
the work is in this process (a steadier figure on a shared machine), and the ratios the issue
asks for.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from biosig_prep import open_store
from criss_cross.data import WindowDataset, make_loader, open_sources

STREAMS = ["ecg@500", "ecg@1000"]


def build_store(out: Path, records: int) -> str:
    from biosig_prep import convert
    from biosig_prep.config import PrepConfig
    from biosig_prep.synth.challenge import write_challenge_corpus

    store = out / f"loader-{records}.zarr"
    if store.exists():
        try:
            open_store(str(store))
            return str(store)
        except ValueError:
            pass
    corpus = out / f"corpus-{records}"
    if not (corpus / "manifest.json").exists():
        write_challenge_corpus(corpus, n_records=records, sources=["JS"], durations=[40],
                               quirks=False, broken=0)
    convert([corpus], store, PrepConfig(rates=[500, 1000]), progress=False, overwrite=True)
    return str(store)


class PerWindow(Dataset):
    """The plain approach: one zarr read per window (channel masks held in memory, as the
    criss_cross loader holds them)."""

    def __init__(self, url: str, streams: list[str]):
        self.url, self.streams = url, streams
        store = open_store(url)
        self.masks = {s: np.asarray(store.stream(s).channel_mask[:]) for s in streams}
        self.ids = [(s, i) for s in streams for i in range(len(store.stream(s)))]
        self._store = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int):
        if self._store is None:
            self._store = open_store(self.url)
        s, i = self.ids[k]
        w = np.asarray(self._store.stream(s).windows[i])
        return torch.from_numpy(w), torch.from_numpy(self.masks[s][i])


def run_ours(url: str, workers: int, kind: str = "thread") -> float:
    sources = open_sources([url], STREAMS)
    ds = WindowDataset(sources, batch_size=128, seed=0, num_epochs=1)
    n = 0
    t, c = time.perf_counter(), time.process_time()
    for batch in make_loader(ds, num_workers=workers, workers=kind):
        n += len(batch["windows"])
    dt, dc = time.perf_counter() - t, time.process_time() - c
    assert n == sum(s.n for s in sources)
    return n / dt, (dc / n * 1e6 if kind == "thread" else None)


def run_per_window(url: str, workers: int) -> float:
    ds = PerWindow(url, STREAMS)
    kw = {"persistent_workers": False} if workers else {}
    loader = DataLoader(ds, batch_size=128, shuffle=True, num_workers=workers, **kw)
    n = 0
    t, c = time.perf_counter(), time.process_time()
    for w, _ in loader:
        n += len(w)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    assert n == len(ds)
    return n / dt, (dc / n * 1e6 if workers == 0 else None)


def run_sequential(url: str) -> float:
    store = open_store(url)
    n = 0
    t, c = time.perf_counter(), time.process_time()
    for s in STREAMS:
        st = store.stream(s)
        k = st.shard_size
        for a in range(0, len(st), k):
            n += len(st.windows[a : a + k])
    return n / (time.perf_counter() - t), (time.process_time() - c) / n * 1e6


def run_bytes(url: str) -> float:
    files = [p for s in STREAMS for p in (Path(url) / s / "windows" / "c").rglob("*")
             if p.is_file()]
    n = sum(len(open_store(url).stream(s)) for s in STREAMS)
    t, c = time.perf_counter(), time.process_time()
    for p in files:
        p.read_bytes()
    return n / (time.perf_counter() - t), (time.process_time() - c) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    url = build_store(args.out, args.records)
    store = open_store(url)
    n = sum(len(store.stream(s)) for s in STREAMS)
    st = store.stream(STREAMS[0])
    print(f"store {url}: {n} windows of {tuple(st.windows.shape[1:])} in {STREAMS}, "
          f"shard {st.shard_size} windows, codec {type(st.windows.metadata.codecs[0].codecs[-1]).__name__}")
    cases = {
        f"(a) criss_cross loader, {args.workers} reader threads":
            lambda: run_ours(url, args.workers),
        "(a1) criss_cross loader, in-process": lambda: run_ours(url, 0),
        f"(a2) criss_cross loader, {args.workers} worker processes":
            lambda: run_ours(url, args.workers, "process"),
        f"(b) per-window Dataset, shuffle, {args.workers} workers":
            lambda: run_per_window(url, args.workers),
        "(b1) per-window Dataset, shuffle, in-process": lambda: run_per_window(url, 0),
        "(c) sequential whole shards (zarr)": lambda: run_sequential(url),
        "(c0) shard bytes only, no decoding": lambda: run_bytes(url),
    }
    results: dict[str, list[tuple[float, float | None]]] = {}
    for _ in range(args.repeats):  # interleaved, so a busy moment hits every case alike
        for name, fn in cases.items():
            results.setdefault(name, []).append(fn())
    med = {k: statistics.median(r for r, _ in v) for k, v in results.items()}
    print("\n| case | windows/s (median) | CPU µs/window (median, one process) | runs (windows/s) |")
    print("|---|---:|---:|---|")
    for k, v in results.items():
        cpu = [c for _, c in v if c is not None]
        cpu_s = f"{statistics.median(cpu):.0f}" if cpu else "-"
        runs = ", ".join(f"{r:.0f}" for r, _ in v)
        print(f"| {k} | {med[k]:,.0f} | {cpu_s} | {runs} |")
    a = med[f"(a) criss_cross loader, {args.workers} reader threads"]
    b = med[f"(b) per-window Dataset, shuffle, {args.workers} workers"]
    c = med["(c) sequential whole shards (zarr)"]
    print(f"\n(a)/(b) = {a / b:.1f}x (goal >= 10x); (a)/(c) = {a / c:.2f}x (goal >= 0.5x)")


if __name__ == "__main__":
    main()
