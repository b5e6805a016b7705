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
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal

__all__ = ["rational_factors", "resampled_length", "resample"]

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
    ratio = _as_fraction(float(fs_out)) / _as_fraction(float(fs_in))
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


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample ``x`` (shape (..., n_times), float) from ``fs_in`` to ``fs_out`` along the last axis.

    Returns float64, shape (..., ceil(n_times * fs_out / fs_in)). Equal rates return a copy.
    """
    x = np.asarray(x, dtype=np.float64)
    up, down = rational_factors(fs_in, fs_out)
    if up == down == 1:
        return x.copy()
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
