"""Issue 17: what the read-time checks of a sealed store cost, measured in one run.

Usage: python tools/bench/bench_checksum.py [--records 80] [--rate 500] [--repeats 7]
                                            [--out bench-out/checksum]

Converts a synthetic Challenge-style corpus (``biosig_prep.synth``) once, then reads every window
of one stream through :class:`biosig_prep.store.ShardReader` (whole shards, decoded straight
into float32; the page cache warm) in three modes, interleaved in every repeat:

  none    no checks: what the reader did before issue 17 (shard index CRC only)
  chunk   every chunk's own CRC32C (zarr's ``crc32c`` codec), what any Zarr reader checks
  object  every fetched shard against the manifest (size + the digest of its chunks' CRC32Cs
          and index), and every chunk decoded against its CRC32C: the default for a sealed store

and ``Stream.read`` (windows + record/start/masks, each small chunk checked) against the same
read without checks (the small arrays then through zarr, which is slower than the checked
reader: that row mixes two changes). The checks alone are also timed on the fetched bytes, which
is the figure to trust on a busy machine. Prints a Markdown table: median windows/s and MB/s (decoded float32) of the
repeats, and each mode's cost against ``none``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def _reader(stream, mode: str):
    from biosig_prep.store import ShardReader

    store = stream._store
    if mode == "object":
        return ShardReader(stream.windows, io=store.raw, path=f"{stream.name}/windows",
                           manifest=store.manifest(), strict=True)
    reader = ShardReader(stream.windows, io=store.raw, path=f"{stream.name}/windows")
    assert reader.decoder is not None
    reader.decoder.chunk_crc = mode == "chunk"  # "none": the 4-byte trailer is skipped unread
    if mode == "none":
        reader.decoder.chunk_crc = True
        return _NoCrc(reader)
    return reader


class _NoCrc:
    """A reader whose decoder skips the per-chunk CRC (``verified=True``) with no manifest."""

    def __init__(self, reader) -> None:
        self.reader = reader
        decode = reader.decoder.decode_rows
        reader.decoder.decode_rows = lambda *a, **kw: decode(*a, **{**kw, "verified": True})

    def read(self, start, stop):
        return self.reader.read(start, stop)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=80)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default="bench-out/checksum")
    args = ap.parse_args()

    from biosig_prep import convert, open_store
    from biosig_prep.config import PrepConfig
    from biosig_prep.synth.challenge import write_challenge_corpus

    out = Path(args.out)
    src, dst = out / "src", out / "store.zarr"
    if not dst.exists():
        write_challenge_corpus(src, n_records=args.records, seed=0, broken=0)
        convert([src], dst, PrepConfig(rates=[args.rate]), workers=0, progress=False)
    store = open_store(dst)
    stream = store.stream(f"ecg@{args.rate}")
    n = len(stream)
    mb = n * 4 * len(stream.channels) * stream.n_patches * stream.window_shape[-1] / 1e6
    modes = ("none", "chunk", "object")
    times: dict[str, list[float]] = {m: [] for m in (*modes, "read-checked", "read-plain")}
    readers = {m: _reader(stream, m) for m in modes}
    for r in readers.values():  # warm the page cache and the decoders
        r.read(0, n)
    def plain_read() -> None:
        readers["none"].read(0, n)
        for arr in (stream.record.array, stream.start.array, stream.channel_mask.array,
                    stream.patch_mask.array):
            arr[0:n]

    runs = {**{m: (lambda m=m: readers[m].read(0, n)) for m in modes},
            "read-checked": lambda: stream.read(0, n), "read-plain": plain_read}
    order = list(runs)
    for i in range(args.repeats):  # interleaved, the order rotated every repeat
        for name in order[i % len(order):] + order[:i % len(order)]:
            t = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t)
    # the check alone, on the same bytes: one CRC32C pass per shard against the manifest
    from biosig_prep.store.integrity import object_problem

    reader = readers["object"]
    keys = reader.shard_keys(range(-(-n // stream.shard_size)))
    blobs = store.raw.get_many(keys)
    check = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for key, blob in zip(keys, blobs, strict=True):
            assert object_problem(key, blob, reader.manifest, True) is None
        check.append(time.perf_counter() - t)
    print(f"{n} windows of ecg@{args.rate} ({mb:.0f} MB as float32, "
          f"{stream.shard_size} per shard), median of {args.repeats}\n")
    print("| read | checks | windows/s | MB/s | time vs none |")
    print("|---|---|---:|---:|---:|")
    base = statistics.median(times["none"])
    what = {"none": "none (shard index CRC only)", "chunk": "CRC32C of every chunk decoded",
            "object": "manifest digest of every shard + CRC32C of every chunk (default)"}
    for m in modes:
        med = statistics.median(times[m])
        print(f"| ShardReader | {what[m]} | {n / med:,.0f} | {mb / med:,.0f} | "
              f"{med / base:.3f}x |")
    import google_crc32c

    crcs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for blob in blobs:
            google_crc32c.value(blob)  # the same bytes as every chunk body, in one pass
        crcs.append(time.perf_counter() - t)
    stored = sum(map(len, blobs)) / 1e6
    for label, ts in ((f"the manifest digests alone, {len(keys)} shards", check),
                      ("the chunk CRC32Cs alone (every stored byte)", crcs)):
        c = statistics.median(ts)
        print(f"| ({label}) | | | {stored / c:,.0f} MB/s stored | {c / base:.4f}x of a read |")
    plain, checked = (statistics.median(times[k]) for k in ("read-plain", "read-checked"))
    print(f"| Stream.read (+ record/start/masks) | none, small arrays through zarr | "
          f"{n / plain:,.0f} | {mb / plain:,.0f} | 1.000x |")
    print(f"| Stream.read (+ record/start/masks) | all (default) | {n / checked:,.0f} | "
          f"{mb / checked:,.0f} | {checked / plain:.3f}x |")


if __name__ == "__main__":
    main()
