"""Issue 17 items 2-3: every damaged byte a reader fetches is an error naming stream and shard.

One small DREAMER store (two streams, labels, records; two windows per shard), copied and
damaged once per case. Every case failed silently (or with a traceback) before the store was
sealed: the reader returned windows, zeros or fill values.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import zarr

from biosig_prep import StoreError, open_store
from biosig_prep.store import MANIFEST, DamagedShardError, verify_store

READ_ERRORS = (StoreError, DamagedShardError)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from biosig_prep.convert import convert
    from biosig_prep.synth.dreamer import write_dreamer_mat

    root = tmp_path_factory.mktemp("integrity")
    mat = root / "DREAMER.mat"
    write_dreamer_mat(mat, n_subjects=1, n_clips=3, clip_seconds=20.0, baseline_seconds=2.0)
    dst = root / "d.zarr"
    convert([mat], dst, fmt="dreamer", workers=0, progress=False, shard_bytes=250_000)
    store = open_store(dst)
    assert store.sealed and store.stream("eeg@200").shard_size == 2
    assert len(store.stream("eeg@200")) >= 5
    return dst


@pytest.fixture
def copy(base, tmp_path):
    dst = tmp_path / "d.zarr"
    shutil.copytree(base, dst)
    return dst


def _read_everything(path, fast=True):
    store = open_store(path)
    for name in store.stream_names:
        s = store.stream(name)
        s.read(0, len(s))
        s.reader(fast=fast).read(0, len(s))
    store.records()
    store.labels()


def _edit_json(path, fn):
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta, indent=2))


def _shard(path, stream, j):
    return path / stream / "windows" / "c" / str(j) / "0" / "0" / "0"


def test_the_intact_store_reads_and_verifies(base):
    _read_everything(base)
    _read_everything(base, fast=False)
    report = verify_store(base)
    assert report["problems"] == [] and report["sealed"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "zarr"])
def test_flipped_byte_inside_a_chunk(copy, fast):
    shard = _shard(copy, "eeg@200", 1)
    data = bytearray(shard.read_bytes())
    data[40] ^= 0x10  # inside the first chunk's compressed bytes
    shard.write_bytes(bytes(data))
    with pytest.raises(DamagedShardError, match=r"stream eeg@200: shard 1 is damaged \(.*"
                       "(checksum mismatch|checksum do not match)"):
        _read_everything(copy, fast=fast)
    assert verify_store(copy)["problems"] == [
        "eeg@200 windows shard 1: checksum mismatch, the content changed "
        "(eeg@200/windows/c/1/0/0/0)"]


def test_plain_zarr_checks_every_chunk_too(copy):
    shard = _shard(copy, "ecg@200", 0)
    data = bytearray(shard.read_bytes())
    data[40] ^= 0x01
    shard.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr")
        arr = zarr.open_array(copy / "ecg@200" / "windows", mode="r")
        assert arr[1].shape == arr.shape[1:]  # the other chunk of the shard is intact
        with pytest.raises(ValueError, match="checksum"):
            arr[0]


def test_two_valid_shards_swapped(copy):
    a, b = _shard(copy, "eeg@200", 0), _shard(copy, "eeg@200", 1)
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    with pytest.raises(DamagedShardError, match=r"stream eeg@200: shard 0 is damaged"):
        _read_everything(copy)


def test_a_chunk_rewritten_with_a_valid_checksum(copy):
    """A chunk followed by its own CRC32C is a CRC codeword: rewriting one (or swapping two
    shards of equal chunk lengths) leaves the object's CRC32C unchanged. The manifest's SHA-256
    sees it."""
    import google_crc32c

    shard = _shard(copy, "eeg@200", 0)
    data = bytearray(shard.read_bytes())
    n_index = 16 * 2 + 4
    offset, length = np.frombuffer(bytes(data[-n_index:-4]), "<u8").reshape(2, 2)[0]
    body = bytearray(data[offset:offset + length - 4])
    body[-1] ^= 0x01  # still a valid chunk to zarr: its CRC32C recomputed below
    data[offset:offset + length] = bytes(body) + int(google_crc32c.value(bytes(body))).to_bytes(
        4, "little")
    assert google_crc32c.value(bytes(data)) == google_crc32c.value(shard.read_bytes())
    shard.write_bytes(bytes(data))
    with pytest.raises(DamagedShardError, match=r"stream eeg@200: shard 0 is damaged \(checksum "
                       "mismatch"):
        _read_everything(copy)


@pytest.mark.parametrize("array", ["record", "patch_mask", "channel_mask", "start"])
def test_a_missing_small_chunk(copy, array):
    (copy / "ecg@200" / array / "c" / ("0/0" if "mask" in array else "0")).unlink()
    with pytest.raises(DamagedShardError, match=rf"stream ecg@200 {array}: chunk 0 is damaged "
                       r"\(the object is missing\)"):
        _read_everything(copy)


def test_an_edited_small_chunk(copy):
    chunk = copy / "eeg@200" / "record" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[8] ^= 0x01  # window 1 now claims another record
    chunk.write_bytes(bytes(data))
    with pytest.raises(DamagedShardError, match=r"stream eeg@200 record: chunk 0 is damaged"):
        open_store(copy).stream("eeg@200").record[:]


def test_a_missing_shard_after_the_manifest_was_lost(copy):
    (copy / MANIFEST).unlink()
    _shard(copy, "eeg@200", 1).unlink()
    with pytest.raises(StoreError, match=r"_meta/manifest.json is missing"):
        _read_everything(copy)
    with pytest.raises(StoreError, match=r"_meta/manifest.json is missing"):
        verify_store(copy)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_garbage_manifest_is_one_line_naming_the_file(copy, content):
    from typer.testing import CliRunner

    from biosig_prep.cli import app

    (copy / MANIFEST).write_bytes(content)
    with pytest.raises(StoreError, match=r"d.zarr: _meta/manifest.json differs from what"):
        open_store(copy)
    out = CliRunner().invoke(app, ["verify", str(copy)])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert out.output.count("\n") == 1 and "_meta/manifest.json" in out.output


def test_grown_array_shape(copy):
    _edit_json(copy / "eeg@200" / "windows" / "zarr.json",
               lambda m: m["shape"].__setitem__(0, m["shape"][0] + 3))
    with pytest.raises(StoreError, match=r"eeg@200/windows/zarr.json differs from what the "
                       "conversion wrote"):
        open_store(copy)


def test_one_character_change_of_the_codec_scale(copy):
    path = copy / "ecg@200" / "windows" / "zarr.json"
    text = path.read_text()
    assert text.count("1000.0") == 1
    path.write_text(text.replace("1000.0", "1001.0"))
    with pytest.raises(StoreError, match=r"ecg@200/windows/zarr.json differs"):
        open_store(copy)
    assert verify_store(copy)["problems"] == [
        "ecg@200/windows/zarr.json differs from what the conversion wrote (its shape, data type, "
        "codecs or attributes were edited)"]


@pytest.mark.parametrize("edit", ["deleted", "garbage", "dtype", "channels", "root"])
def test_edited_metadata_is_named_at_open(copy, edit):
    if edit == "deleted":
        (copy / "ecg@200" / "record" / "zarr.json").unlink()
        match = r"ecg@200/record/zarr.json is missing"
    elif edit == "garbage":
        (copy / "ecg@200" / "record" / "zarr.json").write_text("{")
        match = r"ecg@200/record/zarr.json is not valid JSON"
    elif edit == "dtype":
        _edit_json(copy / "ecg@200" / "record" / "zarr.json",
                   lambda m: m.__setitem__("data_type", "int32"))
        match = r"ecg@200/record/zarr.json differs"
    elif edit == "channels":
        _edit_json(copy / "eeg@200" / "zarr.json",
                   lambda m: m["attributes"]["channels"].reverse())
        match = r"eeg@200/zarr.json differs"
    else:
        _edit_json(copy / "zarr.json",
                   lambda m: m["attributes"]["config"].__setitem__("window_seconds", 5))
        match = r"zarr.json: the root attributes"
    with pytest.raises(StoreError, match=match):
        open_store(copy)


@pytest.mark.parametrize("how", ["truncated", "empty"])
def test_truncated_and_zero_length_shards(copy, how):
    shard = _shard(copy, "ecg@200", 0)
    shard.write_bytes(shard.read_bytes()[:-30] if how == "truncated" else b"")
    with pytest.raises(DamagedShardError, match=r"stream ecg@200: shard 0 is damaged \(\d+ "
                       r"bytes, \d+ written\)"):
        _read_everything(copy)


def test_edited_records_and_labels(copy):
    store = open_store(copy)
    status = copy / "records" / "status" / "c" / "0"
    data = bytearray(status.read_bytes())
    data[-6] ^= 0x01
    status.write_bytes(bytes(data))
    with pytest.raises(DamagedShardError, match=r"records status: chunk 0 is damaged"):
        store.records()
    label = next((copy / "labels").glob("*/c/0"))
    data = bytearray(label.read_bytes())
    data[0] ^= 0x01
    label.write_bytes(bytes(data))
    with pytest.raises(DamagedShardError, match=r"labels .*: chunk 0 is damaged"):
        store.labels()


def test_a_stray_object_shadowing_the_fill_value(copy):
    """A shard past the last one written (a chunk nobody wrote) is named by verify."""
    store = open_store(copy)
    n = len(store.stream("eeg@200"))
    extra = _shard(copy, "eeg@200", -(-n // 2))
    extra.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(_shard(copy, "eeg@200", 0), extra)
    assert any("was not written by the conversion" in p for p in verify_store(copy)["problems"])


def test_unsealed_stores_read_as_before(copy):
    """A store written before the seal: no integrity attribute, read without the new checks."""
    _edit_json(copy / "zarr.json", lambda m: m["attributes"].pop("integrity"))
    store = open_store(copy)
    assert not store.sealed
    s = store.stream("eeg@200")
    assert s.read(0, len(s))["windows"].shape[0] == len(s)
    assert verify_store(copy)["sealed"] is False


def test_criss_cross_and_fusion_readers_name_the_damage(copy):
    from criss_cross.data import WindowDataset, open_sources
    from fusion_emotion.data import open_dreamer

    shard = _shard(copy, "ecg@200", 0)
    data = bytearray(shard.read_bytes())
    data[50] ^= 0x04
    shard.write_bytes(bytes(data))
    ds = WindowDataset(open_sources([str(copy)], ["ecg@200"]), batch_size=4, num_epochs=1)
    with pytest.raises(DamagedShardError, match=r"stream ecg@200: shard 0 is damaged"):
        list(ds)
    windows = open_dreamer(copy, streams={"eeg": "eeg@200", "ecg": "ecg@200"})
    with pytest.raises(DamagedShardError, match=r"stream ecg@200: shard 0 is damaged"):
        list(windows.iter_parts("ecg"))
    assert np.isfinite(next(windows.iter_parts("eeg"))["windows"]).all()


def test_xarray_opens_every_group_with_dimension_names_and_units(base):
    """Issue 19: ``xr.open_zarr(store, group="ecg@200")`` (KeyError: dimension_names before)."""
    xr = pytest.importorskip("xarray")
    store = open_store(base)
    s = store.stream("ecg@200")
    with pytest.warns(RuntimeWarning, match="consolidated metadata"):  # xarray's, on any v3
        ds = xr.open_zarr(base, group="ecg@200")
    assert ds.windows.dims == ("window", "channel", "patch", "sample")
    assert ds.channel_mask.dims == ("window", "channel") and ds.patch_mask.dims == ("window",
                                                                                    "patch")
    assert ds.windows.attrs["units"] == "mV" and ds.attrs["channels"] == s.channels
    contract = s.read()
    for name in ("windows", "record", "start", "channel_mask", "patch_mask"):
        np.testing.assert_array_equal(ds[name].values, contract[name])
    labels = xr.open_zarr(base, group="labels", consolidated=False)
    for key, values in store.labels().items():
        np.testing.assert_array_equal(labels[key].values, values)
    records = xr.open_zarr(base, group="records", consolidated=False)
    assert list(records.status.values) == list(store.records()["status"])


@pytest.mark.parametrize("where", ["root", "unsealed stream"])
def test_garbage_zarr_json_is_one_line_naming_it(copy, where):
    from typer.testing import CliRunner

    from biosig_prep.cli import app

    if where == "root":
        (copy / "zarr.json").write_text("{garbage")
        match = r"d.zarr: zarr.json cannot be read \(JSONDecodeError"
    else:
        _edit_json(copy / "zarr.json", lambda m: m["attributes"].pop("integrity"))
        (copy / "eeg@200" / "windows" / "zarr.json").write_text("{garbage")
        match = r"d.zarr: stream eeg@200 cannot be opened \(a zarr.json under eeg@200/ is damaged"
    with pytest.raises(StoreError, match=match):
        open_store(copy).stream("eeg@200")
    out = CliRunner().invoke(app, ["inspect", str(copy)])
    assert out.exit_code == 1 and "Traceback" not in out.output and out.output.count("\n") == 1
