"""EDF/FIF through MNE: the real eegmat file (19 EEG + A2-A1 + a real ECG channel)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from biosig_prep.config import PrepConfig
from biosig_prep.processing import process_recording
from biosig_prep.readers import ReadError, SourceFile, discover, read_source
from biosig_prep.readers.edf_reader import is_ecg_channel, read_edf

TEN_TWENTY = ["Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5", "T6", "P3",
              "P4", "O1", "O2", "Fz", "Cz", "Pz"]


@pytest.fixture(scope="module")
def edf_path(shared_data):
    return shared_data / "eeg" / "eegmat" / "Subject00_2.edf"


@pytest.fixture(scope="module")
def recordings(edf_path):
    return read_edf(edf_path, "Subject00_2")


@pytest.mark.real_data
def test_channels_rates_and_lengths(recordings):
    eeg, ecg = recordings
    assert (eeg.modality, ecg.modality) == ("eeg", "ecg")
    assert (eeg.record_id, ecg.record_id) == ("Subject00_2/eeg", "Subject00_2/ecg")
    assert eeg.signals.shape == (20, 31000) and ecg.signals.shape == (1, 31000)
    assert eeg.fs == ecg.fs == 500.0
    assert eeg.n_times / eeg.fs == 62.0
    assert eeg.channels == [f"EEG {n}" for n in TEN_TWENTY] + ["EEG A2-A1"]
    assert ecg.channels == ["ECG ECG"]
    assert eeg.units == ["µV"] * 20 and ecg.units == ["mV"]
    assert eeg.source == "edf" and eeg.metadata.get("sex") == "Female"


@pytest.mark.real_data
def test_eeg_in_plausible_microvolts(recordings):
    eeg = recordings[0]
    peak = np.abs(eeg.signals).max(axis=1)
    assert np.all(peak > 5.0) and np.all(peak < 1000.0), peak  # µV, not V or mV
    std = eeg.signals[:19].std(axis=1)
    assert np.all(std > 1.0) and np.all(std < 200.0), std


@pytest.mark.real_data
def test_ecg_in_millivolts_with_a_plausible_heart_rate(recordings):
    ecg = recordings[1]
    x = ecg.signals[0]
    peak = np.abs(x).max()
    assert 0.2 < peak < 5.0, peak  # mV
    sos = signal.butter(4, [5.0, 30.0], btype="bandpass", fs=ecg.fs, output="sos")
    y = signal.sosfiltfilt(sos, x)
    y = y if np.abs(y.max()) >= np.abs(y.min()) else -y  # R peaks upward
    peaks, _ = signal.find_peaks(y, height=0.5 * np.percentile(y, 99.5),
                                 distance=int(0.3 * ecg.fs))
    bpm = 60.0 * len(peaks) / (len(x) / ecg.fs)
    assert 45.0 < bpm < 140.0, bpm
    rr = np.diff(peaks) / ecg.fs
    assert np.median(np.abs(rr - np.median(rr))) < 0.1  # regular beats, not noise


@pytest.mark.real_data
def test_discover_and_read_source(edf_path):
    srcs = discover([edf_path.parent])
    assert srcs == [SourceFile(str(edf_path), "edf", "Subject00_2")]
    recs = read_source(srcs[0])
    assert [r.record_id for r in recs] == ["Subject00_2/eeg", "Subject00_2/ecg"]


@pytest.mark.real_data
def test_processing_the_real_file(recordings):
    eeg, ecg = recordings
    # the EEG band (0.3-75 Hz) does not fit under the Nyquist frequency of 100 Hz output:
    # the record is skipped with the reason, not crashed or silently aliased
    out = process_recording(eeg, PrepConfig())
    assert out.status == ("filter: eeg h_freq (75.0) must be less than the Nyquist frequency "
                          "50.0 (output rate 100 Hz)")
    assert out.streams == {}
    cfg = PrepConfig(rates=[200, 500, 1000])
    out = process_recording(eeg, cfg)
    assert out.ok, out.status
    # 62 s under the pad tail policy: at 500 Hz the last 2 s fill 5 of a 4 s window's patches
    # (kept, padded); at 200 Hz they fill 2 of 10 (dropped); 1000 Hz ends on a window edge
    assert {k: v.windows.shape for k, v in out.streams.items()} == {
        "eeg@200": (6, 20, 10, 200), "eeg@500": (16, 20, 10, 200), "eeg@1000": (31, 20, 10, 200)}
    assert out.streams["eeg@500"].patch_mask.sum(axis=1).tolist() == [10] * 15 + [5]
    assert not out.streams["eeg@500"].windows[-1, :, 5:].any()
    assert out.streams["eeg@1000"].patch_mask.all()
    s = out.streams["eeg@200"]
    assert s.units == "µV" and s.channels == eeg.channels and s.channel_mask.all()
    # a single ECG lead with no lead name cannot be placed in the 12-lead layout: skipped
    # with the reason (issue 10 item 1: one odd record never decides a stream's channels)
    out = process_recording(ecg, PrepConfig())
    assert out.status.startswith("leads: 1 lead(s) ['ECG ECG'] match none of I, II")
    assert out.streams == {}


def test_fif_with_typed_channels_and_line_frequency(tmp_path):
    mne = pytest.importorskip("mne")
    fs = 250.0
    t = np.arange(int(30 * fs)) / fs
    data = np.stack([20e-6 * np.sin(2 * np.pi * 10 * t), 15e-6 * np.sin(2 * np.pi * 6 * t),
                     1e-3 * np.sin(2 * np.pi * 1.2 * t), np.zeros_like(t)])
    info = mne.create_info(["Cz", "Pz", "heart", "STI"], fs, ["eeg", "eeg", "ecg", "stim"])
    info["line_freq"] = 60.0
    raw = mne.io.RawArray(data, info, verbose=False)
    path = tmp_path / "sub01_raw.fif"
    raw.save(path, verbose=False)
    eeg, ecg = read_edf(path)
    assert eeg.channels == ["Cz", "Pz"] and ecg.channels == ["heart"]  # stim dropped
    np.testing.assert_allclose(eeg.signals[0], data[0] * 1e6, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ecg.signals[0], data[2] * 1e3, rtol=1e-6, atol=1e-9)
    assert eeg.metadata["line_freq"] == 60.0
    out = process_recording(eeg, PrepConfig(rates=[200]))
    assert out.ok and out.metadata["notch_hz"] == 60.0  # "auto" follows the file


def test_is_ecg_channel():
    assert is_ecg_channel("ECG ECG", "eeg") and is_ecg_channel("EKG1", "misc")
    assert is_ecg_channel("x", "ecg") and not is_ecg_channel("EEG Fp1", "eeg")


def test_bad_files(tmp_path):
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0       garbage" * 10)
    with pytest.raises(ReadError, match="broken.edf: mne could not read the file"):
        read_edf(bad)
    with pytest.raises(ReadError, match="unknown format '.txt'"):
        read_edf(tmp_path / "notes.txt")
    with pytest.raises(ReadError, match="file does not exist"):
        read_edf(tmp_path / "gone.edf")
