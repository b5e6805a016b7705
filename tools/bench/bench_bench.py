"""Wall time of ``criss-cross bench`` per encoder size and store (issue 20).

Each model is a randomly initialised registry encoder saved as a Hub folder (so the bench
embeds twice, encoder and random init, as it does for real weights); the runs alternate
between the models and the median of ``--repeats`` whole-process runs is printed.

    python tools/bench/bench_bench.py --store cinc.zarr --task challenge2021 --stream ecg@200
    python tools/bench/bench_bench.py --store cpsc.zarr --task af-rhythm --stream ecg@200
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def _hub(name: str, folder: Path) -> Path:
    from criss_cross.hub import save_pretrained
    from criss_cross.registry import create_model, get_model_spec

    spec = get_model_spec(name)
    inp = {**spec.input_spec(), **{k: spec.extra[k] for k in ("band_pass_hz", "notch")}}
    return save_pretrained(create_model(name), folder / name, name=name, input_spec=inp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--stream", default="ecg@200")
    ap.add_argument("--models", default="ecg-small,ecg-base")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hubs = {m: _hub(m, Path(tmp)) for m in args.models.split(",")}
        times: dict[str, list[float]] = {m: [] for m in hubs}
        for r in range(args.repeats):
            for m, hub in hubs.items():
                out = Path(tmp) / f"out-{m}-{r}"  # a fresh folder: no embedding cache
                t0 = time.perf_counter()
                subprocess.run(["criss-cross", "bench", args.task, "--store", args.store,
                                "--stream", args.stream, "--weights", str(hub), "--model", m,
                                "--out", str(out), "--device", "cpu"], check=True,
                               capture_output=True)
                times[m].append(time.perf_counter() - t0)
        for m, ts in times.items():
            print(f"{m}: median {statistics.median(ts):.1f} s over {len(ts)} runs "
                  f"({', '.join(f'{t:.1f}' for t in ts)})")


if __name__ == "__main__":
    main()
