"""Store schema 2: int16 windows through zarr's own codecs, padded tails, one reader API."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import zarr

from biosig_prep import StoreError, convert, open_store
from biosig_prep.config import PrepConfig
from biosig_prep.processing import process_recording
from biosig_prep.recording import Recording
from biosig_prep.store import (
    EMPTY_CHUNK,
    DamagedShardError,
    RawIO,
    ShardReader,
    StoreChangedError,
    WindowCodec,
    codec_for,
    open_raw_store,
)

C, P, S = 3, 2, 5


def _windows(n: int, amp: float = 1.0, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).normal(size=(n, C, P, S))).astype(np.float32)


def _plain_zarr(path: str):
    """What a user without biosig-prep gets (zarr warns the numcodecs codec is not core v3)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr")
        return zarr.open_array(path, mode="r")


@pytest.mark.parametrize("codec", [codec_for("ecg", "int16", {"ecg": 0.001}),
                                   codec_for("eeg", "int16", {"eeg": 0.2}),
                                   WindowCodec("int16", 0.001), WindowCodec("float32")],
                         ids=["ecg", "eeg", "int16-lz4", "float32"])
@pytest.mark.parametrize(("n", "k"), [(10, 4), (3, 4), (1, 1)])
def test_hand_made_shards_are_byte_identical_to_zarrs_codec_chain(tmp_path, codec, n, k):
    data = _windows(n, amp=3.0 if codec.step == 0.001 else 300.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr")
        group = zarr.open_group(tmp_path / "z.zarr", mode="w")
        arr = group.create_array("w", shape=data.shape, dtype="float32", chunks=(1, C, P, S),
                                 shards=(k, C, P, S), filters=codec.zarr_filters(),
                                 compressors=codec.zarr_compressors())
        arr[:] = data
    raw = RawIO(open_raw_store(tmp_path / "z.zarr"))
    encoded = codec.encode_many(data)
    assert encoded == [codec.encode(w) for w in data]
    for shard in range(-(-n // k)):
        mine = b"".join(codec.shard(encoded[shard * k:(shard + 1) * k], k))
        assert mine == raw.get(f"w/c/{shard}/0/0/0")
    # and the fast decoder gives exactly zarr's floats, straight into a float32 destination
    reader = ShardReader(arr)
    assert reader.fast
    np.testing.assert_array_equal(reader.read(0, n), _plain_zarr(str(tmp_path / "z.zarr/w"))[:])
    np.testing.assert_array_equal(ShardReader(arr, fast=False).read(0, n), reader.read(0, n))
    assert np.abs(reader.read(0, n) - data).max() <= codec.max_abs_error()


def test_int16_never_wraps():
    codec = WindowCodec("int16", 0.001)
    assert codec.out_of_range(np.array([32.767], np.float32)) is None
    assert codec.out_of_range(np.array([-32.9], np.float32)) == pytest.approx(32.9)
    with pytest.raises(ValueError, match="outside the int16 range ±32.767 at step 0.001"):
        codec.encode(np.full((1, 2, 3), 40.0, np.float32))


def test_out_of_range_record_is_a_recorded_qc_reason():
    t = np.arange(5000) / 500.0
    sig = 30.0 * np.sin(2 * np.pi * 5 * t)[None, :] * np.ones((12, 1))  # 30 mV fits, 60 not
    rec = Recording(record_id="big", source="georgia", path="-", modality="ecg", fs=500.0,
                    signals=2 * sig, channels=list(PrepConfig().leads), units=["mV"] * 12)
    config = PrepConfig(qc={"max_abs_mv": 100.0})
    out = process_recording(rec, config)
    assert out.status.startswith("encoding: ecg reaches ") and "outside the int16 range " \
        "±32.767 mV at step 0.001 mV (raise encoding.ecg_step or set encoding.dtype: " \
        "float32)" in out.status
    assert out.streams == {}
    assert process_recording(rec, config.model_copy(
        update={"encoding": config.encoding.model_copy(update={"dtype": "float32"})})).ok


@pytest.fixture(scope="module")
def real_stores(shared_data, tmp_path_factory):
    """The 50 real Challenge records, stored as int16 (default) and as float32."""
    base = tmp_path_factory.mktemp("real")
    src = shared_data / "ecg" / "cinc2021"
    convert([src], base / "i16.zarr", workers=0, progress=False)
    convert([src], base / "f32.zarr", PrepConfig(encoding={"dtype": "float32"}), workers=0,
            progress=False)
    return open_store(base / "i16.zarr"), open_store(base / "f32.zarr"), base


@pytest.mark.real_data
def test_encoding_error_bound_on_real_records(real_stores):
    i16, f32, base = real_stores
    for name in ("ecg@100", "ecg@200", "ecg@500", "ecg@1000"):
        a, b = i16.stream(name), f32.stream(name)
        enc = a.encoding
        assert enc["dtype"] == "int16" and enc["step"] == 0.001 and enc["units"] == "mV"
        assert b.encoding["dtype"] == "float32" and b.encoding["max_abs_error"] == 0.0
        assert 0.0005 <= enc["max_abs_error"] < 0.00051
        x, y = a.read(), b.read()
        err = np.abs(x["windows"] - y["windows"]).max()
        assert 0.0004 < err <= enc["max_abs_error"], (name, err)
        for key in ("record", "start", "channel_mask", "patch_mask"):
            np.testing.assert_array_equal(x[key], y[key])
        assert a.tail == {"policy": "pad", "min_valid_fraction": 0.5}
        # plain zarr, without biosig-prep, reads the same physical floats
        plain = _plain_zarr(str(base / "i16.zarr" / name / "windows"))
        assert plain.dtype == np.float32
        np.testing.assert_array_equal(plain[2], x["windows"][2])


@pytest.mark.real_data
def test_real_records_keep_every_second(real_stores):
    i16, _, base = real_stores
    counts = {n: len(i16.stream(n)) // 50 for n in i16.stream_names}
    assert counts == {"ecg@100": 1, "ecg@200": 1, "ecg@500": 3, "ecg@1000": 5}
    pm = i16.stream("ecg@500").read()["patch_mask"]
    assert pm.sum(axis=1).tolist()[:3] == [10, 10, 5]
    windows = i16.stream("ecg@500").read()["windows"]
    assert not windows[~pm[:, None, :].repeat(12, axis=1)].any()  # padding is zeros
    # inspect reports the padded fraction per stream
    from biosig_prep.summary import describe_store, render_text

    desc = describe_store(str(base / "i16.zarr"))
    fractions = {n: s["padded_patch_fraction"] for n, s in desc["streams"].items()}
    assert fractions == {"ecg@100": 0.5, "ecg@200": 0.0, "ecg@500": pytest.approx(5 / 30),
                         "ecg@1000": 0.0}
    assert "padded 50.0% of patches" in render_text(desc)
    # the stored bytes: int16 is well under half of float32 at every rate
    raw_i, raw_f = RawIO.open(base / "i16.zarr"), RawIO.open(base / "f32.zarr")
    for name in counts:
        assert raw_i.size(name) < 0.45 * raw_f.size(name), name


def test_schema_1_store_names_version_and_fix(tmp_path):
    zarr.open_group(tmp_path / "old.zarr", mode="w", attributes={"schema": 1, "complete": True})
    with pytest.raises(StoreError, match=r"old.zarr: store schema 1 is not supported: this "
                       r"version of biosig-prep reads schema 2 .*re-run `biosig-prep convert`"):
        open_store(tmp_path / "old.zarr")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    from biosig_prep.synth.challenge import write_challenge_corpus

    base = tmp_path_factory.mktemp("small")
    write_challenge_corpus(base / "src", n_records=6, seed=3, broken=0, durations=[12.0])
    return base


def _fresh(small_store, tmp_path, name="s.zarr", **kw):
    dst = tmp_path / name
    convert([small_store / "src"], dst, PrepConfig(rates=[500], **kw), workers=0,
            progress=False)
    return dst


def test_damaged_shard_is_named_by_stream_and_shard(small_store, tmp_path):
    dst = _fresh(small_store, tmp_path)
    s = open_store(dst).stream("ecg@500")
    key = dst / "ecg@500" / "windows" / "c" / "0" / "0" / "0" / "0"
    key.write_bytes(key.read_bytes()[:-100])  # truncated
    with pytest.raises(DamagedShardError, match=r"s.zarr stream ecg@500: shard 0 is damaged"):
        s.read(0, 2)


def test_reader_raises_when_the_store_is_rewritten(small_store, tmp_path):
    dst = _fresh(small_store, tmp_path)
    s = open_store(dst).stream("ecg@500")
    s.read(0, 2)
    convert([small_store / "src"], dst, PrepConfig(rates=[500], tail={"policy": "drop"}),
            workers=0, progress=False, overwrite=True)
    with pytest.raises(StoreChangedError, match="rewritten while it was open"):
        s.read(0, 2)


def test_fallback_io_through_fsspec_public_api(tmp_path):
    url = f"memory://biosig-fallback-{tmp_path.name}"
    io = RawIO.open(url, internals=False)
    assert io._fs is not None
    io.put("a/b/c.bin", [b"hello ", memoryview(b"world")])
    assert io.get("a/b/c.bin") == b"hello world" and io.get("a/b/c.bin", 6, 11) == b"world"
    assert io.get("a/none") is None and io.exists("a/b/c.bin")
    assert io.list("a/") == ["a/b/c.bin"] and io.size("a") == 11
    assert io.get_many(["a/b/c.bin", "x"]) == [b"hello world", None]
    io.delete_prefix("a")
    assert io.list("a/") == []


def test_empty_chunk_sentinel_is_defined_once():
    import pathlib

    import biosig_prep
    import criss_cross

    assert EMPTY_CHUNK == 2**64 - 1
    roots = [pathlib.Path(biosig_prep.__file__).parent, pathlib.Path(criss_cross.__file__).parent]
    hits = [p for r in roots for p in r.rglob("*.py") if "2**64 - 1" in p.read_text()]
    assert [p.name for p in hits] == ["layout.py"]


def test_stream_read_gives_the_contract_keys(small_store, tmp_path):
    dst = _fresh(small_store, tmp_path)
    out = open_store(dst).stream("ecg@500").read(0, 4)
    assert set(out) == {"windows", "record", "start", "channel_mask", "patch_mask"}
    assert out["windows"].dtype == np.float32 and out["patch_mask"].shape == (4, 10)
    attrs = json.loads((dst / "ecg@500" / "zarr.json").read_text())["attributes"]
    assert attrs["encoding"]["dtype"] == "int16" and attrs["tail"]["policy"] == "pad"


def test_empty_ranges_read_as_empty_arrays(small_store, tmp_path):
    dst = _fresh(small_store, tmp_path)
    stream = open_store(dst).stream("ecg@500")
    reader = stream.reader()
    assert reader.read(3, 3).shape == (0, *reader.row_shape)
    assert reader.take(np.array([], dtype=np.int64)).shape == (0, *reader.row_shape)
    out = stream.read(2, 2)
    assert out["windows"].shape == (0, *reader.row_shape) and out["patch_mask"].shape == (0, 10)
