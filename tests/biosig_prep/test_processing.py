"""process_recording end to end on real records: equal to the plain scipy pipeline, statuses
instead of exceptions, and its speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import signal

from biosig_prep.config import FilterConfig, PrepConfig
from biosig_prep.dsp.resample import short_fir
from biosig_prep.processing import process_recording
from biosig_prep.readers import discover, read_source
from biosig_prep.readers.wfdb_reader import read_wfdb
from biosig_prep.recording import Recording


@pytest.fixture(scope="module")
def cinc(shared_data):
    return shared_data / "ecg" / "cinc2021"


def _reference(x: np.ndarray, fs: float, rate: int, notch: float, *,
               short: bool = True) -> np.ndarray:
    """The pipeline written out with scipy alone: Butterworth band-pass and iirnotch cascaded in
    one zero-phase pass, then resample_poly with the exact factors and (``short``) the short
    anti-aliasing filter for a signal band-limited to 40 Hz, else scipy's default one."""
    sos = signal.butter(4, [0.5, 40.0], btype="bandpass", fs=fs, output="sos")
    b, a = signal.iirnotch(notch, 30.0, fs=fs)
    y = signal.sosfiltfilt(np.vstack([sos, signal.tf2sos(b, a)]), x, axis=-1, padtype="even",
                           padlen=min(int(2 * fs), x.shape[-1] - 1))  # 2 s even (issue 10)
    up, down = {100: (1, 5), 200: (2, 5), 500: (1, 1), 1000: (2, 1)}[rate]
    if up == down:
        return y
    h = short_fir(fs, rate, 40.0) if short else None
    if h is None:
        return signal.resample_poly(y, up, down, axis=-1)
    return signal.resample_poly(y, up, down, axis=-1, window=h)


@pytest.mark.real_data
@pytest.mark.parametrize("name, notch", [("E07500", 60.0), ("HR06000", 50.0), ("JS20001", 50.0)])
def test_equals_the_plain_scipy_pipeline(cinc, name, notch):
    rec = read_wfdb(cinc / f"{name}.hea")
    out = process_recording(rec, PrepConfig())
    assert out.ok, out.status
    assert out.metadata["notch_hz"] == notch  # Georgia: 60 Hz mains
    assert (out.fs_original, out.n_samples, out.source) == (500.0, 5000, rec.source)
    assert out.metadata["age"] == rec.metadata["age"]
    for rate in (100, 200, 500, 1000):
        s = out.streams[f"ecg@{rate}"]
        assert (s.modality, s.fs, s.units) == ("ecg", rate, "mV")
        assert s.channels == list(PrepConfig().leads)
        ref = _reference(rec.signals, 500.0, rate, notch)
        for i, start in enumerate(s.start):
            # a padded tail window (tail policy pad): the valid patches, then zeros
            valid = int(s.patch_mask[i].sum()) * 200
            expected = np.zeros((12, 2000))
            expected[:, :valid] = ref[:, start:start + valid]
            np.testing.assert_allclose(s.windows[i], expected.reshape(12, 10, 200), rtol=1e-5,
                                       atol=1e-6)
        # the short filter and scipy's default one differ by their zero-padding transients
        # at the record's ends; 1 s in from either end they agree to 2e-3 of the amplitude
        default = _reference(rec.signals, 500.0, rate, notch, short=False)
        inner = slice(rate, -rate)
        assert np.abs(ref - default)[:, inner].max() < 2e-3 * np.abs(default).max()
    ours = out.streams["ecg@500"].windows[:2].reshape(2, 12, 2000)
    assert np.abs(ours).max() < 10.0 and ours.std() > 0.01
    # filtering band-pass and notch one after the other (filtfilt twice) differs only through
    # the edge transients: in the middle seconds (3-7 s) the two agree
    sos = signal.butter(4, [0.5, 40.0], btype="bandpass", fs=500.0, output="sos")
    b, a = signal.iirnotch(notch, 30.0, fs=500.0)
    twice = signal.filtfilt(b, a, signal.sosfiltfilt(sos, rec.signals, axis=-1), axis=-1)
    s1000 = out.streams["ecg@1000"]  # 2 s windows: window 2 covers 4-6 s
    mid = twice[:, 2000:3000]
    np.testing.assert_allclose(s1000.windows[2].reshape(12, 2000)[:, ::2], mid, atol=3e-3)


@pytest.mark.real_data
def test_notch_settings(cinc):
    rec = read_wfdb(cinc / "E07500.hea")
    off = process_recording(rec, PrepConfig(ecg=FilterConfig(notch="off")))
    fifty = process_recording(rec, PrepConfig(ecg=FilterConfig(notch=50)))
    assert off.metadata["notch_hz"] is None and fifty.metadata["notch_hz"] == 50.0
    assert not np.allclose(off.streams["ecg@500"].windows, fifty.streams["ecg@500"].windows)


@pytest.mark.real_data
def test_rate_that_cannot_carry_the_band_skips_the_record(cinc):
    rec = read_wfdb(cinc / "E07500.hea")
    out = process_recording(rec, PrepConfig(rates=[50, 500]))
    assert out.status == ("filter: ecg h_freq (40.0) must be less than the Nyquist frequency "
                          "25.0 (output rate 50 Hz)")
    assert out.streams == {}
    # a source rate that cannot carry it either
    slow = Recording(record_id="x", source="wfdb", path="-", modality="ecg", fs=64.0,
                     signals=np.random.default_rng(0).standard_normal((1, 6400)),
                     channels=["II"], units=["mV"])
    out = process_recording(slow, PrepConfig(rates=[200]))
    assert out.status == ("filter: ecg h_freq (40.0) must be less than the Nyquist frequency "
                          "32.0 (source rate 64 Hz)")


def test_too_short_record_is_a_status():
    rec = Recording(record_id="JS1", source="chapman-ningbo", path="-", modality="ecg", fs=500.0,
                    signals=np.sin(np.linspace(0, 20, 900))[None, :] * np.ones((12, 1)),
                    channels=list(PrepConfig().leads), units=["mV"] * 12)
    out = process_recording(rec, PrepConfig(tail={"policy": "drop"}))
    assert out.status == ("too short: 1.8 s is less than one window at every rate "
                          "(shortest 2 s at 1000 Hz)")
    # tail policy pad (default): 1.8 s is 9 patches at 1000 Hz, enough; 0.9 s is not
    assert process_recording(rec, PrepConfig()).ok
    rec.signals = rec.signals[:, :450]
    assert process_recording(rec, PrepConfig()).status == (
        "too short: 0.9 s gives no window at any rate (shortest 1 s at 1000 Hz: 5 of 10 "
        "patches, tail policy pad)")
    assert out.streams == {}


def test_unexpected_errors_become_a_status():
    rec = Recording(record_id="x", source="wfdb", path="-", modality="ecg", fs=500.0,
                    signals=np.ones((1, 5000)), channels=["II"], units=["mV"])
    rec.signals = "not an array"  # type: ignore[assignment]
    out = process_recording(rec, PrepConfig())
    assert out.status.startswith("error: ") and out.streams == {}


def test_eeg_keeps_channel_order_and_units():
    rng = np.random.default_rng(0)
    names = ["Fp1", "Cz", "O2"]
    rec = Recording(record_id="s/eeg", source="edf", path="-", modality="eeg", fs=256.0,
                    signals=20.0 * rng.standard_normal((3, 256 * 25)), channels=names,
                    units=["µV"] * 3)
    out = process_recording(rec, PrepConfig(rates=[200, 500],
                                            eeg=FilterConfig(l_freq=0.3, h_freq=45.0)))
    assert out.ok, out.status
    # 25 s: at 200 Hz two windows and a tail of 5 s (5 patches, kept by the pad policy)
    assert {k: len(v) for k, v in out.streams.items()} == {"eeg@200": 3, "eeg@500": 6}
    s = out.streams["eeg@200"]
    assert s.channels == names and s.units == "µV" and s.channel_mask.all()


@pytest.mark.real_data
def test_read_and_process_speed(shared_data, capsys):
    srcs = discover([shared_data / "ecg" / "cinc2021"])
    cfg = PrepConfig()
    for src in srcs[:3]:  # warm the filter/FIR caches
        process_recording(read_source(src)[0], cfg)
    best_read, best_total = 1e9, 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        recs = [read_source(src)[0] for src in srcs]
        t1 = time.perf_counter()
        outs = [process_recording(r, cfg) for r in recs]
        t2 = time.perf_counter()
        best_read = min(best_read, (t1 - t0) / len(srcs))
        best_total = min(best_total, (t2 - t0) / len(srcs))
    assert all(o.ok for o in outs)
    with capsys.disabled():
        print(f"\n10 s 12-lead 500 Hz record to 4 rates, ms/record: read {best_read * 1e3:.2f}, "
              f"read + process {best_total * 1e3:.2f}")
    assert best_total < 0.25  # generous: a few ms on an idle machine
