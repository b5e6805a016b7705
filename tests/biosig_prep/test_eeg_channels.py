"""The EEG stream's channels are decided before any record (issue 17 item 1), and a dead EEG
channel is masked in its own unit (issue 17 item 8), on copies of the real eegmat EDF."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from biosig_prep.config import PrepConfig, QCConfig
from biosig_prep.convert import convert
from biosig_prep.dsp.montage import ChannelPlacementError, decide_from_layouts, place_eeg_channels
from biosig_prep.dsp.qc import flat_leads
from biosig_prep.readers import read_edf
from biosig_prep.readers.edf_header import read_edf_header
from biosig_prep.store import open_store

EEGMAT = "eeg/eegmat/Subject00_2.edf"
CFG = PrepConfig(rates=[200])


def _label(path, index: int, name: str) -> None:
    """Set the label of signal ``index`` in an EDF header (16 bytes at 256 + 16 * index)."""
    with open(path, "r+b") as fh:
        fh.seek(256 + 16 * index)
        fh.write(name.encode("ascii").ljust(16))


def _swap_labels(path, i: int, j: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(256 + 16 * i)
        a = fh.read(16)
        fh.seek(256 + 16 * j)
        b = fh.read(16)
        fh.seek(256 + 16 * i)
        fh.write(b)
        fh.seek(256 + 16 * j)
        fh.write(a)


def _corpus(shared_data, tmp_path, change) -> dict:
    src = shared_data / EEGMAT
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("B1.edf", "B2.edf", "A0.edf"):
        shutil.copy(src, folder / name)
    change(folder / "A0.edf")
    convert([folder], tmp_path / "s.zarr", CFG, workers=0, progress=False)
    store = open_store(tmp_path / "s.zarr")
    r = store.records()
    rows = {rid: (status, json.loads(meta)) for rid, status, meta in
            zip(r["id"], r["status"], r["metadata"], strict=True) if rid.endswith("/eeg")}
    return {"store": store, "rows": rows}


def test_decide_from_layouts_majority_order_and_union():
    a, b = ["Fp1", "Fp2", "Cz"], ["fp2", "FP1", "Cz"]
    assert decide_from_layouts([["X", "Fp2", "Cz"], a, a]) == (["Fp1", "Fp2", "Cz"], "majority")
    # the most common layout gives the order, whatever the first file's order
    assert decide_from_layouts([b, a, a])[0] == ["Fp1", "Fp2", "Cz"]
    assert decide_from_layouts([["A"], ["B"]]) == (["A", "B"], "union")
    found, missing, dropped = place_eeg_channels(["Cz", "X", "fp1"], ["Fp1", "Fp2", "Cz"])
    assert (found, missing, dropped) == ([2, None, 0], ["Fp2"], ["X"])
    with pytest.raises(ChannelPlacementError, match="hold 1 of the stream's 3"):
        place_eeg_channels(["Cz", "A", "B"], ["Fp1", "Fp2", "Cz"])


@pytest.mark.real_data
def test_a_relabelled_first_file_no_longer_decides_the_stream(shared_data, tmp_path):
    out = _corpus(shared_data, tmp_path, lambda p: _label(p, 0, "EEG Fp1-REF"))
    rows, store = out["rows"], out["store"]
    assert [s for s, _ in rows.values()] == ["ok"] * 3  # was: A0 ok, B1 and B2 skipped
    eeg = store.stream("eeg@200")
    assert eeg.channels[0] == "EEG Fp1" and "EEG Fp1-REF" not in eeg.channels
    assert rows["A0/eeg"][1]["missing_channels"] == ["EEG Fp1"]
    assert rows["A0/eeg"][1]["dropped_channels"] == ["EEG Fp1-REF"]
    mask = eeg.channel_mask[:]
    rec = eeg.record[:]
    a0 = list(store.records()["id"]).index("A0/eeg")
    assert not mask[rec == a0, 0].any() and mask[rec != a0].all()


@pytest.mark.real_data
def test_swapped_channels_are_placed_by_name(shared_data, tmp_path):
    out = _corpus(shared_data, tmp_path, lambda p: _swap_labels(p, 0, 1))
    rows, store = out["rows"], out["store"]
    assert [s for s, _ in rows.values()] == ["ok"] * 3
    eeg = store.stream("eeg@200")
    ids = list(store.records()["id"])
    w, rec = eeg.windows[:], eeg.record[:]
    a0, b1 = w[rec == ids.index("A0/eeg")], w[rec == ids.index("B1/eeg")]
    # A0's file row 0 is labelled Fp2 (it holds Fp1's samples): stored under Fp2
    np.testing.assert_array_equal(a0[:, 1], b1[:, 0])
    np.testing.assert_array_equal(a0[:, 0], b1[:, 1])


@pytest.mark.real_data
def test_a_file_that_cannot_be_placed_is_the_one_skipped(shared_data, tmp_path):
    def rename_most(p):
        for i in range(15):
            _label(p, i, f"X{i}")
    out = _corpus(shared_data, tmp_path, rename_most)
    rows = out["rows"]
    assert rows["B1/eeg"][0] == rows["B2/eeg"][0] == "ok"
    assert rows["A0/eeg"][0].startswith("channels: the file's EEG channels ['X0'")
    assert "declare eeg_channels" in rows["A0/eeg"][0]


@pytest.mark.real_data
def test_declared_montage(shared_data, tmp_path):
    shutil.copy(shared_data / EEGMAT, tmp_path / "a.edf")
    cfg = CFG.model_copy(update={"eeg_channels": ["eeg cz", "EEG Fp1", "EEG Oz"]})
    convert([tmp_path / "a.edf"], tmp_path / "s.zarr", cfg, workers=0, progress=False)
    store = open_store(tmp_path / "s.zarr")
    eeg = store.stream("eeg@200")
    assert list(eeg.channels) == ["eeg cz", "EEG Fp1", "EEG Oz"]
    assert eeg.channel_mask[:].tolist()[0] == [True, True, False]


def _dead_copy(shared_data, tmp_path, index: int = 1):
    """eegmat with signal ``index``'s physical maximum set equal to its minimum."""
    path = tmp_path / "dead.edf"
    shutil.copy(shared_data / EEGMAT, path)
    ns = int(path.read_bytes()[252:256])  # signals in the header (annotations included)
    with open(path, "r+b") as fh:
        fh.seek(256 + 104 * ns + 8 * index)
        low = fh.read(8)
        fh.seek(256 + 112 * ns + 8 * index)
        fh.write(low)
    return path


@pytest.mark.real_data
def test_a_dead_eeg_channel_is_masked_and_named(shared_data, tmp_path):
    path = _dead_copy(shared_data, tmp_path)
    assert read_edf_header(path).dead_channels() == ["EEG Fp2"]
    eeg = read_edf(path)[0]
    assert eeg.metadata["dead_channels"] == ["EEG Fp2"] and not eeg.signals[1].any()
    convert([path], tmp_path / "s.zarr", CFG, workers=0, progress=False)
    store = open_store(tmp_path / "s.zarr")
    r = store.records()
    meta = json.loads(r["metadata"][list(r["id"]).index("dead/eeg")])
    assert meta["flat_leads"] == ["EEG Fp2"]
    mask = store.stream("eeg@200").channel_mask[:]
    assert not mask[:, 1].any() and mask[:, [0, *range(2, mask.shape[1])]].all()


def test_flat_threshold_is_per_unit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1000))
    x[1] *= 0.01  # std 0.01: 0.01 mV = 10 µV is a real (weak) ECG lead,
    # 0.01 µV is no EEG at all
    assert flat_leads(x, QCConfig(), "eeg").tolist() == [False, True]
    assert flat_leads(x, QCConfig(), "ecg").tolist() == [False, False]


@pytest.mark.real_data
def test_a_truncated_edf_says_so_in_its_metadata(shared_data, tmp_path):
    data = (shared_data / EEGMAT).read_bytes()
    (tmp_path / "t.edf").write_bytes(data[: len(data) // 2])
    eeg = read_edf(tmp_path / "t.edf")[0]
    assert "Number of records from the header does not match the file size" in \
        eeg.metadata["read_warnings"][0]
