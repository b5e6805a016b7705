"""Store schema 2 against schema 1's layout, measured in one run on the same corpus and code.

Usage: python tools/bench/bench_store.py [--records 120] [--repeats 3] [--out bench-out/store]
                                         [--pretrain-steps 300] [--skip-pretrain] [--loader-only]

Variants (the same code, two configs):
  v1  ``encoding: float32`` + ``tail: drop``: schema 1's windows (what the store held before)
  v2  the defaults: int16 at 1 µV (ECG) + ``tail: pad`` (min_valid_fraction 0.5)

Measures, each repeat interleaved (a busy moment on the shared machine hits both alike):
  1. ``convert`` records/s of a synthetic Challenge-style corpus (``biosig-prep synth``
     sources and durations: 10 s for most sources, 10-60 s CPSC, 32-115 s PTB, INCART cut to
     120 s), in a fresh process per run; store bytes per record and per window, per stream.
  2. windows per record at each rate for the 50 real 10 s Challenge records in ../shared/data.
  3. loader windows/s (``criss_cross.data``: 2 reader threads, batches of 128, over
     ecg@200/500/1000) on each store: five epochs from a warm page cache, and one epoch read
     from the disk (the store's pages dropped from the cache first).
  4. pretraining (``--small`` preset, ``steps`` steps, seeds 0 and 1) on the real records stored
     as v1 and as int16 with tail drop (so only the encoding differs): loss / zero_mse over the
     last 50 steps, and the data-wait fraction of a step. Seed 1 gives the run-to-run noise.
Prints Markdown tables; medians of the repeats.
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

ROOT = Path(__file__).resolve().parents[2]
REAL = Path(os.environ.get("BIOSIG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RATES = (100, 200, 500, 1000)
VARIANTS = {
    "v1": {"encoding": {"dtype": "float32"}, "tail": {"policy": "drop"}},
    "v2": {},
}


def _config(variant: str, **extra):
    from biosig_prep.config import PrepConfig

    return PrepConfig.model_validate({**VARIANTS[variant], **extra})


def child_convert(variant: str, src: str, dst: str) -> None:
    import shutil

    from biosig_prep import convert

    shutil.rmtree(dst, ignore_errors=True)
    t0 = time.perf_counter()
    s = convert([src], dst, _config(variant), progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "records_ok": s.records_ok,
                      "records_in": s.records_in, "windows": s.windows}))


def run_convert(variant: str, src: Path, dst: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", variant, str(src), str(dst)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stream_bytes(url: Path) -> dict[str, int]:
    return {f"ecg@{r}": sum(p.stat().st_size for p in (url / f"ecg@{r}").rglob("*")
                             if p.is_file()) for r in RATES}


def evict(url: Path) -> None:
    """Drop the store's files from the page cache (posix_fadvise DONTNEED: no privileges
    needed), so the next read comes from the disk. Dirty pages are not dropped: sync first."""
    os.sync()
    for p in url.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def loader_rate(url: Path, streams: list[str], *, cold: bool) -> float:
    """Windows/s of the loader: ``cold`` one epoch read from the disk (page cache dropped
    first), else five epochs from a warm page cache (a steadier figure: ~1.5 s a run)."""
    from criss_cross.data import WindowDataset, make_loader, open_sources

    sources = open_sources([str(url)], streams)
    ds = WindowDataset(sources, batch_size=128, seed=0, num_epochs=1 if cold else 5)
    if cold:
        evict(url)
    else:  # one untimed epoch brings the store into the page cache
        for _ in make_loader(WindowDataset(sources, batch_size=128, seed=1, num_epochs=1),
                             num_workers=2):
            pass
    n = 0
    t = time.perf_counter()
    for batch in make_loader(ds, num_workers=2):
        n += len(batch["windows"])
    return n / (time.perf_counter() - t)


def pretrain_run(store: Path, out: Path, seed: int, steps: int) -> dict:
    import math

    from criss_cross.pretrain import SMALL_PRESET, PretrainConfig, apply_preset, pretrain

    data = apply_preset({"stores": [str(store)], "streams": ["ecg@200", "ecg@500", "ecg@1000"],
                         "seed": seed, "steps": steps, "checkpoint_every": steps,
                         "num_workers": 1, "threads": 1}, SMALL_PRESET)
    cfg = PretrainConfig.model_validate(data)
    t0 = time.perf_counter()
    s = pretrain(cfg, out, progress=False)
    tail = slice(-50, None)
    ratio = [a / b for a, b in zip(s.losses[tail], s.zero_mses[tail], strict=True)]
    assert all(math.isfinite(r) for r in ratio)
    return {"loss_over_zero_mse": statistics.mean(ratio), "loss": statistics.mean(s.losses[tail]),
            "wait": s.data_wait_fraction, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench-out/store"))
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--skip-pretrain", action="store_true")
    ap.add_argument("--loader-only", action="store_true",
                    help="only the loader figures, on the stores a previous run left in --out")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_convert(*args.child)
        return
    from biosig_prep import convert, open_store
    from biosig_prep.synth.challenge import write_challenge_corpus

    out = args.out.resolve()
    if args.loader_only:
        missing = [v for v in VARIANTS if not (out / f"synth-{v}.zarr").is_dir()]
        if missing:
            raise SystemExit(f"--loader-only needs the stores of a full run in {out} "
                             f"(missing: {', '.join(f'synth-{v}.zarr' for v in missing)})")
        loader_table(out, args.repeats)
        return
    src = out / f"corpus{args.records}"
    if not (src / "manifest.json").exists():
        write_challenge_corpus(src, n_records=args.records, seed=0, broken=0,
                               long_seconds=120.0)
    raw = sum(p.stat().st_size for p in src.rglob("*") if p.suffix in (".hea", ".mat"))
    print(f"load average before: {os.getloadavg()}  cpus: {os.cpu_count()}")

    # 1. convert + bytes
    runs: dict[str, list[dict]] = {"v1": [], "v2": []}
    for _ in range(args.repeats):
        for v in VARIANTS:
            runs[v].append(run_convert(v, src, out / f"synth-{v}.zarr"))
    print(f"\ncorpus: {args.records} records, {raw / 1e6:.1f} MB of .hea + .mat\n")
    print("| variant | records/s (median) | windows | windows/s (median) | runs (records/s) "
          "| store MB | x raw |")
    print("|---|---:|---:|---:|---|---:|---:|")
    sizes = {}
    for v, rs in runs.items():
        rate = [r["records_ok"] / r["seconds"] for r in rs]
        n_win = sum(rs[0]["windows"].values())
        win_rate = [n_win / r["seconds"] for r in rs]
        total = sum(p.stat().st_size for p in (out / f"synth-{v}.zarr").rglob("*") if p.is_file())
        sizes[v] = stream_bytes(out / f"synth-{v}.zarr")
        print(f"| {v} | {statistics.median(rate):.1f} | {n_win:,} | "
              f"{statistics.median(win_rate):,.0f} | {', '.join(f'{x:.1f}' for x in rate)} | "
              f"{total / 1e6:.1f} | {total / raw:.2f} |")
    n_rec = runs["v1"][0]["records_ok"]
    print("\n| stream | v1 windows | v2 windows | v1 kB/record | v2 kB/record | ratio/record "
          "| v1 kB/window | v2 kB/window | ratio/window |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in RATES:
        name = f"ecg@{r}"
        w1, w2 = runs["v1"][0]["windows"].get(name, 0), runs["v2"][0]["windows"].get(name, 0)
        b1, b2 = sizes["v1"][name], sizes["v2"][name]
        pw1 = b1 / w1 / 1e3 if w1 else float("nan")
        pw2 = b2 / w2 / 1e3 if w2 else float("nan")
        print(f"| {name} | {w1} | {w2} | {b1 / n_rec / 1e3:.1f} | {b2 / n_rec / 1e3:.1f} | "
              f"{b2 / max(b1, 1):.2f} | {pw1:.1f} | {pw2:.1f} | {pw2 / pw1:.2f} |")

    # 2. windows per real 10 s record
    real_src = REAL / "ecg" / "cinc2021"
    stores = {}
    for v in VARIANTS:
        dst = out / f"real-{v}.zarr"
        if not dst.exists():
            convert([real_src], dst, _config(v), workers=0, progress=False)
        stores[v] = dst
    print("\n| real 10 s records (50) | " + " | ".join(f"{r} Hz" for r in RATES) + " |")
    print("|---|" + "---:|" * len(RATES))
    for v, dst in stores.items():
        st = open_store(dst)
        per = [len(st.stream(f"ecg@{r}")) / 50 if f"ecg@{r}" in st.stream_names else 0
               for r in RATES]
        print(f"| {v} windows per record | " + " | ".join(f"{x:g}" for x in per) + " |")

    # 3. loader
    loader_table(out, args.repeats)

    # 4. pretraining
    pretraining(args, out, stores)
    print(f"\nload average after: {os.getloadavg()}")


def loader_table(out: Path, repeats: int) -> None:
    """Loader windows/s on both stores, warm page cache and cold (read from the disk)."""
    streams = ["ecg@200", "ecg@500", "ecg@1000"]
    print("\n| loader (2 reader threads, batch 128) | v1 windows/s | v2 windows/s | v2 / v1 "
          "| v1 runs | v2 runs |")
    print("|---|---:|---:|---:|---|---|")
    for cold in (False, True):
        lr: dict[str, list[float]] = {"v1": [], "v2": []}
        for _ in range(repeats):
            for v in VARIANTS:
                lr[v].append(loader_rate(out / f"synth-{v}.zarr", streams, cold=cold))
        m1, m2 = statistics.median(lr["v1"]), statistics.median(lr["v2"])
        runs = [", ".join(f"{x:,.0f}" for x in lr[v]) for v in VARIANTS]
        label = "cold (page cache dropped, 1 epoch)" if cold else "warm (5 epochs)"
        print(f"| {label} | {m1:,.0f} | {m2:,.0f} | {m2 / m1:.2f}x | {runs[0]} | {runs[1]} |")


def pretraining(args, out: Path, stores: dict[str, Path]) -> None:
    """Pretraining on the real records stored as v1 and as int16 with tail drop."""
    from biosig_prep import convert

    if args.skip_pretrain:
        return
    real_src = REAL / "ecg" / "cinc2021"
    i16 = out / "real-i16-drop.zarr"
    if not i16.exists():
        convert([real_src], i16, _config("v2", tail={"policy": "drop"}), workers=0,
                progress=False)
    print(f"\n| pretrain, small preset, {args.pretrain_steps} steps | seed | loss / zero_mse "
          "(last 50) | loss | data wait | s |")
    print("|---|---:|---:|---:|---:|---:|")
    for seed in (0, 1):
        for name, store in (("float32 (v1)", stores["v1"]), ("int16, tail drop", i16)):
            r = pretrain_run(store, out / f"pt-{name[:5]}-{seed}", seed,
                             args.pretrain_steps)
            print(f"| {name} | {seed} | {r['loss_over_zero_mse']:.4f} | {r['loss']:.5f} | "
                  f"{100 * r['wait']:.1f}% | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
