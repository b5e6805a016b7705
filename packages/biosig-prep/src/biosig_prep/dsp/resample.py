"""Polyphase resampling with exact rational factors.

``fs_out / fs_in`` is reduced to ``up / down`` with :class:`fractions.Fraction` (257 -> 200 Hz is
up 200, down 257; 128 -> 200 Hz is up 25, down 16) and applied with
:func:`scipy.signal.resample_poly` in float64. The anti-aliasing FIR filter is scipy's default
(Kaiser window, beta 5, 10 zero crossings per side), designed once per factor pair and cached:
for 257 -> 1000 Hz that filter has 20,001 taps and takes longer to design than to apply.
The output equals ``resample_poly(x, up, down)`` with its defaults (to ~1e-15 relative).

Integer upsampling (``down == 1``, e.g. 500 -> 1000 Hz) takes a shortcut: scipy's filter then has
its cut-off at ``1 / up``, so it is a Nyquist filter whose phase 0 is (up to ~1e-17 taps) a
single tap, i.e. every ``up``-th output sample is a scaled input sample. Only the other
``up - 1`` phases are filtered, which halves the work for 500 -> 1000 Hz.

A signal already band-limited to ``h_freq`` (the processing resamples band-passed signals) may
pass ``h_freq=``: the anti-aliasing filter is then a much shorter Kaiser-window FIR
(:func:`short_fir`, 80 dB stop band, ~1e-4 pass-band ripple) with its pass band up to
``h_freq`` and its stop band from ``min(fs_in, fs_out) - h_freq``. Content between the two edges
aliases or images only onto frequencies above ``h_freq`` (already out of band), so the band
``[0, h_freq]`` matches the default path to ~1e-4. 500 -> 200 Hz at 40 Hz: 43 taps instead of
101.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal

__all__ = ["rational_factors", "resampled_length", "resample", "short_fir"]

_MAX_DENOMINATOR = 10_000


def _as_fraction(fs: float) -> Fraction:
    if fs <= 0 or not np.isfinite(fs):
        raise ValueError(f"sampling rate must be a positive number, got {fs}")
    frac = Fraction(fs).limit_denominator(_MAX_DENOMINATOR)
    if abs(float(frac) - fs) > 1e-9 * fs:
        raise ValueError(f"sampling rate {fs} has no exact rational form")
    return frac


def rational_factors(fs_in: float, fs_out: float) -> tuple[int, int]:
    """``(up, down)`` in lowest terms with ``fs_out / fs_in == up / down`` exactly.

    >>> rational_factors(257, 200)
    (200, 257)
    >>> rational_factors(500, 100)
    (1, 5)
    """
    return _factors(float(fs_in), float(fs_out))


@lru_cache(maxsize=256)
def _factors(fs_in: float, fs_out: float) -> tuple[int, int]:
    ratio = _as_fraction(fs_out) / _as_fraction(fs_in)  # errors are raised, never cached
    return ratio.numerator, ratio.denominator


def resampled_length(n_times: int, fs_in: float, fs_out: float) -> int:
    """Number of samples :func:`resample` returns: ``ceil(n_times * up / down)``."""
    up, down = rational_factors(fs_in, fs_out)
    return -(-n_times * up // down)


@lru_cache(maxsize=64)
def _fir(up: int, down: int) -> np.ndarray:
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    h.setflags(write=False)
    return h


_STOP_DB = 80.0


@lru_cache(maxsize=64)
def _short_fir(up: int, down: int, fs_in: float, fs_out: float,
               h_freq: float) -> np.ndarray | None:
    stop = min(fs_in, fs_out) - h_freq
    if stop <= h_freq:
        return None
    fs_up = fs_in * up
    numtaps, beta = signal.kaiserord(_STOP_DB, (stop - h_freq) / (fs_up / 2.0))
    numtaps |= 1  # odd: symmetric about a centre tap, so resample_poly removes the delay
    if numtaps >= 20 * max(up, down) + 1:  # not shorter than the default filter
        return None
    h = signal.firwin(numtaps, (h_freq + stop) / 2.0, window=("kaiser", beta), fs=fs_up)
    h.setflags(write=False)
    return h


def short_fir(fs_in: float, fs_out: float, h_freq: float) -> np.ndarray | None:
    """Anti-aliasing FIR for a signal band-limited to ``h_freq`` Hz, at ``fs_in * up`` Hz.

    Kaiser window, 80 dB stop band from ``min(fs_in, fs_out) - h_freq``, pass band to
    ``h_freq``; odd length, unit DC gain, read-only, shape (n_taps,). None when no such filter
    exists or it would not be shorter than the default one (``h_freq`` too close to the
    Nyquist frequency of the lower rate).
    """
    up, down = rational_factors(fs_in, fs_out)
    return _short_fir(up, down, float(fs_in), float(fs_out), float(h_freq))


def resample(x: np.ndarray, fs_in: float, fs_out: float, *,
             h_freq: float | None = None) -> np.ndarray:
    """Resample ``x`` (shape (..., n_times), float) from ``fs_in`` to ``fs_out`` along the last axis.

    h_freq : the upper edge (Hz) of a band ``x`` is already limited to (e.g. by a low-pass
        filter); with it the anti-aliasing filter is the shorter :func:`short_fir` where one
        exists. None: scipy's default filter.

    Returns float64, shape (..., ceil(n_times * fs_out / fs_in)). Equal rates return a copy.
    """
    x = np.asarray(x, dtype=np.float64)
    up, down = rational_factors(fs_in, fs_out)
    if up == down == 1:
        return x.copy()
    if h_freq is not None:
        h = _short_fir(up, down, float(fs_in), float(fs_out), float(h_freq))
        if h is not None:
            return signal.resample_poly(x, up, down, axis=-1, window=h)
    if down == 1 and x.shape[-1] > 0:
        return _upsample(x, up)
    return signal.resample_poly(x, up, down, axis=-1, window=_fir(up, down))


def _upsample(x: np.ndarray, up: int) -> np.ndarray:
    """``resample_poly(x, up, 1)`` by polyphase components.

    With ``H = up * h`` centred at ``c = 10 * up``, output ``y[up * t + r]`` is
    ``sum_i H[r + up * i] * x[t + 10 - i]``: phase ``r`` is an FIR filter of ``x`` read at an
    offset of 10. Phase 0 holds ``H[c]`` and taps at the sinc's zeros (~1e-17): a scaled copy.
    """
    h = _fir(up, 1) * up
    center = 10 * up
    n = x.shape[-1]
    y = np.empty(x.shape[:-1] + (n * up,), dtype=np.float64)
    y[..., 0::up] = x * h[center]
    for r in range(1, up):
        full = signal.upfirdn(h[r::up], x, 1, 1, axis=-1)  # n + len - 1 samples
        y[..., r::up] = full[..., 10:10 + n]
    return y
