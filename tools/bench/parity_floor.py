"""How close float32 runs of CBraMod can get to the parity fixture, and to each other.

The fixture ../shared/data/reference/cbramod_reference.npz holds outputs of the authors'
implementation (float32, eval mode) made on some other machine. This script measures, on this
machine, the max abs error of:

1. the authors' layout (the ``nn.MultiheadAttention`` reference of ``bench_encoder.py``) run in
   float32 under several BLAS / oneDNN code paths (each in a fresh process: ``MKL_CBWR`` is
   read at start-up), against the fixture and against each other;
2. ``criss_cross.CrissCrossEncoder`` in float32 and float64 against the fixture;
3. the authors' layout in float64 against the fixture (the fixture's own float32 rounding).

If (1) disagrees with itself by more than a tolerance, that tolerance is below float32
reproducibility of the reference itself, and no implementation can be held to it.

Usage: python tools/bench/parity_floor.py [--fixture PATH]  (default: $BIOSIG_SHARED_DATA or
../shared/data, then reference/cbramod_reference.npz)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_encoder as be  # noqa: E402

from criss_cross import EncoderConfig, load_cbramod_checkpoint  # noqa: E402

SHARED_DATA = Path(os.environ.get("BIOSIG_SHARED_DATA", HERE.parents[2] / "shared" / "data"))
DEFAULT_FIXTURE = SHARED_DATA / "reference" / "cbramod_reference.npz"

# name -> (environment, torch threads, oneDNN enabled)
VARIANTS = {
    "default, 2 threads": ({}, 2, True),
    "1 thread, no oneDNN": ({}, 1, False),
    "MKL_CBWR=COMPATIBLE": ({"MKL_CBWR": "COMPATIBLE"}, 2, True),
    "MKL_CBWR=AVX2": ({"MKL_CBWR": "AVX2"}, 2, True),
}
CASES = [("out_x1", "x1", None), ("out_x1_masked", "x1", "mask1"), ("out_x2", "x2", None)]


def _load(fixture: Path) -> tuple[dict, dict]:
    with np.load(fixture) as f:
        ref = {k: f[k] for k in f.files}
    state = {k[len("state/"):]: torch.from_numpy(v) for k, v in ref.items() if k.startswith("state/")}
    return ref, state


def _run(kind: str, ref: dict, state: dict, dtype: torch.dtype) -> dict[str, np.ndarray]:
    if kind == "ours":
        model = load_cbramod_checkpoint(state, EncoderConfig())
    else:
        model = be.build("ref", EncoderConfig(), state, "cpu").eval()
    model = model.to(dtype)
    out = {}
    with torch.no_grad():
        for key, inp, mask in CASES:
            x = torch.from_numpy(ref[inp]).to(dtype)
            m = None if mask is None else torch.from_numpy(ref[mask])
            if kind == "ours" and m is not None:
                m = m == 1
            out[key] = model(x, m).double().numpy()
    return out


def _child(fixture: Path, threads: int, onednn: bool, dest: Path) -> None:
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn
    ref, state = _load(fixture)
    np.savez(dest, **_run("ref", ref, state, torch.float32))


def _max_abs(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k] - b[k]).max()) for k, _, _ in CASES)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # threads onednn dest
    args = ap.parse_args(argv)
    if args.child:
        _child(args.fixture, int(args.child[0]), args.child[1] == "1", Path(args.child[2]))
        return {}
    if not args.fixture.is_file():
        sys.exit(f"parity fixture {args.fixture} is absent")

    ref, state = _load(args.fixture)
    fixture = {k: ref[k].astype(np.float64) for k, _, _ in CASES}
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (env, threads, onednn) in VARIANTS.items():
            dest = Path(tmp) / f"{len(runs)}.npz"
            subprocess.run(
                [sys.executable, __file__, "--fixture", str(args.fixture),
                 "--child", str(threads), "1" if onednn else "0", str(dest)],
                env={**os.environ, **env}, check=True,
            )
            with np.load(dest) as f:
                runs[name] = {k: f[k] for k in f.files}

    ref64, ours64 = (_run(kind, ref, state, torch.float64) for kind in ("ref", "ours"))
    res = {
        "reference float32 vs fixture": {n: _max_abs(r, fixture) for n, r in runs.items()},
        "reference float32 vs itself": {
            f"{a} | {b}": _max_abs(runs[a], runs[b]) for a, b in itertools.combinations(runs, 2)
        },
        "reference float64 vs fixture": _max_abs(ref64, fixture),
        "ours float32 vs fixture": _max_abs(_run("ours", ref, state, torch.float32), fixture),
        "ours float64 vs fixture": _max_abs(ours64, fixture),
        "ours float64 vs reference float64": _max_abs(ours64, ref64),
    }
    print("| comparison (max abs error over out_x1, out_x1_masked, out_x2) | value |")
    print("|---|---:|")
    for key, val in res.items():
        if isinstance(val, dict):
            for sub, v in val.items():
                print(f"| {key}: {sub} | {v:.2e} |")
        else:
            print(f"| {key} | {val:.2e} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
