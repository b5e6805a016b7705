"""The WFDB reader on the real Challenge files, every header quirk, and its speed."""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from biosig_prep.config import PrepConfig
from biosig_prep.processing import process_recording
from biosig_prep.readers import ReadError, SourceFile, read_source
from biosig_prep.readers.wfdb_reader import header_metadata, import_wfdb, read_wfdb

wfdb = import_wfdb()

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def cinc(shared_data) -> Path:
    return shared_data / "ecg" / "cinc2021"


@pytest.fixture(scope="module")
def reduced(shared_data) -> Path:
    return shared_data / "ecg" / "reduced-leads"


def _all_headers(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "ecg").rglob("*.hea"))


def _copy_record(src_hea: Path, dst_dir: Path, *, text: str | None = None,
                 mat_name: str | None = None, hea_name: str | None = None) -> Path:
    """Copy a record into ``dst_dir``, optionally with new header text / file names."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    hea = dst_dir / (hea_name or src_hea.name)
    shutil.copyfile(src_hea.with_suffix(".mat"), dst_dir / (mat_name or src_hea.stem + ".mat"))
    hea.write_text(src_hea.read_text() if text is None else text)
    return hea


def test_fast_path_equals_wfdb_on_every_real_record(shared_data):
    headers = _all_headers(shared_data)
    assert len(headers) == 52
    for hea in headers:
        rec = read_wfdb(hea)
        ref = wfdb.rdrecord(str(hea.with_suffix("")))
        assert rec.signals.shape == ref.p_signal.T.shape
        assert rec.signals.dtype == np.float64
        np.testing.assert_allclose(rec.signals, ref.p_signal.T, rtol=0, atol=1e-12)
        assert rec.fs == ref.fs and rec.channels == ref.sig_name
        assert rec.units == ["mV"] * ref.n_sig
        slow = read_wfdb(hea, fast=False)
        np.testing.assert_allclose(slow.signals, rec.signals, rtol=0, atol=1e-12)


def test_metadata_and_sources(cinc, reduced):
    rec = read_wfdb(cinc / "E07500.hea")
    assert rec.metadata["age"] == 78 and rec.metadata["sex"] == "Male"
    assert rec.metadata["dx"] == ["67741000119109", "426177001"]
    assert rec.source == "georgia" and rec.modality == "ecg" and rec.fs == 500.0
    assert rec.channels == ["I", "II", "III", "aVR", "aVL", "aVF",
                            "V1", "V2", "V3", "V4", "V5", "V6"]
    assert read_wfdb(cinc / "HR06000.hea").source == "ptb-xl"
    assert read_wfdb(cinc / "JS20000.hea").source == "chapman-ningbo"
    # the original Challenge text: "#Age: 84" with no space
    six = read_wfdb(reduced / "six" / "JS20000.hea", record_id="six/JS20000")
    assert six.record_id == "six/JS20000"
    assert six.metadata["age"] == 84 and six.metadata["sex"] == "Female"
    assert six.metadata["dx"] == ["284470004", "427084000", "698252002", "55930002"]


def test_header_metadata_variants():
    meta = header_metadata(["Age: NaN", "Sex: Female", "Dx: 1,2, 3", "Rx: Unknown",
                            "free text without colon", "Some long: thing"])
    assert meta == {"age": None, "sex": "Female", "dx": ["1", "2", "3"], "rx": "Unknown"}
    assert header_metadata(["Age:65"])["age"] == 65


def test_georgia_record_line_with_the_file_name(cinc, tmp_path):
    original = (cinc / "E07500.hea").read_text()
    lines = original.splitlines()
    assert lines[0] == "E07500 12 500 5000"
    lines[0] = "E07500.mat 12 500 5000"  # the Georgia header bug
    hea = _copy_record(cinc / "E07500.hea", tmp_path, text="\n".join(lines) + "\n")
    with pytest.raises(Exception):  # noqa: B017 - wfdb itself rejects this header
        wfdb.rdheader(str(hea.with_suffix("")))
    ref = read_wfdb(cinc / "E07500.hea")
    for fast in (True, False):
        rec = read_wfdb(hea, fast=fast)
        np.testing.assert_array_equal(rec.signals, ref.signals)
        assert "record line starts with the file name" in rec.metadata["header_fixes"]
        assert rec.metadata["age"] == 78
    assert process_recording(read_wfdb(hea), PrepConfig()).ok


def test_lower_case_units(cinc):
    text = (cinc / "HR06000.hea").read_text()
    assert "1000.0(0)/mv" in text  # the real PTB-XL header
    rec = read_wfdb(cinc / "HR06000.hea")
    assert rec.units == ["mV"] * 12
    assert "units 'mv' read as 'mV'" in rec.metadata["header_fixes"]
    ref = wfdb.rdrecord(str(cinc / "HR06000"))
    np.testing.assert_allclose(rec.signals, ref.p_signal.T, atol=1e-12)
    assert 0.1 < np.abs(rec.signals).max() < 10  # mV


def test_mat_name_differs_from_record_name(cinc, tmp_path):
    text = (cinc / "JS20001.hea").read_text().replace("JS20001.mat", "JS20001_signals.mat")
    hea = _copy_record(cinc / "JS20001.hea", tmp_path, text=text, mat_name="JS20001_signals.mat")
    assert not (tmp_path / "JS20001.mat").exists()
    ref = read_wfdb(cinc / "JS20001.hea")
    for fast in (True, False):
        np.testing.assert_array_equal(read_wfdb(hea, fast=fast).signals, ref.signals)


def test_header_names_a_missing_file_but_the_record_mat_exists(cinc, tmp_path):
    text = (cinc / "JS20001.hea").read_text().replace("JS20001.mat", "A9999.mat")
    hea = _copy_record(cinc / "JS20001.hea", tmp_path, text=text)
    rec = read_wfdb(hea)
    np.testing.assert_array_equal(rec.signals, read_wfdb(cinc / "JS20001.hea").signals)
    assert any("missing" in fix for fix in rec.metadata["header_fixes"])


@pytest.mark.parametrize("subset, n_leads, mask", [
    ("six", 6, [True] * 6 + [False] * 6),
    ("two", 2, [True, True] + [False] * 10),
])
def test_reduced_lead_records(reduced, subset, n_leads, mask):
    rec = read_wfdb(reduced / subset / "JS20000.hea")
    assert rec.signals.shape == (n_leads, 5000)
    out = process_recording(rec, PrepConfig())
    assert out.ok, out.status
    for name, stream in out.streams.items():
        assert stream.channels == list(PrepConfig().leads)
        assert stream.windows.shape[1] == 12
        if len(stream):
            assert stream.channel_mask.tolist() == [mask] * len(stream), name
            assert not stream.windows[:, ~np.array(mask)].any()  # zero-filled
            assert np.abs(stream.windows[:, np.array(mask)]).max() > 0.1
    # the leads that are present equal those of the full 12-lead record's same leads
    full = process_recording(read_wfdb(reduced.parent / "cinc2021" / "JS20000.hea"),
                             PrepConfig())
    a, b = out.streams["ecg@500"].windows, full.streams["ecg@500"].windows
    np.testing.assert_allclose(a[:, :n_leads], b[:, :n_leads], atol=1e-6)


def test_ptb_gain_2000000_fails_qc_as_implausible_amplitude(cinc, tmp_path):
    text = (cinc / "HR06000.hea").read_text().replace("1000.0(0)/mv", "2000000(0)/mV")
    hea = _copy_record(cinc / "HR06000.hea", tmp_path, text=text)
    rec = read_wfdb(hea)
    np.testing.assert_allclose(rec.signals * 2000, read_wfdb(cinc / "HR06000.hea").signals)
    out = process_recording(rec, PrepConfig())
    assert out.status.startswith("qc: implausible amplitude (max ")
    assert out.status.endswith(" mV)") and out.streams == {}


def test_microvolt_units_are_converted_to_mv(cinc, tmp_path):
    text = (cinc / "E07501.hea").read_text().replace("1000.0(0)/mV", "1.0(0)/uV")
    hea = _copy_record(cinc / "E07501.hea", tmp_path, text=text)
    np.testing.assert_allclose(read_wfdb(hea).signals, read_wfdb(cinc / "E07501.hea").signals,
                               rtol=1e-12)


def test_unknown_units_are_an_error(cinc, tmp_path):
    text = (cinc / "E07501.hea").read_text().replace("1000.0(0)/mV", "1000.0(0)/furlong")
    hea = _copy_record(cinc / "E07501.hea", tmp_path, text=text)
    with pytest.raises(ReadError, match="units 'furlong'"):
        read_wfdb(hea)


def test_truncated_mat(cinc, tmp_path):
    hea = _copy_record(cinc / "E07502.hea", tmp_path)
    mat = tmp_path / "E07502.mat"
    mat.write_bytes(mat.read_bytes()[:5000])
    with pytest.raises(ReadError, match="truncated") as info:
        read_wfdb(hea)
    assert "E07502.mat" in str(info.value)
    mat.write_bytes(b"\x1e\x00")
    with pytest.raises(ReadError, match="E07502.mat: truncated"):
        read_wfdb(hea)


def test_corrupt_and_missing(cinc, tmp_path):
    bad = tmp_path / "bad.hea"
    bad.write_text("this is not a header\n")
    with pytest.raises(ReadError, match="bad.hea: corrupt header"):
        read_wfdb(bad)
    bad.write_text("")
    with pytest.raises(ReadError, match="no record line"):
        read_wfdb(bad)
    bad.write_text("rec 12 500 5000\nrec.mat 16+24 1000/mV 16 0 0 0 0 I\n")
    with pytest.raises(ReadError, match="12 signals declared, 1 signal lines"):
        read_wfdb(bad)
    text = (cinc / "E07503.hea").read_text()
    (tmp_path / "E07503.hea").write_text(text)  # header without its .mat
    with pytest.raises(ReadError, match="signal file 'E07503.mat' named in the header does not "
                                        "exist"):
        read_wfdb(tmp_path / "E07503.hea")
    with pytest.raises(ReadError, match="header file does not exist"):
        read_wfdb(tmp_path / "nothing.hea")
    # read_source wraps everything into ReadError too
    with pytest.raises(ReadError):
        read_source(SourceFile(str(bad), "wfdb", "bad"))


@pytest.mark.parametrize("fmt", ["16", "212"])
def test_classic_dat_formats(tmp_path, fmt):
    rng = np.random.default_rng(0)
    digital = rng.integers(-2000, 2000, size=(3000, 3)).astype(np.int32)
    with warnings.catch_warnings():  # wfdb.wrsamp uses pandas' deprecated inplace=True
        warnings.simplefilter("ignore", DeprecationWarning)
        wfdb.wrsamp("rec100", fs=360, units=["mV", "mV", "uV"], sig_name=["MLII", "V5", "V1"],
                    d_signal=digital, fmt=[fmt] * 3, adc_gain=[200.0, 200.0, 0.2],
                    baseline=[0, 10, -5], comments=["Age: 69", "Sex: M"],
                    write_dir=str(tmp_path))
    ref = wfdb.rdrecord(str(tmp_path / "rec100"))
    rec = read_wfdb(tmp_path / "rec100.hea")
    expected = ref.p_signal.T.copy()
    expected[2] /= 1000.0  # uV -> mV
    np.testing.assert_allclose(rec.signals, expected, rtol=1e-12, atol=1e-12)
    assert rec.fs == 360.0 and rec.metadata["age"] == 69
    out = process_recording(rec, PrepConfig())  # MLII -> II, V5, V1 present
    assert out.streams["ecg@500"].channel_mask[0].tolist() == [
        False, True, False, False, False, False, True, False, False, False, True, False]


def _write_challenge(folder: Path, name: str, digital: np.ndarray, fs: int,
                     gain: str = "1000") -> Path:
    """A Challenge-style record: header + MATLAB v4 ``val`` (int16, leads x samples)."""
    n_sig, n = digital.shape
    with open(folder / f"{name}.mat", "wb") as fh:
        np.array([30, n_sig, n, 0, 4], dtype="<i4").tofile(fh)
        fh.write(b"val\x00")
        digital.astype("<i2").T.tofile(fh)  # column-major: frame by frame
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    lines = [f"{name} {n_sig} {fs} {n}"]
    lines += [f"{name}.mat 16+24 {gain}/mV 16 0 {int(digital[k, 0])} 0 0 {leads[k]}"
              for k in range(n_sig)]
    lines += ["# Age: 50", "# Sex: Female", "# Dx: 426783006"]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return folder / f"{name}.hea"


@pytest.mark.parametrize("name, fs", [("I0001", 257), ("S0001", 1000)])
def test_incart_257_hz_and_ptb_1000_hz(tmp_path, name, fs):
    t = np.arange(30 * fs) / fs
    digital = np.stack([np.round(800 * np.sin(2 * np.pi * 1.1 * t + k)) for k in range(12)])
    hea = _write_challenge(tmp_path, name, digital, fs)
    rec = read_wfdb(hea)
    ref = wfdb.rdrecord(str(hea.with_suffix("")))
    np.testing.assert_allclose(rec.signals, ref.p_signal.T, atol=1e-12)
    assert rec.fs == fs
    out = process_recording(rec, PrepConfig())
    assert out.ok, out.status
    # 30 s under the pad tail policy: the 10 s past the 100 Hz window and the 2 s past the
    # 500 Hz windows each fill half a window (5 patches) and are kept, padded
    assert {k: len(v) for k, v in out.streams.items()} == {
        "ecg@100": 2, "ecg@200": 3, "ecg@500": 8, "ecg@1000": 15}
    assert out.streams["ecg@100"].patch_mask.sum(axis=1).tolist() == [10, 5]
    assert out.streams["ecg@500"].patch_mask.sum(axis=1).tolist() == [10] * 7 + [5]


def test_fast_path_is_faster_than_rdrecord(shared_data, capsys):
    headers = _all_headers(shared_data)

    def best(fn, repeats=3):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for hea in headers:
                fn(hea)
            times.append((time.perf_counter() - t0) / len(headers))
        return min(times)

    fast = best(read_wfdb)
    slow = best(lambda h: wfdb.rdrecord(str(h.with_suffix(""))))
    with capsys.disabled():
        print(f"\nWFDB read, ms/record: fast path {fast * 1e3:.3f}, "
              f"wfdb.rdrecord {slow * 1e3:.3f} ({slow / fast:.1f}x)")
    assert fast * 2 < slow
