"""Per-record QC: non-finite, flat, saturated, implausible amplitude; a reason, never a crash."""

from __future__ import annotations

import numpy as np
import pytest

from biosig_prep.config import PrepConfig, QCConfig
from biosig_prep.dsp.qc import OK, check_amplitude, check_finite, check_raw, flat_leads
from biosig_prep.processing import process_recording
from biosig_prep.recording import Recording

LEADS = list(PrepConfig().leads)


def _ecg(signals: np.ndarray, record_id: str = "HR00001") -> Recording:
    return Recording(record_id=record_id, source="ptb-xl", path="-", modality="ecg", fs=500.0,
                     signals=signals, channels=LEADS[: signals.shape[0]],
                     units=["mV"] * signals.shape[0])


@pytest.fixture
def clean() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(5000) / 500.0
    return np.stack([np.sin(2 * np.pi * 1.2 * t + k) + 0.05 * rng.standard_normal(5000)
                     for k in range(12)])


def test_clean_record_passes(clean):
    cfg = QCConfig()
    assert check_raw(clean, LEADS, cfg) == OK
    assert check_amplitude(clean, "ecg", cfg) == OK
    assert process_recording(_ecg(clean), PrepConfig()).status == OK


def test_non_finite(clean):
    clean[3, 100:110] = np.nan
    clean[5, 7] = np.inf
    assert check_finite(clean, LEADS) == "qc: non-finite values in lead aVR (10 samples)"
    out = process_recording(_ecg(clean), PrepConfig())
    assert out.status == "qc: non-finite values in lead aVR (10 samples)"
    assert out.streams == {}


def test_flat_lead_is_masked_by_default(clean):
    clean[8] = 0.0  # V3 all zeros, as some real Chapman-Ningbo records have
    assert flat_leads(clean, QCConfig()).tolist() == [k == 8 for k in range(12)]
    assert check_raw(clean, LEADS, QCConfig()) == "qc: flat lead V3"
    out = process_recording(_ecg(clean), PrepConfig())
    assert out.ok and out.metadata["flat_leads"] == ["V3"]
    s = out.streams["ecg@500"]
    assert s.channel_mask[:, 8].sum() == 0 and s.channel_mask[:, :8].all()
    assert not s.windows[:, 8].any()


def test_flat_lead_skips_the_record_when_asked(clean):
    clean[8] = 1.5  # constant offset: flat too
    cfg = PrepConfig.model_validate({"qc": {"flat_leads": "skip"}})
    out = process_recording(_ecg(clean), cfg)
    assert out.status == "qc: flat lead V3" and out.streams == {}


def test_all_leads_flat(clean):
    out = process_recording(_ecg(np.zeros_like(clean)), PrepConfig())
    assert out.status.startswith("qc: every lead is flat")


def test_saturation(clean):
    clean[1] = np.clip(clean[1] * 3.0, -1.0, 1.0)  # clipped at +-1 mV rails
    status = check_raw(clean, LEADS, QCConfig(), 500.0)
    assert status.startswith("qc: saturated lead II (") and "min/max" in status
    # issue 10 item 7: a clipped lead is masked like a flat lead; the record still converts
    out = process_recording(_ecg(clean), PrepConfig())
    assert out.ok and out.metadata["clipped_leads"] == ["II"]
    assert not out.streams["ecg@500"].channel_mask[:, 1].any()


def test_implausible_amplitude_too_large(clean):
    clean[6] *= 100.0  # 100 mV: not an ECG
    status = process_recording(_ecg(clean), PrepConfig()).status
    assert status.startswith("qc: implausible amplitude (max ") and status.endswith(" mV)")
    assert float(status.split("max ")[1].split(" ")[0]) > 20.0


def test_implausible_amplitude_too_small(clean):
    # the 2000000/mV gain of some PTB records: every value ~1000x too small
    status = process_recording(_ecg(clean / 2000.0), PrepConfig()).status
    assert status.startswith("qc: implausible amplitude (max ")
    assert float(status.split("max ")[1].split(" ")[0]) < 0.02


def test_eeg_bounds_in_microvolts():
    rng = np.random.default_rng(1)
    eeg = 20.0 * rng.standard_normal((4, 5000))
    assert check_amplitude(eeg, "eeg", QCConfig()) == OK
    assert check_amplitude(eeg * 1e3, "eeg", QCConfig()).endswith(" µV)")
    assert check_amplitude(eeg * 1e-6, "eeg", QCConfig()).startswith("qc: implausible")  # in V
    with pytest.raises(ValueError, match="modality"):
        check_amplitude(eeg, "emg", QCConfig())


def test_garbage_never_crashes():
    rec = _ecg(np.ones((2, 10)))
    rec.signals = np.ones((3, 10))  # shape disagrees with the channel list
    out = process_recording(rec, PrepConfig())
    assert out.status.startswith("read: ") and out.streams == {}
    rec = _ecg(np.ones((1, 0)))
    assert process_recording(rec, PrepConfig()).status.startswith("qc: ")
    rec = _ecg(np.ones((1, 100)))
    rec.modality = "emg"
    assert process_recording(rec, PrepConfig()).status.startswith("unsupported modality")
