"""Peak memory of `biosig-prep convert` on hostile DREAMER inputs against a normal one (issue 17
item 7): each case a fresh process under ``/usr/bin/time -f %M`` (peak RSS), cases alternating,
median of ``--runs``.

Cases (files written once into a temporary folder):
* normal : a synthetic DREAMER.mat (``--subjects`` x 18 clips of 20 s, plain v5);
* clips-1e9 : the same file with ``noOfVideoSequences`` = 1e9 (before the fix: 6.9 GB, a
  MemoryError traceback, an incomplete store);
* zlib-bomb : a compressed v5 file of ~4 MB whose one variable ``DREAMER`` decompresses to
  ~4.3 GB (before the fix: 4.4 GB RSS, or an empty skip reason under a 2.5 GB cap).

    python tools/bench/bench_input_bounds.py [--runs 3] [--subjects 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path


def write_bomb(path: Path, n_doubles: int) -> None:
    """A MATLAB v5 file with one zlib-compressed double matrix ``DREAMER`` of zeros."""
    nm = b"DREAMER"
    flags = struct.pack("<IIII", 6, 8, 6, 0)
    dims = struct.pack("<IIii", 5, 8, 1, n_doubles)
    name_el = struct.pack("<II", 1, len(nm)) + nm + b"\0" * (-len(nm) % 8)
    data_tag = struct.pack("<II", 9, n_doubles * 8)
    body = len(flags) + len(dims) + len(name_el) + len(data_tag) + n_doubles * 8
    comp = zlib.compressobj(9)
    parts = [comp.compress(struct.pack("<II", 14, body) + flags + dims + name_el + data_tag)]
    block, left = bytes(8 << 20), n_doubles * 8
    while left:
        parts.append(comp.compress(block[:min(left, len(block))]))
        left -= min(left, len(block))
    parts.append(comp.flush())
    payload = b"".join(parts)
    header = b"MATLAB 5.0 MAT-file, bench".ljust(116) + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    path.write_bytes(header + struct.pack("<II", 15, len(payload)) + payload)


def make_inputs(folder: Path, subjects: int) -> dict[str, Path]:
    import scipy.io

    from biosig_prep import synth

    cases = {}
    normal = folder / "normal" / "DREAMER.mat"
    synth.write_dreamer_mat(normal, n_subjects=subjects, n_clips=18, clip_seconds=20.0,
                            baseline_seconds=4.0, seed=0)
    cases["normal"] = normal
    d = scipy.io.loadmat(normal)["DREAMER"][0, 0]
    d["noOfVideoSequences"][0, 0] = 1e9
    clips = folder / "clips" / "DREAMER.mat"
    clips.parent.mkdir()
    scipy.io.savemat(clips, {"DREAMER": d})
    cases["clips-1e9"] = clips
    bomb = folder / "bomb" / "DREAMER.mat"
    bomb.parent.mkdir()
    write_bomb(bomb, 536_000_000)  # 4.29 GB of zeros
    cases["zlib-bomb"] = bomb
    return cases


def peak_rss(src: Path, dst: Path) -> tuple[float, float, int, str]:
    """(peak RSS MB, CPU s (user + sys), exit code, last line of output) of one convert
    process (CPU rather than wall time: on a shared machine the wall time measures the load)."""
    cmd = ["/usr/bin/time", "-f", "%M %U %S", sys.executable, "-m", "biosig_prep.cli", "convert",
           str(src), str(dst), "--overwrite", "--no-progress"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    rss_kb, user, system = lines[-1].split()
    wall = float(user) + float(system)
    rss_kb = int(rss_kb)
    said = [ln for ln in (out.stdout + "\n" + "\n".join(lines[:-1])).splitlines()
            if ln.strip() and not ln.startswith("Command exited")]
    return rss_kb / 1024, wall, out.returncode, (said[-1] if said else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--subjects", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = make_inputs(folder, args.subjects)
        sizes = {k: os.path.getsize(p) for k, p in cases.items()}
        results: dict[str, list[tuple[float, float, int, str]]] = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, src in cases.items():
                results[name].append(peak_rss(src, folder / f"{name}.zarr"))
    print("| case | file | peak RSS (MB), median | CPU (s), median | exit | last line |")
    print("|---|---:|---:|---:|---:|---|")
    for name, rows in results.items():
        rss = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        print(f"| {name} | {sizes[name] / 1e6:.2f} MB | {rss:.0f} | {wall:.1f} | {rows[-1][2]} "
              f"| {rows[-1][3][:150]} |")


if __name__ == "__main__":
    main()
