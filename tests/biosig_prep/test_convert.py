"""``convert``: the store holds exactly what processing gives, in plan order, whatever the
executor, batch, shard, block or spill settings; bad records never stop a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biosig_prep import StoreError, convert, open_store
from biosig_prep.config import PrepConfig
from biosig_prep.processing import process_dreamer_trial, process_recording
from biosig_prep.readers import discover, read_dreamer, read_source
from biosig_prep.store import codec_for
from biosig_prep.synth.challenge import write_challenge_corpus
from biosig_prep.synth.dreamer import write_dreamer_mat

ARRAYS = ("windows", "record", "start", "channel_mask", "patch_mask")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """16 records: mixed sources and lengths, the header quirks, 3 broken files."""
    out = tmp_path_factory.mktemp("corpus")
    write_challenge_corpus(out, n_records=16, seed=7, long_seconds=40.0, broken=3)
    return out


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("ref") / "ref.zarr"
    convert([corpus], dst, workers=0, progress=False)
    return dst


def assert_same_store(a, b) -> None:
    """Array by array, byte for byte; records table and summary too."""
    sa, sb = open_store(a), open_store(b)
    assert sa.stream_names == sb.stream_names
    for name in sa.stream_names:
        x, y = sa.stream(name), sb.stream(name)
        assert (x.channels, x.fs, x.units, len(x)) == (y.channels, y.fs, y.units, len(y))
        for arr in ARRAYS:
            u, v = getattr(x, arr)[:], getattr(y, arr)[:]
            assert u.dtype == v.dtype and u.tobytes() == v.tobytes(), f"{name}/{arr} differ"
    ra, rb = sa.records(), sb.records()
    for col in ra:
        assert ra[col].tobytes() == rb[col].tobytes(), f"records/{col} differ"
    la, lb = sa.labels(), sb.labels()
    assert (la is None) == (lb is None)
    for key in la or {}:
        assert la[key].tobytes() == lb[key].tobytes()
    assert sa.summary == sb.summary and sa.config == sb.config


def test_store_holds_exactly_what_processing_gives(corpus, reference):
    config = PrepConfig()
    codec = codec_for("ecg", "int16", config.encoding.steps())
    store = open_store(reference)
    records = store.records()
    sources = discover([corpus])
    expected_rows, expected = [], {}
    for src in sources:
        try:
            recs = [process_recording(r, config) for r in read_source(src)]
        except Exception as exc:  # noqa: BLE001 - the reader's error is the status
            expected_rows.append((src.record_id, "read"))
            assert f"read: {exc.reason}" in list(records["status"])
            continue
        for pr in recs:
            row = len(expected_rows)
            expected_rows.append((pr.record_id, pr.status))
            for name, sw in pr.streams.items():
                e = expected.setdefault(name, {"windows": [], "record": [], "start": [],
                                               "channel_mask": [], "patch_mask": []})
                # int16 at 1 µV (schema 2): exactly what zarr's fixed-scale codec decodes to
                e["windows"].append((codec.quantize(sw.windows) / codec.scale).astype("f4"))
                e["patch_mask"].append(sw.patch_mask)
                e["record"].append(np.full(len(sw), row))
                e["start"].append(sw.start)
                e["channel_mask"].append(sw.channel_mask)
    assert list(records["id"]) == [rid for rid, _ in expected_rows]
    for (_, status), got in zip(expected_rows, records["status"], strict=True):
        assert got.startswith("read: ") if status == "read" else got == status
    assert store.stream_names == sorted(expected, key=lambda n: int(n.split("@")[1]))
    for name, e in expected.items():
        s = store.stream(name)
        for arr in ARRAYS:
            np.testing.assert_array_equal(getattr(s, arr)[:], np.concatenate(e[arr]))
        assert s.channels == config.leads and s.units == "mV"
    summary = store.summary
    n_ok = sum(status == "ok" for _, status in expected_rows)
    assert summary["records_in"] == len(expected_rows) == 16
    assert summary["records_ok"] == n_ok and summary["records_skipped"] == 16 - n_ok >= 3
    assert sum(summary["skipped_reasons"].values()) == summary["records_skipped"]
    assert summary["windows"] == {n: len(store.stream(n)) for n in store.stream_names}
    assert store.config == config.model_dump(mode="json")
    assert store.complete and "_convert" not in store._group  # staging removed


def test_layout(reference):
    store = open_store(reference)
    s = store.stream("ecg@500")
    k = s.shard_size
    assert s.windows.chunks == (1, 12, 10, 200) and s.windows.shards == (k, 12, 10, 200)
    assert k * 12 * 10 * 200 * 4 <= 4 << 20  # a few MB per shard
    shards = [key for key in _keys(reference) if key.startswith("ecg@500/windows/c/")]
    assert len(shards) == -(-len(s) // k)  # one object per shard, none past the end
    attrs = store.attrs
    assert attrs["schema"] == 2 and attrs["complete"] is True and attrs["version"]
    assert attrs["conversion"]["state"] == "complete"


def _keys(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("settings", [
    {"batch_size": 3, "shard_bytes": 1, "block_bytes": 1},  # a shard per window, many pieces
    {"batch_size": 2, "memory_bytes": 0, "part_bytes": 50_000},  # every batch spills
    {"batch_size": 2, "block_bytes": 400_000},  # low-rate tables wait and get spilled
    {"batch_bytes": 300_000},  # batches cut by input bytes: long records alone
])
def test_layout_settings_do_not_change_the_data(corpus, reference, tmp_path, settings):
    dst = tmp_path / "x.zarr"
    convert([corpus], dst, workers=0, progress=False, **settings)
    a, b = open_store(reference), open_store(dst)
    assert a.stream_names == b.stream_names
    for name in a.stream_names:
        for arr in ARRAYS:
            np.testing.assert_array_equal(getattr(a.stream(name), arr)[:],
                                          getattr(b.stream(name), arr)[:])
    assert list(a.records()["status"]) == list(b.records()["status"])
    assert not (dst / "_convert").exists()


def test_threads_and_memory_url(corpus, reference, tmp_path):
    url = f"memory://biosig-convert-{tmp_path.name}/x.zarr"
    s = convert([corpus], url, workers=2, processes=False, progress=False, batch_size=4)
    assert s.records_in == 16 and not s.already_complete
    assert_same_store(reference, url)


@pytest.mark.slow
def test_worker_processes_give_the_same_store(corpus, reference, tmp_path):
    """Real dask worker processes (one cluster start: a few seconds)."""
    dst = tmp_path / "p.zarr"
    convert([corpus], dst, workers=2, progress=False, batch_size=3, memory_bytes=200_000)
    assert_same_store(reference, dst)


def test_summary_object_lists_the_skipped_records(corpus, tmp_path):
    s = convert([corpus], tmp_path / "x.zarr", workers=0, progress=False)
    assert s.records_skipped == len(s.skipped) >= 3
    for rec in s.skipped:
        assert rec.status != "ok" and rec.path.startswith(str(corpus))
    assert s.sources == 16 and s.batches == 1 and s.batches_resumed == 0
    assert s.to_dict()["skipped"][0]["status"] == s.skipped[0].status


def test_existing_destinations(corpus, reference, tmp_path):
    again = convert([corpus], reference, workers=0, progress=False)  # same plan: nothing to do
    assert again.already_complete and again.records_in == 16
    other = PrepConfig(rates=[200])
    with pytest.raises(StoreError, match="other sources or settings.*overwrite"):
        convert([corpus], reference, other, workers=0, progress=False)
    dst = tmp_path / "x.zarr"
    convert([corpus], dst, workers=0, progress=False)
    s = convert([corpus], dst, other, workers=0, progress=False, overwrite=True)
    assert open_store(dst).stream_names == ["ecg@200"] and s.windows.keys() == {"ecg@200"}
    folder = tmp_path / "not-a-store"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not a Zarr store; refusing"):
        convert([corpus], folder, workers=0, progress=False, overwrite=True)
    assert (folder / "precious.txt").exists()


def test_inputs_that_give_no_record(corpus, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no records found in .*empty"):
        convert([empty], tmp_path / "x.zarr", workers=0, progress=False)
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    s = convert([corpus, odd, empty], tmp_path / "y.zarr", workers=0, progress=False)
    assert s.records_in == 16 and len(s.problems) == 2
    assert any("notes.txt" in p and "unknown format" in p for p in s.problems)
    assert open_store(tmp_path / "y.zarr").summary["problems"] == s.problems


def test_a_rate_the_data_cannot_carry_skips_with_the_reason(corpus, tmp_path):
    s = convert([corpus], tmp_path / "x.zarr", PrepConfig(rates=[50, 500]), workers=0,
                progress=False)
    assert s.records_ok == 0 and s.records_skipped == 16
    assert any("Nyquist" in reason and "50" in reason for reason in s.skipped_reasons)


# ---- DREAMER ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dreamer_mat(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dreamer") / "DREAMER.mat"
    write_dreamer_mat(path, n_subjects=2, n_clips=3, clip_seconds=25.0, baseline_seconds=4.0)
    return path


def test_dreamer_paired_streams_and_labels(dreamer_mat, tmp_path):
    config = PrepConfig()
    s = convert([dreamer_mat], tmp_path / "d.zarr", config, workers=0, progress=False,
                threads=2, memory_bytes=500_000)
    store = open_store(tmp_path / "d.zarr")
    assert store.stream_names == ["ecg@200", "eeg@200"]
    eeg, ecg = store.stream("eeg@200"), store.stream("ecg@200")
    assert len(eeg) == len(ecg) == s.windows["eeg@200"] > 0
    assert len(eeg.channels) == 14 and ecg.channels == ["ECG1", "ECG2"] and eeg.units == "µV"
    labels = store.labels()
    assert set(labels) >= {"valence", "arousal", "dominance", "subject", "clip"}
    assert all(len(v) == len(eeg) for v in labels.values())
    np.testing.assert_array_equal(eeg.record[:], ecg.record[:])
    np.testing.assert_array_equal(eeg.start[:], ecg.start[:])
    records = store.records()
    assert list(records["id"][:2]) == ["dreamer/s00/c00", "dreamer/s00/c01"]
    data = read_dreamer(dreamer_mat)
    trials = list(data.trials())
    for row in np.unique(eeg.record[:]):
        trial = trials[row]
        meta = json.loads(records["metadata"][row])
        at = eeg.record[:] == row
        assert (labels["subject"][at] == trial.subject).all()
        assert (labels["clip"][at] == trial.clip).all()
        assert (labels["valence"][at] == trial.scores["valence"]).all()
        assert meta["subject"] == trial.subject
    first = process_dreamer_trial(trials[0], config)
    n0 = len(first.streams["eeg@200"])
    # int16 at the EEG step of 0.2 µV: exactly what zarr's fixed-scale codec decodes to
    codec = codec_for("eeg", "int16", config.encoding.steps())
    np.testing.assert_array_equal(
        eeg.windows[:n0],
        (codec.quantize(first.streams["eeg@200"].windows) / codec.scale).astype("f4"))
    # paired streams stay aligned: the same patch_mask rows; 25 s clips at 200 Hz give two
    # whole windows and a 5 s tail (5 of 10 patches) per trial
    np.testing.assert_array_equal(eeg.patch_mask[:], ecg.patch_mask[:])
    assert eeg.patch_mask[:].sum(axis=1).tolist()[:3] == [10, 10, 5]
    np.testing.assert_array_equal(eeg.patch_mask[:n0], first.streams["eeg@200"].patch_mask)


def test_dreamer_cannot_share_a_store(dreamer_mat, corpus, tmp_path):
    with pytest.raises(ValueError, match="DREAMER files cannot share a store"):
        convert([dreamer_mat, corpus], tmp_path / "x.zarr", workers=0, progress=False)


def test_truncated_dreamer_file_is_a_skipped_record(dreamer_mat, tmp_path):
    bad = tmp_path / "DREAMER.mat"
    bad.write_bytes(dreamer_mat.read_bytes()[:5000])
    s = convert([bad], tmp_path / "x.zarr", workers=0, progress=False, fmt="dreamer")
    assert s.records_in == 1 and s.records_ok == 0
    assert s.skipped[0].status.startswith("read: ") and s.skipped[0].path == str(bad)


def test_killed_while_finishing_only_finishes(corpus, reference, tmp_path):
    """A run killed after its summary but before ``complete``: the rerun only cleans up."""
    import zarr

    dst = tmp_path / "x.zarr"
    convert([corpus], dst, workers=0, progress=False)
    group = zarr.open_group(dst, mode="r+")
    group.attrs.update(complete=False,
                       conversion={**group.attrs["conversion"], "state": "finalizing"})
    (dst / "_convert" / "b000000").mkdir(parents=True)
    (dst / "_convert" / "b000000" / "done.json").write_text("{}")
    with pytest.raises(StoreError, match="incomplete"):
        open_store(dst)
    s = convert([corpus], dst, workers=0, progress=False)
    assert s.batches_resumed == s.batches == 1 and s.records_in == 16
    assert not (dst / "_convert").exists()
    assert_same_store(reference, dst)


def test_resume_false_starts_over(corpus, tmp_path):
    import zarr

    dst = tmp_path / "x.zarr"
    convert([corpus], dst, workers=0, progress=False, batch_size=4)
    zarr.open_group(dst, mode="r+").attrs["complete"] = False  # as if killed
    s = convert([corpus], dst, workers=0, progress=False, batch_size=4, resume=False)
    assert s.batches_resumed == 0 and s.records_in == 16 and open_store(dst).complete
