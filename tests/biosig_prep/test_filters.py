"""Filter responses measured on signals through the actual filters, and the Nyquist checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from biosig_prep.config import FilterConfig
from biosig_prep.dsp.filters import (
    apply_filter,
    check_band,
    design_bandpass,
    design_filter,
    design_notch,
    filter_signals,
    resolve_notch,
)
from biosig_prep.sources import CHALLENGE_SOURCES, challenge_source, mains_frequency

FS = 500.0


def _sine(freq: float, fs: float = FS, seconds: float = 20.0, phase: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return np.sin(2 * np.pi * freq * t + phase)


def _gain(cfg: FilterConfig, freq: float, *, fs: float = FS, notch: float | None = None) -> float:
    """Amplitude ratio out/in of a sine at ``freq``, measured on the middle half (no edges)."""
    x = _sine(freq, fs)
    y = apply_filter(design_filter(cfg, fs, notch), x[None, :], fs)[0]
    mid = slice(len(x) // 4, 3 * len(x) // 4)
    return float(np.sqrt(np.mean(y[mid] ** 2) / np.mean(x[mid] ** 2)))


def _db(gain: float) -> float:
    return -20 * np.log10(gain)


def test_ecg_passband_gain_at_10_hz_within_1_percent():
    gain = _gain(FilterConfig(), 10.0, notch=50.0)
    assert abs(gain - 1.0) < 0.01, gain


def test_eeg_passband_gain_at_10_hz_within_1_percent():
    gain = _gain(FilterConfig(l_freq=0.3, h_freq=75.0), 10.0, notch=50.0)
    assert abs(gain - 1.0) < 0.01, gain


@pytest.mark.parametrize("notch", [50.0, 60.0])
def test_notch_rejects_at_least_30_db(notch):
    # a wide band (0.3-150 Hz) passes 50 and 60 Hz, so this measures the notch alone
    cfg = FilterConfig(l_freq=0.3, h_freq=150.0)
    assert _gain(cfg, notch, notch=None) > 0.99  # without the notch the mains passes
    assert _db(_gain(cfg, notch, notch=notch)) >= 30.0
    # and it is narrow: 10 Hz away nothing happens
    assert abs(_gain(cfg, notch - 10.0, notch=notch) - 1.0) < 0.01


def test_ecg_filter_rejects_mains_at_least_30_db():
    assert _db(_gain(FilterConfig(), 50.0, notch=50.0)) >= 30.0
    assert _db(_gain(FilterConfig(), 60.0, notch=60.0)) >= 30.0


def test_at_least_20_db_at_twice_the_upper_cutoff():
    cfg = FilterConfig(l_freq=0.5, h_freq=40.0, notch="off")
    assert _db(_gain(cfg, 80.0)) >= 20.0
    eeg = FilterConfig(l_freq=0.3, h_freq=45.0, notch="off")
    assert _db(_gain(eeg, 90.0, fs=250.0)) >= 20.0


def test_high_pass_removes_baseline_wander_and_offset():
    x = 5.0 + 2.0 * _sine(0.05)  # offset + 0.05 Hz drift
    y = apply_filter(design_filter(FilterConfig(), FS, None), x[None, :], FS)[0]
    mid = slice(len(x) // 4, 3 * len(x) // 4)
    assert np.abs(y[mid]).max() < 0.05


def test_zero_phase():
    x = _sine(10.0)
    y = apply_filter(design_filter(FilterConfig(), FS, 50.0), x[None, :], FS)[0]
    mid = slice(len(x) // 4, 3 * len(x) // 4)
    lag = np.argmax(signal.correlate(y[mid], x[mid], mode="full")) - (len(x[mid]) - 1)
    assert lag == 0
    assert np.abs(y[mid] - x[mid]).max() < 0.01


def test_apply_filter_equals_scipy_sosfiltfilt_with_2s_even_padding():
    # issue 10 item 6 changes the edge handling: even padding of 2 s (was scipy's default odd
    # padding of 3 x the filter order)
    x = np.random.default_rng(0).standard_normal((3, 2000))
    sos = design_filter(FilterConfig(), FS, 50.0)
    assert sos.shape == (5, 6)  # 4 band-pass sections + 1 notch section
    np.testing.assert_array_equal(
        apply_filter(sos, x, FS),
        signal.sosfiltfilt(sos, x, axis=-1, padtype="even", padlen=1000))
    # shorter than the 2 s padding: padded as far as possible
    short = x[:, :10]
    np.testing.assert_allclose(apply_filter(sos, short, FS),
                               signal.sosfiltfilt(sos, short, axis=-1, padtype="even",
                                                  padlen=9))
    # works on 1-D and N-D along the last axis
    np.testing.assert_allclose(apply_filter(sos, x[0], FS), apply_filter(sos, x, FS)[0])


def test_filter_along_last_axis_of_many_channels_matches_one_by_one():
    x = np.random.default_rng(1).standard_normal((12, 1000))
    sos = design_filter(FilterConfig(), FS, 50.0)
    together = apply_filter(sos, x, FS)
    for i in range(12):
        np.testing.assert_allclose(together[i], apply_filter(sos, x[i], FS), atol=1e-12)


def test_no_band_and_notch_off_is_identity():
    x = np.random.default_rng(2).standard_normal((2, 100))
    y = apply_filter(design_filter(FilterConfig(l_freq=None, h_freq=None, notch="off"), FS,
                                   None), x, FS)
    np.testing.assert_array_equal(x, y)
    assert y is not x


def test_nyquist_error_message():
    with pytest.raises(ValueError, match=r"^h_freq \(70.0\) must be less than the Nyquist "
                                         r"frequency 64.0$"):
        design_bandpass(0.5, 70.0, 128.0)
    with pytest.raises(ValueError, match="Nyquist"):
        check_band(0.5, 75.0, 100.0)
    with pytest.raises(ValueError, match=r"h_freq \(75.0\) must be less than the Nyquist "
                                         r"frequency 50.0 \(output rate 100 Hz\)"):
        check_band(0.3, 75.0, 100.0, what=" (output rate 100 Hz)")
    with pytest.raises(ValueError, match=r"notch frequency \(60.0\) must be less than the "
                                         r"Nyquist frequency 50.0"):
        design_notch(60.0, 100.0)
    with pytest.raises(ValueError, match=r"l_freq \(50.0\) must be less than h_freq"):
        check_band(50.0, 40.0, 500.0)


def test_designs_are_cached_and_read_only():
    a = design_bandpass(0.5, 40.0, 500.0, 4)
    assert a is design_bandpass(0.5, 40, 500, 4)
    with pytest.raises(ValueError):
        a[0, 0] = 1.0


def test_prefix_table_in_one_place():
    expected = {"A": 50, "Q": 50, "I": 50, "S": 50, "HR": 50, "JS": 50, "E": 60}
    assert {k: v.mains_hz for k, v in CHALLENGE_SOURCES.items()} == expected
    assert challenge_source("HR06000").name == "ptb-xl"
    assert challenge_source("S0001").name == "ptb"
    assert challenge_source("E07500").name == "georgia"
    assert challenge_source("JS20000").name == "chapman-ningbo"
    assert challenge_source("I0001").name == "incart"
    assert challenge_source("training/georgia/g1/E00001").name == "georgia"
    assert challenge_source("Subject00_2") is None
    assert mains_frequency("dreamer") == 50.0


@pytest.mark.parametrize("record, hz", [
    ("E07500", 60.0), ("A0001", 50.0), ("Q0001", 50.0), ("I0001", 50.0), ("S0001", 50.0),
    ("HR06000", 50.0), ("JS20000", 50.0), ("X123", 50.0), ("mystery", 50.0),
])
def test_auto_notch_from_source_prefix(record, hz):
    assert resolve_notch("auto", None, record) == hz


def test_resolve_notch_settings():
    assert resolve_notch("off", "georgia") is None
    assert resolve_notch(60, "ptb-xl") == 60.0
    assert resolve_notch("auto", "georgia") == 60.0
    assert resolve_notch("auto", "edf", "Subject00_2/eeg", line_freq=60.0) == 60.0


def test_filter_signals_skips_an_auto_notch_above_nyquist():
    x = np.random.default_rng(3).standard_normal((1, 1000))
    cfg = FilterConfig(l_freq=0.5, h_freq=40.0, notch="auto")
    # Georgia (60 Hz mains) at 100 Hz: the mains cannot be represented, the notch is dropped
    y = filter_signals(x, 100.0, cfg, source="georgia")
    expected = apply_filter(design_bandpass(0.5, 40.0, 100.0, 4), x, 100.0)
    np.testing.assert_allclose(y, expected)
    with pytest.raises(ValueError, match="Nyquist"):
        filter_signals(x, 100.0, FilterConfig(notch=60))
