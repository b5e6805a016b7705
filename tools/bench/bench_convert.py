"""Conversion throughput: ``biosig-prep convert`` against a plain script and against wfdb alone.

Usage: python tools/bench/bench_convert.py [--records 500] [--big 2000] [--repeats 3]
                                           [--out bench-out/convert] [--json FILE]
       python tools/bench/bench_convert.py --whole [--records 600] [--repeats 5]
                                           [--out bench-out/convert]

Generates (once, under --out) Challenge-style corpora of 10 s, 12-lead, 500 Hz records in
MATLAB v4 (``biosig_prep.synth``; sources PTB-XL, Georgia, Chapman-Ningbo), warms the page
cache, then measures in one run, each in a fresh process, repeats interleaved:

  (a)  ``biosig_prep.convert(src, dst)`` with its defaults: all four rates (100, 200, 500,
       1000 Hz), the default executor, compression and layout
  (a') the ``biosig-prep convert SRC DST`` command (interpreter start and imports included)
  (b)  a plain sequential script: per record ``wfdb.rdrecord``, ``scipy.signal.butter`` +
       ``filtfilt`` (b/a form), a notch (``iirnotch`` + ``filtfilt``), ``scipy.signal.resample``
       per rate, ``numpy.save`` per window
  (c)  merely reading the same files with ``wfdb.rdrecord``, sequentially

and reports records/s (median of the repeats, wall clock, with the CPU seconds the process
and its children used), the peak memory (RSS of the process and all its children, sampled
every 10 ms) of (a) at two corpus sizes, the store's bytes per record against the raw files,
and checks that biosig-prep's reader gives exactly ``wfdb.rdrecord``'s values and that its
windows equal those of the same processing fed by ``wfdb.rdrecord``. Prints Markdown tables.
The machine is shared: the load average before and after is printed beside the figures.

``--whole`` (issue 19) instead compares two whole processes, start-up included, on the mixed
corpus of ``bench_store.py`` (600 Challenge-style records of all seven sources, 10-120 s, 257,
500 and 1000 Hz, ~86 MiB of ``.hea`` + ``.mat``; clean: no quirks, nothing broken): the
``biosig-prep convert SRC DST`` command with its defaults against the script a user would
write (``tools/bench/user_convert_script.py``: ``wfdb.rdrecord``, Butterworth band-pass and
notch with ``filtfilt``, ``resample_poly`` per rate, one ``.npy`` per record and rate). The two
commands alternate, ``--repeats`` times each; it reports the median wall time, the median CPU
time of the process and its children (``getrusage``), and the cores used (CPU / wall).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RATES = (100, 200, 500, 1000)
WINDOW, PATCHES, PATCH = 2000, 10, 200


# ---- the three workloads (each runs in its own process: `--child NAME SRC DST`) ----------------


def run_convert(src: Path, dst: Path) -> int:
    from biosig_prep import convert

    summary = convert([src], dst, progress=False)
    return summary.records_ok


def run_plain(src: Path, dst: Path) -> int:
    """What one writes without a library: wfdb, b/a filters, FFT resampling, a file per window."""
    import numpy as np
    import wfdb
    from scipy.signal import butter, filtfilt, iirnotch, resample

    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    for header in sorted(src.glob("*.hea")):
        rec = wfdb.rdrecord(str(header.with_suffix("")))
        x = rec.p_signal.T  # (12, n_times), mV
        fs = float(rec.fs)
        b, a = butter(4, [0.5, 40.0], btype="band", fs=fs)
        y = filtfilt(b, a, x, axis=-1)
        bn, an = iirnotch(50.0, 30.0, fs=fs)
        y = filtfilt(bn, an, y, axis=-1)
        for rate in RATES:
            z = y if rate == fs else resample(y, int(round(y.shape[-1] * rate / fs)), axis=-1)
            for i in range(z.shape[-1] // WINDOW):
                w = z[:, i * WINDOW:(i + 1) * WINDOW].reshape(-1, PATCHES, PATCH)
                np.save(dst / f"{header.stem}_{rate}_{i}.npy", w.astype(np.float32))
        n += 1
    return n


def run_read(src: Path, dst: Path) -> int:
    import wfdb

    n = 0
    for header in sorted(src.glob("*.hea")):
        wfdb.rdrecord(str(header.with_suffix("")))
        n += 1
    return n


WORKLOADS = {"a": run_convert, "b": run_plain, "c": run_read}


def child(name: str, src: Path, dst: Path) -> None:
    import resource

    def cpu_seconds() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    fn = WORKLOADS[name]
    _preload(name)  # imports are not part of the workload (the CLI figure (a') has them)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    n = fn(src, dst)
    seconds = time.perf_counter() - t0
    print(json.dumps({"records": n, "seconds": seconds, "cpu": cpu_seconds() - cpu0}))


def _preload(name: str) -> None:
    if name == "a":
        import dask.distributed  # noqa: F401

        import biosig_prep.convert  # noqa: F401
    else:
        import scipy.signal  # noqa: F401
        import wfdb  # noqa: F401


# ---- measuring ----------------------------------------------------------------------------------


def measure(cmd: list[str]) -> dict:
    """Run ``cmd``; wall time, peak RSS of the process tree, and the JSON it prints (if any)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss
            for c in ps.children(recursive=True):
                try:
                    rss += c.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    result = {"wall": wall, "peak_rss": peak}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if lines:
        result.update(json.loads(lines[-1]))
    return result


def run_child(name: str, src: Path, dst: Path) -> dict:
    shutil.rmtree(dst, ignore_errors=True)
    res = measure([sys.executable, __file__, "--child", name, str(src), str(dst)])
    shutil.rmtree(dst, ignore_errors=True)
    return res


def run_cli(src: Path, dst: Path) -> dict:
    shutil.rmtree(dst, ignore_errors=True)
    exe = Path(sys.executable).with_name("biosig-prep")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "biosig_prep.cli"]
    res = measure(cmd + ["convert", str(src), str(dst), "--no-progress"])
    return res


def corpus(out: Path, n: int) -> Path:
    from biosig_prep.synth.challenge import write_challenge_corpus

    path = out / f"corpus-{n}"
    if not (path / "manifest.json").exists():
        shutil.rmtree(path, ignore_errors=True)
        write_challenge_corpus(path, n_records=n, seed=0, sources=["HR", "E", "JS"],
                               durations=[10.0], quirks=False, broken=0)
    return path


def warm(path: Path) -> int:
    total = 0
    for p in path.iterdir():
        if p.is_file():
            total += len(p.read_bytes())
    return total


def raw_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.suffix in (".hea", ".mat"))


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_equal_to_wfdb(src: Path, store_path: Path, n: int = 60) -> dict:
    """biosig-prep's reader against wfdb.rdrecord, and the stored windows against the same
    processing fed by wfdb.rdrecord."""
    import numpy as np
    import wfdb

    from biosig_prep import open_store
    from biosig_prep.config import PrepConfig
    from biosig_prep.processing import process_recording
    from biosig_prep.readers import discover, read_source
    from biosig_prep.recording import Recording

    store = open_store(store_path)
    ids = list(store.records()["id"])
    streams = {name: store.stream(name) for name in store.stream_names}
    records = {name: s.record[:] for name, s in streams.items()}
    config = PrepConfig.model_validate(store.config)
    sources = discover([src])
    step = max(1, len(sources) // n)
    max_diff, windows_equal, checked = 0.0, True, 0
    for src_file in sources[::step]:
        ours = read_source(src_file)[0]
        rec = wfdb.rdrecord(os.path.splitext(src_file.path)[0])
        theirs = rec.p_signal.T
        max_diff = max(max_diff, float(np.max(np.abs(ours.signals - theirs))))
        via_wfdb = Recording(record_id=ours.record_id, source=ours.source, path=ours.path,
                             modality="ecg", fs=float(rec.fs), signals=theirs,
                             channels=list(rec.sig_name), units=list(rec.units),
                             metadata=dict(ours.metadata))
        processed = process_recording(via_wfdb, config)
        row = ids.index(ours.record_id)
        for name, sw in processed.streams.items():
            stored = streams[name].windows.get_orthogonal_selection(
                (np.flatnonzero(records[name] == row), slice(None), slice(None), slice(None)))
            windows_equal &= stored.tobytes() == sw.windows.astype(np.float32).tobytes()
        checked += 1
    return {"records_checked": checked, "reader_max_abs_diff_mV": max_diff,
            "windows_equal": bool(windows_equal)}


# ---- whole processes: the command against a user's script (issue 19) -----------------------

USER_SCRIPT = Path(__file__).with_name("user_convert_script.py")


def mixed_corpus(out: Path, n: int) -> Path:
    """The corpus of ``bench_store.py`` without quirks: all sources, INCART cut to 120 s."""
    from biosig_prep.synth.challenge import write_challenge_corpus

    path = out / f"mixed-{n}"
    if not (path / "manifest.json").exists():
        shutil.rmtree(path, ignore_errors=True)
        write_challenge_corpus(path, n_records=n, seed=0, quirks=False, broken=0,
                               long_seconds=120.0)
    return path


def timed(cmd: list[str]) -> dict:
    """Wall and CPU seconds (user + system, the process and its children) of one command."""
    import resource

    def children_cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = children_cpu() - cpu0
    return {"wall": wall, "cpu": cpu, "cores": cpu / wall}


def whole_process(args: argparse.Namespace) -> None:
    """``biosig-prep convert`` against the user's script, whole processes, alternating."""
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    src = mixed_corpus(out, args.records)
    raw = raw_bytes(src)
    warm(src)
    exe = Path(sys.executable).with_name("biosig-prep")
    ours = [str(exe)] if exe.exists() else [sys.executable, "-m", "biosig_prep.cli"]
    commands = {
        "biosig-prep convert": ours + ["convert", str(src), str(out / "whole.zarr"),
                                       "--no-progress"],
        "user script": [sys.executable, str(USER_SCRIPT), str(src), str(out / "whole-npy")],
    }
    info = machine()
    runs: dict[str, list[dict]] = {k: [] for k in commands}
    for rep in range(args.repeats):
        for name, cmd in commands.items():
            shutil.rmtree(cmd[-2] if name == "biosig-prep convert" else cmd[-1],
                          ignore_errors=True)
            runs[name].append(timed(cmd))
        print(f"repeat {rep + 1}/{args.repeats}: " + ", ".join(
            f"{k} {v[-1]['wall']:.2f} s wall, {v[-1]['cpu']:.2f} s CPU" for k, v in runs.items()),
            file=sys.stderr, flush=True)
    info["load_after"] = os.getloadavg()
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall", "cpu", "cores")}
           for k, v in runs.items()}
    ours_m, user_m = med["biosig-prep convert"], med["user script"]
    print(f"Machine: {info['cpus']} CPUs ({info['cpu']}), Python {info['python']}; load "
          f"average before {info['load_before'][0]:.1f}, after {info['load_after'][0]:.1f} "
          "(shared machine).\n")
    print(f"Corpus: {args.records} records, {raw / 2**20:.1f} MiB of .hea + .mat, 4 rates; "
          f"whole processes, alternating, median of {args.repeats}.\n")
    print("| command | wall s | CPU s | cores used |\n|---|---:|---:|---:|")
    for name, m in med.items():
        print(f"| {name} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['cores']:.2f} |")
    print(f"\nuser script / biosig-prep convert: {user_m['wall'] / ours_m['wall']:.2f}x in wall "
          f"time (goal >= 3x), {user_m['cpu'] / ours_m['cpu']:.2f}x in CPU time.")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": runs, "median": med,
                                         "raw_bytes": raw}, indent=2))


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "load_before": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=500)
    ap.add_argument("--big", type=int, default=2000, help="second corpus size (peak memory)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench-out/convert"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--whole", action="store_true",
                    help="only the whole-process comparison with the user's script (issue 19)")
    ap.add_argument("--child", nargs=3, metavar=("NAME", "SRC", "DST"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, src, dst = args.child
        child(name, Path(src), Path(dst))
        return
    if args.whole:
        whole_process(args)
        return

    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    small = corpus(args.out, args.records)
    big = corpus(args.out, args.big) if args.big else None
    warm(small)
    dst = args.out / "work"
    runs: dict[str, list[dict]] = {"a": [], "a_cli": [], "b": [], "c": []}
    for rep in range(args.repeats):
        for name in ("a", "b", "c"):
            runs[name].append(run_child(name, small, dst / f"{name}.out"))
        runs["a_cli"].append(run_cli(small, dst / "cli.zarr"))
        print(f"repeat {rep + 1}/{args.repeats}: " + ", ".join(
            f"{k} {v[-1]['wall']:.1f} s" for k, v in runs.items()), file=sys.stderr, flush=True)

    # the store of (a) for the size and equality checks
    from biosig_prep import convert

    store = dst / "store.zarr"
    shutil.rmtree(store, ignore_errors=True)
    convert([small], store, progress=False)
    store_bytes, raw = tree_bytes(store), raw_bytes(small)
    equal = check_equal_to_wfdb(small, store)
    big_runs = []
    if big is not None:
        warm(big)
        for _ in range(max(1, min(args.repeats, 2))):
            big_runs.append(run_child("a", big, dst / "big.out"))
    info["load_after"] = os.getloadavg()

    n = args.records

    def rate(rs: list[dict], key: str = "seconds") -> float:
        return n / statistics.median(r.get(key, r["wall"]) for r in rs)

    a, b, c = rate(runs["a"]), rate(runs["b"]), rate(runs["c"])
    a_cli = rate(runs["a_cli"], "wall")
    cpu = {k: statistics.median(r["cpu"] for r in runs[k]) / n * 1e3 for k in ("a", "b", "c")}
    table = [
        f"| workload | records/s (median of {args.repeats}) | CPU ms/record | peak RSS |",
        "|---|---:|---:|---:|",
        f"| (a) `convert()` defaults, 4 rates | {a:.0f} | {cpu['a']:.2f} | "
        f"{max(r['peak_rss'] for r in runs['a']) / 1e6:.0f} MB |",
        f"| (a') `biosig-prep convert` command, incl. start-up | {a_cli:.0f} | - | "
        f"{max(r['peak_rss'] for r in runs['a_cli']) / 1e6:.0f} MB |",
        f"| (b) plain script: rdrecord, filtfilt b/a, notch, resample, np.save | {b:.0f} | "
        f"{cpu['b']:.2f} | {max(r['peak_rss'] for r in runs['b']) / 1e6:.0f} MB |",
        f"| (c) `wfdb.rdrecord` only | {c:.0f} | {cpu['c']:.2f} | "
        f"{max(r['peak_rss'] for r in runs['c']) / 1e6:.0f} MB |",
    ]
    ratios = [f"(a)/(b) = {a / b:.2f}x (goal >= 3x), (a)/(c) = {a / c:.2f}x (goal >= 1x); "
              f"by CPU time per record: (b)/(a) = {cpu['b'] / cpu['a']:.2f}x, "
              f"(c)/(a) = {cpu['c'] / cpu['a']:.2f}x"]
    memory = ["| corpus | records/s of (a) | peak RSS of (a), process + children |",
              "|---:|---:|---:|",
              f"| {n} records | {a:.0f} | {max(r['peak_rss'] for r in runs['a']) / 1e6:.0f} MB |"]
    if big_runs:
        big_rate = args.big / statistics.median(r["seconds"] for r in big_runs)
        memory.append(f"| {args.big} records | {big_rate:.0f} | "
                      f"{max(r['peak_rss'] for r in big_runs) / 1e6:.0f} MB |")
    sizes = ["| bytes per record | raw .hea + .mat | store (4 rates, float32, Blosc-LZ4) |",
             "|---|---:|---:|",
             f"| {n} records | {raw / n / 1e3:.1f} kB | {store_bytes / n / 1e3:.1f} kB "
             f"({store_bytes / raw:.2f}x) |"]
    print(f"Machine: {info['cpus']} CPUs ({info['cpu']}), Python {info['python']}; load "
          f"average before {info['load_before'][0]:.1f}, after {info['load_after'][0]:.1f} "
          "(shared machine).\n")
    print("\n".join(table))
    print("\n" + ratios[0] + "\n")
    print("\n".join(memory) + "\n")
    print("\n".join(sizes) + "\n")
    print(f"Reader vs wfdb.rdrecord on {equal['records_checked']} records: max |difference| "
          f"{equal['reader_max_abs_diff_mV']:.3g} mV; stored windows equal to the same "
          f"processing fed by wfdb.rdrecord: {equal['windows_equal']}.")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": runs, "big_runs": big_runs,
                                         "records_per_s": {"a": a, "a_cli": a_cli, "b": b,
                                                           "c": c},
                                         "cpu_ms_per_record": cpu,
                                         "store_bytes": store_bytes, "raw_bytes": raw,
                                         "equal": equal}, indent=2))


if __name__ == "__main__":
    main()
