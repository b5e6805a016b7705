"""Benchmark (issue 21): the streaming embedder's latency and its memory over long streams.

The signal is real: the 50 twelve-lead CinC 2021 records of shared/data (500 Hz, 10 s each)
read with biosig-prep's reader and concatenated (500 s), repeated as often as a duration needs,
delivered in chunks of ``--chunk-s`` seconds (a device's packets), as fast as the embedder
takes them.

``--latency``  per model and backend: the end-to-end latency from the last sample of a window
               to its embedding = the filter lookahead (``lookahead_s``: those seconds of
               future signal must arrive first) + the compute time of the push call that
               returned it (preprocessing + encoder, one thread); median and 95th percentile.
``--memory``   peak memory of a 10-minute against a one-hour stream, each in a fresh
               subprocess: growth of the peak resident set (VmHWM, reset before streaming) and
               tracemalloc's peak of Python/numpy allocations while streaming.

Usage: python tools/bench/bench_stream.py --work bench-onnx-out [--latency] [--memory]
(``--work``: the folder of tools/bench/bench_onnx.py, whose Hub folders it reuses.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("BIOSIG_SHARED_DATA", ROOT.parent / "shared" / "data"))


def real_signal() -> tuple[np.ndarray, list[str], float]:
    from biosig_prep.readers import read_wfdb

    recs = [read_wfdb(p) for p in sorted((DATA / "ecg" / "cinc2021").glob("*.hea"))]
    chans = recs[0].channels
    recs = [r for r in recs if r.channels == chans and r.fs == recs[0].fs]
    return np.concatenate([r.signals for r in recs], axis=1), chans, recs[0].fs


def chunks(x: np.ndarray, fs: float, seconds: float, chunk_s: float):
    step = int(round(chunk_s * fs))
    total = int(round(seconds * fs))
    n = x.shape[1]
    for i in range(0, total, step):
        j = i % n
        c = x[:, j:j + min(step, total - i)]
        if c.shape[1] < min(step, total - i):  # wrap around the end of the real signal
            c = np.concatenate([c, x[:, :min(step, total - i) - c.shape[1]]], axis=1)
        yield c


def _folder(work: Path, name: str) -> Path:
    from criss_cross.onnx_export import add_onnx, hub_folder_from_source

    folder = work / name
    if not (folder / "model.int8.onnx").is_file():
        hub_folder_from_source(name, folder, overwrite=True)
        add_onnx(folder, int8=True)
    return folder


def latency(work: Path, models: list[str], seconds: float, chunk_s: float) -> list[dict]:
    import torch

    from criss_cross.stream import StreamEmbedder

    torch.set_num_threads(1)
    x, chans, fs = real_signal()
    rows = []
    for name in models:
        folder = _folder(work, name)
        for backend in ("torch", "onnx", "onnx-int8"):
            emb = StreamEmbedder(folder, channels=chans, fs=fs, rate=500, backend=backend,
                                 threads=1, source="cinc2021")
            compute = []
            for c in chunks(x, fs, seconds, chunk_s):
                t0 = time.perf_counter()
                out = emb.push(c)
                if out:
                    compute.append((time.perf_counter() - t0) / len(out))
            med = statistics.median(compute) * 1e3
            p95 = float(np.percentile(compute, 95)) * 1e3
            rows.append({"model": name, "backend": backend, "lookahead_s": emb.latency_s,
                         "compute_median_ms": med, "compute_p95_ms": p95,
                         "windows": len(compute)})
            print(f"| {name} | {backend} | {emb.latency_s:g} s + {med:.0f} ms "
                  f"(p95 {p95:.0f} ms) | {len(compute)} |", flush=True)
    return rows


def _child(work: str, seconds: float, chunk_s: float) -> None:
    """One stream in this process; prints a JSON line of its memory figures."""
    import tracemalloc

    import torch

    from criss_cross.stream import StreamEmbedder

    torch.set_num_threads(1)
    x, chans, fs = real_signal()
    emb = StreamEmbedder(_folder(Path(work), "ecg-small"), channels=chans, fs=fs, rate=500,
                         source="cinc2021")
    emb.push(x[:, :int(fs)])  # warm-up: allocator, first forward
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    rss0 = _status("VmRSS")
    tracemalloc.start()
    n, peak_buf = 0, 0
    for c in chunks(x, fs, seconds, chunk_s):
        n += len(emb.push(c))
        peak_buf = max(peak_buf, emb.prep.buffered)
    n += len(emb.flush())
    _, traced = tracemalloc.get_traced_memory()
    print(json.dumps({"seconds": seconds, "windows": n, "rss_growth_mb": (_status("VmHWM") - rss0)
                      / 1024, "tracemalloc_peak_mb": traced / 2**20,
                      "peak_buffer_samples": peak_buf}))


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    return 0


def memory(work: Path, chunk_s: float) -> list[dict]:
    rows = []
    for seconds in (600.0, 3600.0):
        proc = subprocess.run([sys.executable, __file__, "--child", str(work), str(seconds),
                               str(chunk_s)], capture_output=True, text=True, check=True)
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(doc)
        print(f"| {seconds / 60:g} min | {doc['windows']} | {doc['rss_growth_mb']:.1f} | "
              f"{doc['tracemalloc_peak_mb']:.1f} | {doc['peak_buffer_samples']} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1], float(argv[2]), float(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="bench-onnx-out", type=Path)
    ap.add_argument("--models", default="ecg-small,ecg-base")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--seconds", type=float, default=120.0, help="stream length for --latency")
    ap.add_argument("--chunk-s", type=float, default=0.1)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    out: dict = {}
    if a.latency:
        print("| model | backend | latency: lookahead + compute (median) | windows |\n"
              "|---|---|---|---|")
        out["latency"] = latency(a.work, a.models.split(","), a.seconds, a.chunk_s)
    if a.memory:
        print("| stream | windows | peak RSS growth MB | tracemalloc peak MB | peak buffer "
              "(samples) |\n|---|---|---|---|---|")
        out["memory"] = memory(a.work, a.chunk_s)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
