"""The store: its layout, the shard encoding the writer uses, and the reader API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from biosig_prep import Store, StoreError, Stream, open_store
from biosig_prep.store import (
    SCHEMA_VERSION,
    RawIO,
    StoreWriter,
    StreamSpec,
    WindowCodec,
    auto_block_size,
    auto_shard_size,
    open_raw_store,
    small_chunk_bytes,
)

C, P, S = 3, 2, 5


def _windows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, C, P, S)).astype(np.float32)


@pytest.mark.parametrize(("n", "k"), [(10, 4), (8, 4), (3, 4), (1, 1)])
def test_shards_are_byte_identical_to_zarr(tmp_path, n, k):
    """The writer assembles shard objects itself; they must be exactly zarr's own."""
    data = _windows(n)
    codec = WindowCodec()
    group = zarr.open_group(tmp_path / "z.zarr", mode="w")
    arr = group.create_array("w", shape=data.shape, dtype="float32", chunks=(1, C, P, S),
                             shards=(k, C, P, S), compressors=codec.zarr_compressors())
    arr[:] = data
    raw = RawIO(open_raw_store(tmp_path / "z.zarr"))
    for shard in range(-(-n // k)):
        mine = b"".join(codec.shard([codec.encode(w) for w in data[shard * k:(shard + 1) * k]], k))
        assert mine == raw.get(f"w/c/{shard}/0/0/0")


def _write_store(url: str, n: int = 11, k: int = 4, block: int = 8, complete: bool = True,
                 storage_options=None) -> np.ndarray:
    """A small store written the way convert does it: metadata by the writer, whole shards and
    chunks through RawIO."""
    data = _windows(n)
    codec = WindowCodec()
    w = StoreWriter(url, storage_options)
    w.create({"schema": SCHEMA_VERSION, "version": "test", "config": {"rates": [500]},
              "complete": False, "summary": None})
    spec = StreamSpec("ecg@500", "ecg", 500, ("I", "II", "III"), "mV", P, S, k, block)
    w.ensure_stream(spec, codec)
    w.ensure_records()
    w.write_records(0, [{"id": f"r{i}", "source": "test", "path": f"/x/r{i}.hea", "status": "ok",
                         "metadata": json.dumps({"i": i}), "fs": 500.0, "n_samples": 5000}
                        for i in range(3)])
    encoded = [codec.encode(x) for x in data]
    for shard in range(-(-n // k)):
        w.raw.put(spec.shard_key(shard), codec.shard(encoded[shard * k:(shard + 1) * k], k))
    record = np.arange(n) % 3
    for b in range(-(-n // block)):
        sl = slice(b * block, (b + 1) * block)
        keys = spec.small_keys(b)
        w.raw.put(keys["record"], small_chunk_bytes(record[sl], block, "<i8"))
        w.raw.put(keys["start"], small_chunk_bytes(np.arange(n)[sl] * 2000, block, "<i8"))
        mask = np.ones((n, C), bool)
        mask[:, 2] = np.arange(n) % 2 == 0
        w.raw.put(keys["channel_mask"], small_chunk_bytes(mask[sl], block, "|b1"))
    w.set_stream_length("ecg@500", n)
    if complete:
        w.update_attrs(complete=True, summary={"records_in": 3, "records_ok": 3,
                                               "records_skipped": 0, "skipped_reasons": {},
                                               "windows": {"ecg@500": n}})
    return data


@pytest.mark.parametrize("kind", ["path", "file_url", "memory_url"])
def test_reader_api_round_trip(tmp_path, kind):
    url = {"path": str(tmp_path / "s.zarr"), "file_url": f"file://{tmp_path}/s.zarr",
           "memory_url": f"memory://biosig-test-{tmp_path.name}/s.zarr"}[kind]
    data = _write_store(url)
    store = open_store(url)
    assert isinstance(store, Store)
    assert store.complete and store.schema == SCHEMA_VERSION and store.version == "test"
    assert store.config == {"rates": [500]}
    assert store.summary["windows"] == {"ecg@500": 11}
    assert store.stream_names == ["ecg@500"]
    s = store.stream("ecg@500")
    assert isinstance(s, Stream)
    assert (s.name, s.modality, s.fs, s.units) == ("ecg@500", "ecg", 500, "mV")
    assert s.channels == ["I", "II", "III"] and len(s) == 11 and s.shard_size == 4
    assert s.windows.chunks == (1, C, P, S) and s.windows.shards == (4, C, P, S)
    np.testing.assert_array_equal(s.windows[:], data)
    part = s.read(3, 9)
    np.testing.assert_array_equal(part["windows"], data[3:9])
    np.testing.assert_array_equal(part["record"], np.arange(3, 9) % 3)
    np.testing.assert_array_equal(part["start"], np.arange(3, 9) * 2000)
    assert part["channel_mask"].shape == (6, C) and part["channel_mask"][:, :2].all()
    np.testing.assert_array_equal(part["channel_mask"][:, 2], np.arange(3, 9) % 2 == 0)
    assert s.read(9, 100)["windows"].shape == (2, C, P, S)
    recs = store.records()
    assert list(recs["id"]) == ["r0", "r1", "r2"] and recs["n_samples"].dtype == np.int64
    assert json.loads(recs["metadata"][2]) == {"i": 2}
    assert store.labels() is None
    with pytest.raises(KeyError, match=r"no stream 'eeg@200' \(available: ecg@500\)"):
        store.stream("eeg@200")


def test_open_store_refuses_what_is_not_a_complete_store(tmp_path):
    with pytest.raises(StoreError, match="not a biosig-prep store"):
        open_store(tmp_path / "missing.zarr")
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(StoreError, match="plain.zarr.*no 'schema' attribute"):
        open_store(tmp_path / "plain.zarr")
    zarr.open_group(tmp_path / "future.zarr", mode="w", attributes={"schema": 99})
    with pytest.raises(StoreError, match="schema 99 is not supported"):
        open_store(tmp_path / "future.zarr")
    url = str(tmp_path / "half.zarr")
    _write_store(url, complete=False)
    with pytest.raises(StoreError, match="half.zarr: the store is incomplete.*allow_incomplete"):
        open_store(url)
    store = open_store(url, allow_incomplete=True)
    assert not store.complete and store.summary == {}
    assert "INCOMPLETE" in repr(store)
    assert issubclass(StoreError, ValueError)


def test_stream_names_sort_by_modality_then_rate(tmp_path):
    url = str(tmp_path / "s.zarr")
    w = StoreWriter(url)
    w.create({"schema": SCHEMA_VERSION, "complete": True})
    codec = WindowCodec()
    for name in ["ecg@1000", "ecg@100", "eeg@200", "ecg@500"]:
        modality, rate = name.split("@")
        w.ensure_stream(StreamSpec(name, modality, int(rate), ("a",), "mV", 2, 3, 4, 8), codec)
    w.ensure_group("_convert")  # a staging group is never a stream
    assert open_store(url).stream_names == ["ecg@100", "ecg@500", "ecg@1000", "eeg@200"]


def test_auto_sizes():
    window = 4 * 12 * 10 * 200  # 96 kB
    k = auto_shard_size(window, 4 << 20)
    assert k == 32 and k * window <= 4 << 20
    assert auto_shard_size(4 * 2 * 2000, 4 << 20) == 256  # DREAMER's 2-lead ECG
    assert auto_shard_size(10**9) == 1
    block = auto_block_size(k, window, 16 << 20)
    assert block % k == 0 and block * window <= 16 << 20


def test_raw_io_local_and_fsspec(tmp_path):
    for url in (str(tmp_path / "raw"), f"memory://biosig-raw-{tmp_path.name}"):
        io = RawIO.open(url)
        assert io.is_empty()
        io.put("a/b/c.bin", [b"hello ", memoryview(b"world")])
        assert io.get("a/b/c.bin") == b"hello world"
        assert io.get("a/b/c.bin", 6, 11) == b"world"
        assert io.get("a/none") is None and io.exists("a/b/c.bin")
        assert io.list("a/") == ["a/b/c.bin"] and io.size("a") == 11
        io.delete_prefix("a")
        assert io.list("a/") == [] and io.is_empty()
