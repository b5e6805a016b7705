"""Issue 10 item 7: clipping is a run of samples at the extreme (or at the header's ADC range),
a clipped lead is masked like a flat lead, and a record fails only when no lead is usable.
Real Challenge records; a clean tone must pass."""

from __future__ import annotations

import numpy as np
import pytest

from biosig_prep.config import PrepConfig, QCConfig
from biosig_prep.dsp.qc import OK, check_saturation
from biosig_prep.processing import process_recording
from biosig_prep.readers.wfdb_reader import read_wfdb
from biosig_prep.recording import Recording


def test_clean_50hz_tone_at_500hz_passes():
    fs = 500.0
    t = np.arange(5000) / fs
    tone = 1.0 * np.sin(2 * np.pi * 50.0 * t)  # 1 mV; 40 % of samples at its min/max
    x = np.round(np.tile(tone, (12, 1)) * 1000) / 1000  # on a 1 µV grid, as a file holds it
    assert np.mean((x[0] == x[0].max()) | (x[0] == x[0].min())) > 0.35
    assert check_saturation(x, list(PrepConfig().leads), QCConfig(), fs) == OK
    rec = Recording("T0001", "test", "-", "ecg", fs, x, list(PrepConfig().leads), ["mV"] * 12)
    out = process_recording(rec, PrepConfig(ecg={"notch": "off"}))
    assert out.ok, out.status
    assert "clipped_leads" not in out.metadata


@pytest.mark.real_data
def test_real_records_have_no_clipped_lead(shared_data):
    for hea in sorted((shared_data / "ecg").rglob("*.hea")):
        out = process_recording(read_wfdb(hea), PrepConfig(rates=[500]))
        assert out.ok, (hea.name, out.status)
        assert "clipped_leads" not in out.metadata, (hea.name, out.metadata["clipped_leads"])


@pytest.mark.real_data
def test_a_clipped_lead_is_masked_and_the_record_kept(shared_data):
    rec = read_wfdb(shared_data / "ecg" / "cinc2021" / "E07500.hea")
    ii = rec.signals[1]
    cap = np.percentile(ii, 97)  # the amplifier clips the top 3 % of lead II
    rec.signals[1] = np.minimum(ii, cap)
    out = process_recording(rec, PrepConfig(rates=[500]))
    assert out.ok, out.status
    assert out.metadata["clipped_leads"] == ["II"]
    mask = out.streams["ecg@500"].channel_mask
    assert not mask[:, 1].any() and mask[:, [0, *range(2, 12)]].all()
    assert not out.streams["ecg@500"].windows[:, 1].any()
    # with flat_leads="skip" any clipped lead fails the record, naming it
    skip = process_recording(rec, PrepConfig(rates=[500], qc={"flat_leads": "skip"}))
    assert skip.status.startswith("qc: saturated lead II (a run of ")


@pytest.mark.real_data
def test_every_lead_clipped_fails(shared_data):
    rec = read_wfdb(shared_data / "ecg" / "cinc2021" / "JS20001.hea")
    caps = np.percentile(rec.signals, 70, axis=-1, keepdims=True)  # hard clipping
    rec.signals = np.minimum(rec.signals, caps)
    out = process_recording(rec, PrepConfig(rates=[500]))
    assert out.status.startswith("qc: no usable lead: every lead is flat or clipped")
    assert out.streams == {}


@pytest.mark.real_data
def test_two_samples_at_the_adc_range_is_clipping(shared_data):
    rec = read_wfdb(shared_data / "ecg" / "cinc2021" / "HR06000.hea")
    assert rec.adc_range is not None and rec.adc_range[0].tolist() == [-32.768, 32.767]
    rec.signals[4, 2000:2002] = rec.adc_range[4, 1]  # aVL at the ADC's top code, 2 samples
    out = process_recording(rec, PrepConfig(rates=[500]))
    assert out.ok and out.metadata["clipped_leads"] == ["aVL"]
    rec.signals[4, 2001] = 0.0  # one sample at the rail: a spike, not clipping
    assert "clipped_leads" not in process_recording(rec, PrepConfig(rates=[500])).metadata
