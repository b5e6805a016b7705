"""Polyphase resampling: exact rational factors, and a sine keeps amplitude and phase."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from biosig_prep.dsp.resample import rational_factors, resample, resampled_length, short_fir

SOURCE_RATES = [257, 500, 1000]
TARGET_RATES = [100, 200, 500, 1000]


@pytest.mark.parametrize("fs_in, fs_out, expected", [
    (257, 200, (200, 257)), (257, 100, (100, 257)), (257, 1000, (1000, 257)),
    (500, 100, (1, 5)), (500, 200, (2, 5)), (500, 1000, (2, 1)), (1000, 500, (1, 2)),
    (128, 200, (25, 16)), (256, 200, (25, 32)), (500, 500, (1, 1)), (250.0, 200, (4, 5)),
])
def test_rational_factors_are_exact(fs_in, fs_out, expected):
    assert rational_factors(fs_in, fs_out) == expected


def test_rates_without_a_rational_form_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        rational_factors(0, 100)
    with pytest.raises(ValueError, match="no exact rational form"):
        rational_factors(np.pi, 100)


def _fit(y: np.ndarray, freq: float, fs: float) -> tuple[float, float]:
    """Amplitude and phase of the best-fitting sine at ``freq`` (least squares)."""
    t = np.arange(len(y)) / fs
    basis = np.column_stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    (a, b), *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.hypot(a, b)), float(np.arctan2(b, a))


@pytest.mark.parametrize("fs_in", SOURCE_RATES)
@pytest.mark.parametrize("fs_out", TARGET_RATES)
@pytest.mark.parametrize("freq", [7.3, 31.0])
@pytest.mark.parametrize("h_freq", [None, 40.0])
def test_sine_keeps_amplitude_and_phase(fs_in, fs_out, freq, h_freq):
    amplitude, phase, seconds = 1.7, 0.4, 12.0
    t = np.arange(int(seconds * fs_in)) / fs_in
    x = amplitude * np.sin(2 * np.pi * freq * t + phase)
    y = resample(np.stack([x, -x]), fs_in, fs_out, h_freq=h_freq)  # (C, T), last axis
    assert y.dtype == np.float64
    assert y.shape == (2, resampled_length(len(x), fs_in, fs_out))
    assert y.shape[1] == int(np.ceil(len(x) * fs_out / fs_in))
    # away from the edges (1 s each side), compare with the analytic sine at the new rate
    edge = int(fs_out)
    mid = y[0, edge:-edge]
    amp_fit, phase_fit = _fit(mid, freq, fs_out)
    expected_phase = np.angle(np.exp(1j * (phase + 2 * np.pi * freq * edge / fs_out)))
    assert abs(amp_fit / amplitude - 1.0) < 0.01, (amp_fit, amplitude)
    assert abs(np.angle(np.exp(1j * (phase_fit - expected_phase)))) < 0.01
    n = np.arange(edge, y.shape[1] - edge)
    analytic = amplitude * np.sin(2 * np.pi * freq * n / fs_out + phase)
    assert np.abs(mid - analytic).max() < 0.01 * amplitude
    np.testing.assert_allclose(y[1], -y[0])


@pytest.mark.parametrize("fs_in, fs_out", [(257, 200), (500, 100), (500, 1000), (128, 200),
                                           (256, 200), (1000, 257), (250, 1000), (100, 300)])
def test_equals_scipy_resample_poly_with_its_defaults(fs_in, fs_out):
    x = np.random.default_rng(0).standard_normal((3, 1234))
    up, down = rational_factors(fs_in, fs_out)
    np.testing.assert_allclose(resample(x, fs_in, fs_out),
                               signal.resample_poly(x, up, down, axis=-1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 15, 40, 41, 500])
def test_integer_upsampling_shortcut_at_any_length(n):
    x = np.random.default_rng(n).standard_normal((2, n))
    for up in (2, 3, 4):
        np.testing.assert_allclose(resample(x, 100, 100 * up),
                                   signal.resample_poly(x, up, 1, axis=-1), rtol=0, atol=1e-12)


def test_same_rate_is_a_copy():
    x = np.ones((2, 10))
    y = resample(x, 500, 500)
    np.testing.assert_array_equal(x, y)
    assert y is not x


def test_float32_input_is_resampled_in_float64():
    x = np.random.default_rng(1).standard_normal((1, 500)).astype(np.float32)
    y = resample(x, 500, 200)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, resample(x.astype(np.float64), 500, 200))


@pytest.mark.parametrize("fs_in, fs_out, n_taps", [(500, 200, 43), (500, 1000, 13),
                                                  (128, 200, 337), (500, 100, None)])
def test_short_fir_lengths(fs_in, fs_out, n_taps):
    h = short_fir(fs_in, fs_out, 40.0)
    assert (None if h is None else len(h)) == n_taps  # None: not shorter than the default
    if h is not None:
        assert abs(h.sum() - 1.0) < 1e-12 and np.allclose(h, h[::-1])


@pytest.mark.parametrize("fs_in, fs_out", [(500, 200), (500, 1000), (128, 200), (257, 200)])
def test_short_filter_matches_the_default_on_a_band_limited_signal(fs_in, fs_out):
    rng = np.random.default_rng(3)
    freqs, phases = rng.uniform(0.5, 40.0, 25), rng.uniform(0.0, 6.3, 25)

    def tones(n: int, fs: float) -> np.ndarray:
        t = np.arange(n) / fs
        return sum(np.sin(2 * np.pi * f * t + p) for f, p in zip(freqs, phases, strict=True))

    x = tones(10 * fs_in, fs_in)
    fast = resample(np.stack([x, 0.5 * x]), fs_in, fs_out, h_freq=40.0)
    full = resample(np.stack([x, 0.5 * x]), fs_in, fs_out)
    assert fast.shape == full.shape
    exact = tones(fast.shape[1], fs_out)
    scale = np.abs(exact).max()
    edge = int(fs_out)  # both filters see zeros past the ends: compare 1 s in from the edges
    inner = slice(edge, -edge)
    # the default filter droops ~1e-3 near 40 Hz (128 -> 200 Hz: cut-off 64 Hz); the short one
    # is flat to ~1e-4 up to h_freq
    assert np.abs(fast[0, inner] - exact[inner]).max() < 3e-4 * scale
    assert np.abs(fast - full)[:, inner].max() < 2e-3 * scale
