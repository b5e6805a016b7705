"""Rhythm annotations -> per-window labels: the rule by hand, and the real CPSC 2021 records."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from biosig_prep.config import PrepConfig
from biosig_prep.convert import convert
from biosig_prep.readers import read_wfdb
from biosig_prep.readers.rhythm import (
    RHYTHM_CLASSES,
    cpsc2021_patient,
    read_rhythms,
    rhythm_window_labels,
)
from biosig_prep.store import open_store, verify_store

CPSC_PATIENTS = {"8": "AF", "84": "AF", "21": "non-AF", "35": "non-AF"}


def test_labels_by_hand() -> None:
    # 100 Hz source: N for 0-10 s, AFIB 10-16 s, AFL 16-30 s; windows of 10 s at 50 Hz
    episodes = [(0, 1000, "N"), (1000, 1600, "AFIB"), (1600, 3000, "AFL")]
    starts = np.array([0, 250, 500, 1000])  # 0-10 s, 5-15 s, 10-20 s, 20-30 s
    n_valid = np.array([500, 500, 500, 250])  # the last window: 5 s of real samples
    labels, classes = rhythm_window_labels(episodes, 100.0, starts, n_valid, 50.0)
    # 5-15 s: 5 s N, 5 s AFIB -> AF share exactly one half -> AF; rhythm tie -> N (first)
    assert labels["af"].tolist() == [0, 1, 1, 1]
    # 10-20 s: AFIB 6 s beats AFL 4 s; 20-25 s: AFL only
    assert labels["rhythm"].tolist() == [0, 0, 1, 2]
    assert classes == {"af": ["non-AF", "AF"], "rhythm": ["N", "AFIB", "AFL"]}


def test_labels_ignore_padding() -> None:
    # a 10 s window of which only the first 4 s are real: 3 s AFIB of those 4 -> AF
    labels, classes = rhythm_window_labels([(0, 100, "N"), (100, 10_000, "AFIB")], 100.0,
                                           np.array([0]), np.array([400]), 100.0)
    assert labels["af"].tolist() == [1] and labels["rhythm"].tolist() == [1]
    assert classes["rhythm"] == ["N", "AFIB"]


def test_read_rhythms_default_and_unknown(tmp_path) -> None:
    wfdb = pytest.importorskip("wfdb")
    sig = np.zeros((3000, 1), dtype=np.int16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wfdb.wrsamp("r1", fs=100, units=["mV"], sig_name=["II"], d_signal=sig, fmt=["16"],
                    adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path))
        wfdb.wrann("r1", "atr", np.array([50, 400, 900, 2000]), np.array(["N", "+", "N", "+"]),
                   aux_note=["", "(AFIB", "", "(XYZ"], write_dir=str(tmp_path))
    episodes = read_rhythms(tmp_path / "r1.hea", 3000)
    # before the first rhythm annotation: N; an unknown name: "other"
    assert episodes == [(0, 400, "N"), (400, 2000, "AFIB"), (2000, 3000, "other")]
    assert read_rhythms(tmp_path / "nothing.hea", 10) is None
    (tmp_path / "bad.atr").write_bytes(b"\x01")
    (tmp_path / "bad.hea").write_text("bad 1 100 10\n")
    with pytest.raises(Exception, match="bad.atr"):
        read_rhythms(tmp_path / "bad.hea", 10)
    # the labels of such a record: 10 s windows at 100 Hz
    labels, classes = rhythm_window_labels(episodes, 100.0, np.array([0, 1000, 2000]),
                                           np.array([1000, 1000, 1000]), 100.0)
    assert labels["af"].tolist() == [1, 1, 0]
    assert labels["rhythm"].tolist() == [1, 1, len(RHYTHM_CLASSES) - 1]


def test_cpsc2021_patient() -> None:
    assert cpsc2021_patient("data_84_12") == "84"
    assert cpsc2021_patient("sub/data_8_2") == "8"
    assert cpsc2021_patient("E07500") is None and cpsc2021_patient("data_8") is None


@pytest.fixture(scope="module")
def cpsc_store(shared_data, tmp_path_factory):
    folder = shared_data / "annotated" / "cpsc2021"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    dst = tmp_path_factory.mktemp("cpsc") / "cpsc.zarr"
    convert([folder], dst, PrepConfig(rates=[100, 200, 500]), workers=0, progress=False)
    return folder, open_store(dst)


def _expected_windows(n: int, fs: float, rate: int) -> int:
    """Windows of 10 x 200 samples, tail pad (at least 5 whole patches), computed by hand."""
    m = n if rate == fs else int(np.ceil(n * rate / fs))
    full, rest = divmod(m, 2000)
    return full + int(rest // 200 >= 5)


def test_cpsc2021_real(cpsc_store) -> None:
    folder, store = cpsc_store
    records = store.records()
    meta = [json.loads(m) for m in records["metadata"]]
    assert set(records["status"]) == {"ok"} and set(records["source"]) == {"cpsc2021"}
    assert [m["patient_id"] for m in meta] == [cpsc2021_patient(r) for r in records["id"]]
    # data_8_2's clipped lead II is masked, its windows still labelled AF
    clipped = meta[list(records["id"]).index("data_8_2")]
    assert clipped["clipped_leads"] == ["II"]
    for name in ("ecg@100", "ecg@200", "ecg@500"):
        stream = store.stream(name)
        labels = stream.window_labels()
        assert set(labels) == {"af", "rhythm"}
        assert stream.label_classes("af") == ["non-AF", "AF"]
        assert stream.label_classes("rhythm") == ["N", "AFIB"]
        rows = stream.record[:]
        for i, rid in enumerate(records["id"]):
            n = int((rows == i).sum())
            assert n == _expected_windows(int(records["n_samples"][i]), 200.0, stream.fs), rid
            share = labels["af"][rows == i].mean()
            # persistent AF records are all AF, non-AF records have none
            assert share == (1.0 if CPSC_PATIENTS[meta[i]["patient_id"]] == "AF" else 0.0), rid
        assert (labels["rhythm"] == labels["af"]).all()  # N <-> 0, AFIB <-> 1 here
    assert verify_store(store.url)["problems"] == []
    keys = [k for k in store.manifest() if "/labels/" in k]
    assert {k.split("/")[0] for k in keys} == {"ecg@100", "ecg@200", "ecg@500"}


def test_read_wfdb_carries_rhythms(shared_data) -> None:
    hea = shared_data / "annotated" / "cpsc2021" / "data_84_3.hea"
    if not hea.is_file():
        pytest.skip(f"{hea} is absent")
    rec = read_wfdb(hea)
    assert rec.source == "cpsc2021" and rec.metadata["patient_id"] == "84"
    assert rec.rhythms == [(0, 39512, "AFIB"), (39512, 39513, "N")]


def test_labelled_and_unlabelled_records_spilled(shared_data, tmp_path) -> None:
    """A record without annotations in a labelled stream gets -1; staged (spilled) data keeps
    the labels."""
    folder = shared_data / "annotated" / "cpsc2021"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    src = tmp_path / "src"
    src.mkdir()
    for suffix in (".hea", ".dat", ".atr"):
        shutil.copy(folder / f"data_8_4{suffix}", src)
    for suffix in (".hea", ".dat"):  # no .atr: unlabelled
        shutil.copy(folder / f"data_35_6{suffix}", src)
    dst = tmp_path / "mixed.zarr"
    convert([src], dst, PrepConfig(rates=[200]), workers=0, progress=False, batch_size=1,
            memory_bytes=1)
    stream = open_store(dst).stream("ecg@200")
    ids = list(open_store(dst).records()["id"])
    rows = stream.record[:]
    af = stream.window_labels()["af"]
    assert af[rows == ids.index("data_8_4")].tolist() == [1] * 4
    assert set(af[rows == ids.index("data_35_6")].tolist()) == {-1}
    assert verify_store(dst)["problems"] == []
