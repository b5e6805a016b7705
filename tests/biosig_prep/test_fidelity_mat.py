"""Issue 10 item 2: ``.mat`` files other than int16 MATLAB v4 are read as what they are (any v4
numeric type, either byte order; v5 through scipy) or refused naming the format, never read as
int16 at the header's offset and marked ok. Files written from the real record E07500."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from biosig_prep.config import PrepConfig
from biosig_prep.processing import process_recording
from biosig_prep.readers import ReadError
from biosig_prep.readers.wfdb_reader import read_wfdb

pytestmark = pytest.mark.real_data

_P = {"f8": 0, "f4": 1, "i4": 2, "i2": 3, "u2": 4, "u1": 5}


def _v4(path: Path, val: np.ndarray, dtype: str, big: bool = False) -> None:
    order = ">" if big else "<"
    val = np.asarray(val).astype(f"{order}{dtype}")
    mtype = (1000 if big else 0) + 10 * _P[dtype]
    head = np.array([mtype, val.shape[0], val.shape[1], 0, 4], dtype=f"{order}i4").tobytes()
    path.write_bytes(head + b"val\0" + val.tobytes(order="F"))


@pytest.fixture(scope="module")
def e07500(shared_data):
    hea = shared_data / "ecg" / "cinc2021" / "E07500.hea"
    return hea, read_wfdb(hea).signals, loadmat(hea.with_suffix(".mat"))["val"]


def _record(tmp_path: Path, hea: Path, name: str, *, gain: str | None = None,
            baseline: str | None = None) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    text = hea.read_text()
    if gain is not None:
        text = text.replace("1000.0(0)/mV", f"{gain}({baseline or 0})/mV")
    (folder / hea.name).write_text(text)
    return folder / hea.name


@pytest.mark.parametrize("dtype, big", [("f8", False), ("f4", False), ("i4", False),
                                        ("i2", True), ("f8", True)])
def test_v4_of_any_numeric_type_reads_the_same_signal(e07500, tmp_path, dtype, big):
    hea, truth, val = e07500
    dst = _record(tmp_path, hea, f"{dtype}{big}")
    _v4(dst.with_suffix(".mat"), val, dtype, big)
    rec = read_wfdb(dst)
    np.testing.assert_allclose(rec.signals, truth, rtol=0, atol=1e-12)
    assert process_recording(rec, PrepConfig()).ok


def test_v4_unsigned_with_baseline(e07500, tmp_path):
    hea, truth, val = e07500
    dst = _record(tmp_path, hea, "u2", gain="1000.0", baseline="32768")
    _v4(dst.with_suffix(".mat"), val.astype(np.int32) + 32768, "u2")
    np.testing.assert_allclose(read_wfdb(dst).signals, truth, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", ["int16", "float64"])
def test_v5_file_with_gain_2000_reads_the_true_signal(e07500, tmp_path, dtype):
    hea, truth, val = e07500
    dst = _record(tmp_path, hea, f"v5{dtype}", gain="2000.0")
    savemat(dst.with_suffix(".mat"), {"val": (val.astype(np.int32) * 2).astype(dtype)})
    assert dst.with_suffix(".mat").read_bytes().startswith(b"MATLAB 5.0")
    rec = read_wfdb(dst)
    np.testing.assert_allclose(rec.signals, truth, rtol=0, atol=1e-12)
    r = [np.corrcoef(a, b)[0, 1] for a, b in zip(rec.signals, truth, strict=True)]
    assert min(r) > 0.999999
    assert abs(np.abs(rec.signals).max() - np.abs(truth).max()) < 1e-12


def test_v73_and_complex_files_are_refused_naming_the_format(e07500, tmp_path):
    hea, _truth, val = e07500
    dst = _record(tmp_path, hea, "v73")
    mat = dst.with_suffix(".mat")
    mat.write_bytes(b"MATLAB 7.3 MAT-file".ljust(512, b" ") + b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(ReadError, match=r"MATLAB v7\.3 \(HDF5\)"):
        read_wfdb(dst)
    head = np.array([30, 12, 5000, 1, 4], dtype="<i4").tobytes()
    mat.write_bytes(head + b"val\0" + bytes(2 * 12 * 5000 * 2))
    with pytest.raises(ReadError, match="complex"):
        read_wfdb(dst)
    _v4(mat, val[:5], "i2")
    with pytest.raises(ReadError, match="holds 5 rows but the header declares 12"):
        read_wfdb(dst)
    shutil.copyfile(hea.with_suffix(".mat"), mat)
    assert read_wfdb(dst).signals.shape == (12, 5000)
