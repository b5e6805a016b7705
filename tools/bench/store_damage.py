"""Issue 17, "store integrity" class: damage a sealed store 26 ways, read it, and classify.

Usage: python tools/bench/store_damage.py [--out bench-out/damage]

Builds a small DREAMER store (synthetic ``DREAMER.mat``: two streams, labels, records; two windows
per shard), then for every case copies it, damages the copy and reads everything a user reads
(``open_store``, ``Stream.read`` of every stream, the zarr path of ``ShardReader``,
``records()``, ``labels()``), and runs ``verify_store``. A case is

  held          a reader raised StoreError / DamagedShardError with one line naming the file or
                stream and shard (or, for damage no reader fetches, verify names it)
  silent wrong  every read succeeded and some value differs from the intact store
  traceback     another exception

Prints a Markdown table (case, reader, verify, outcome).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

MANIFEST = "_meta/manifest.json"


def _shard(p: Path, stream: str, j: int) -> Path:
    return p / stream / "windows" / "c" / str(j) / "0" / "0" / "0"


def _flip(path: Path, at: int, bit: int = 1) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= bit
    path.write_bytes(bytes(data))


def _json(path: Path, fn: Callable[[dict], None]) -> None:
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta, indent=2))


def _swap(a: Path, b: Path) -> None:
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


def _empty_index_entry(p: Path) -> None:
    """Mark chunk 0 of shard 0 as not stored, with a valid index checksum."""
    import google_crc32c

    path = _shard(p, "eeg@200", 0)
    data = bytearray(path.read_bytes())
    k = 2
    index = bytearray(data[-(16 * k + 4):-4])
    index[0:16] = b"\xff" * 16
    crc = int(google_crc32c.value(bytes(index))).to_bytes(4, "little")
    path.write_bytes(bytes(data[:-(16 * k + 4)]) + bytes(index) + crc)


def _rechecksummed(p: Path) -> None:
    """Change a chunk's last byte and recompute its CRC32C (the shard's CRC32C stays the same)."""
    import google_crc32c

    path = _shard(p, "eeg@200", 0)
    data = bytearray(path.read_bytes())
    offset, length = (int(v) for v in np.frombuffer(bytes(data[-36:-4]), "<u8")[:2])
    body = bytearray(data[offset:offset + length - 4])
    body[-1] ^= 0x01
    data[offset:offset + length] = bytes(body) + int(google_crc32c.value(bytes(body))).to_bytes(
        4, "little")
    path.write_bytes(bytes(data))


def _stray(p: Path) -> None:
    n = json.loads((p / "eeg@200" / "windows" / "zarr.json").read_text())["shape"][0]
    extra = _shard(p, "eeg@200", -(-n // 2))
    extra.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(_shard(p, "eeg@200", 0), extra)


CASES: dict[str, Callable[[Path], None]] = {
    "bytes flipped inside a window chunk": lambda p: _flip(_shard(p, "eeg@200", 1), 40, 0x10),
    "two valid shards swapped": lambda p: _swap(_shard(p, "eeg@200", 0), _shard(p, "eeg@200", 1)),
    "record chunk missing": lambda p: (p / "ecg@200/record/c/0").unlink(),
    "patch_mask chunk missing": lambda p: (p / "ecg@200/patch_mask/c/0/0").unlink(),
    "channel_mask chunk missing": lambda p: (p / "ecg@200/channel_mask/c/0/0").unlink(),
    "shard missing after the manifest was lost": lambda p: (
        (p / MANIFEST).unlink(), _shard(p, "eeg@200", 1).unlink()),
    "manifest lost": lambda p: (p / MANIFEST).unlink(),
    "garbage manifest": lambda p: (p / MANIFEST).write_text("{not json"),
    "array shape grown": lambda p: _json(p / "eeg@200/windows/zarr.json",
                                         lambda m: m["shape"].__setitem__(0, m["shape"][0] + 3)),
    "array shape shrunk": lambda p: _json(p / "eeg@200/windows/zarr.json",
                                          lambda m: m["shape"].__setitem__(0, 1)),
    "codec scale 1000.0 -> 1001.0": lambda p: (p / "ecg@200/windows/zarr.json").write_text(
        (p / "ecg@200/windows/zarr.json").read_text().replace("1000.0", "1001.0")),
    "fill_value edited": lambda p: _json(p / "eeg@200/windows/zarr.json",
                                         lambda m: m.__setitem__("fill_value", 7.0)),
    "shard truncated": lambda p: _shard(p, "ecg@200", 0).write_bytes(
        _shard(p, "ecg@200", 0).read_bytes()[:-30]),
    "zero-length shard": lambda p: _shard(p, "ecg@200", 0).write_bytes(b""),
    "windows zarr.json deleted": lambda p: (p / "ecg@200/windows/zarr.json").unlink(),
    "windows zarr.json garbage": lambda p: (p / "ecg@200/windows/zarr.json").write_text("{"),
    "wrong dtype in record zarr.json": lambda p: _json(
        p / "ecg@200/record/zarr.json", lambda m: m.__setitem__("data_type", "int32")),
    "stream channels reordered": lambda p: _json(
        p / "eeg@200/zarr.json", lambda m: m["attributes"]["channels"].reverse()),
    "root config edited": lambda p: _json(
        p / "zarr.json", lambda m: m["attributes"]["config"].__setitem__("window_seconds", 5)),
    "records/ rows edited": lambda p: _flip(p / "records/status/c/0", -6),
    "records/ chunk deleted": lambda p: (p / "records/n_samples/c/0").unlink(),
    "labels edited": lambda p: _flip(next((p / "labels").glob("*/c/0")), 0),
    "labels chunk deleted": lambda p: next((p / "labels").glob("*/c/0")).unlink(),
    "chunk marked empty in a valid shard index": _empty_index_entry,
    "stray shard past the last window": _stray,
    "chunk rewritten with a valid CRC32C": _rechecksummed,
}


def _read_all(path: Path, fast: bool = True) -> dict[str, np.ndarray]:
    from biosig_prep import open_store

    store = open_store(path)
    out: dict[str, np.ndarray] = {}
    for name in store.stream_names:
        s = store.stream(name)
        for key, value in s.read(0, len(s)).items():
            out[f"{name}/{key}"] = np.asarray(value)
        out[f"{name}/zarr-path"] = s.reader(fast=False).read(0, len(s))
        out[f"{name}/channels"] = np.array(s.channels)
    for key, value in store.records().items():
        out[f"records/{key}"] = np.asarray(value)
    for key, value in (store.labels() or {}).items():
        out[f"labels/{key}"] = np.asarray(value)
    out["config"] = np.array(json.dumps(store.config, sort_keys=True))
    return out


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench-out/damage")
    args = ap.parse_args()
    from biosig_prep import StoreError
    from biosig_prep.convert import convert
    from biosig_prep.store import DamagedShardError, verify_store
    from biosig_prep.synth.dreamer import write_dreamer_mat

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    mat = out / "DREAMER.mat"
    write_dreamer_mat(mat, n_subjects=1, n_clips=3, clip_seconds=20.0, baseline_seconds=2.0)
    base = out / "base.zarr"
    convert([mat], base, fmt="dreamer", workers=0, progress=False, shard_bytes=250_000)
    intact = _read_all(base)
    print("| # | damage | reader | verify | outcome |\n|---|---|---|---|---|")
    tally = {"held": 0, "silent wrong": 0, "traceback": 0}
    for i, (name, damage) in enumerate(CASES.items(), 1):
        copy = out / f"case{i:02d}.zarr"
        shutil.copytree(base, copy)
        damage(copy)
        try:
            same = _same(_read_all(copy), intact)
            reader, outcome = ("read, values intact" if same else "read, values differ"), None
        except (StoreError, DamagedShardError) as exc:
            text = str(exc).replace(str(copy), "S")
            reader, outcome = f"`{type(exc).__name__}`: {text[:110]}", "held"
            same = True
        except Exception as exc:  # noqa: BLE001 - classified as a traceback
            reader, outcome, same = f"{type(exc).__name__}: {exc}"[:120], "traceback", True
        try:
            problems = verify_store(copy)["problems"]
            verify = f"{len(problems)} problem(s): {problems[0][:70]}" if problems else "passes"
        except StoreError as exc:
            problems = [str(exc)]
            verify = f"`StoreError`: {str(exc).replace(str(copy), 'S')[:70]}"
        if outcome is None:
            outcome = ("silent wrong" if not same else "held" if problems else "silent wrong")
        tally[outcome] += 1
        print(f"| {i} | {name} | {reader} | {verify} | {outcome} |")
        shutil.rmtree(copy)
    print(f"\n{len(CASES)} tried: " + ", ".join(f"{v} {k}" for k, v in tally.items()))


if __name__ == "__main__":
    main()
