"""The handcrafted-feature baseline: a fixed vector per window from the store's own windows.

Features of one window ``x`` (C, P, S) at ``fs`` Hz (leads flattened to ``P * S`` samples;
zero-filled leads, ``channel_mask`` False, and padded patches, ``patch_mask`` False, left out):

- RR intervals (7): R peaks on the first valid of leads II, I, V5 (else any valid lead): the
  lead band-passed 5-15 Hz (Butterworth order 2, zero phase), absolute value, peaks at least
  0.25 s apart (``scipy.signal.find_peaks``) higher than 40 % of the 99th percentile. From
  the intervals between successive peaks: mean heart rate (bpm), SDNN and RMSSD (ms), pNN50,
  coefficient of variation, the share of successive differences above 15 % of the mean RR
  (irregularity), and the number of beats per second. Zero where fewer than three peaks.
- Amplitudes (2 per lead): peak-to-peak and standard deviation in the store's units (0 for a
  missing lead).
- Band powers (5): the share of spectral power in 0.5-4, 4-8, 8-15 and 15-40 Hz, averaged over
  valid leads, and log10 of the total power.

The names come in :data:`FEATURE_NAMES_RR` + per-lead names + :data:`BANDS` order
(:func:`feature_names`).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt

__all__ = ["BANDS", "FEATURE_NAMES_RR", "feature_names", "rr_features", "window_features"]

FEATURE_NAMES_RR = ("hr_bpm", "sdnn_ms", "rmssd_ms", "pnn50", "rr_cv", "rr_irregular",
                    "beats_per_s")
BANDS = ((0.5, 4.0), (4.0, 8.0), (8.0, 15.0), (15.0, 40.0))
_PEAK_LEADS = ("II", "I", "V5")


def feature_names(channels: list[str]) -> list[str]:
    """Names of :func:`window_features`' columns for a stream with ``channels``."""
    amp = [f"{c}_{k}" for c in channels for k in ("ptp", "std")]
    bands = [f"power_{lo:g}_{hi:g}hz" for lo, hi in BANDS] + ["log_power"]
    return [*FEATURE_NAMES_RR, *amp, *bands]


def rr_features(peaks: np.ndarray, fs: float, duration_s: float) -> np.ndarray:
    """The 7 RR features from R-peak sample indices (see the module doc)."""
    out = np.zeros(len(FEATURE_NAMES_RR))
    if len(peaks) < 3 or duration_s <= 0:
        return out
    rr = np.diff(np.asarray(peaks, dtype=np.float64)) / fs
    d = np.diff(rr)
    mean = rr.mean()
    out[:] = (60.0 / mean, 1000 * rr.std(), 1000 * np.sqrt(np.mean(d ** 2)),
              np.mean(np.abs(d) > 0.05), rr.std() / mean, np.mean(np.abs(d) > 0.15 * mean),
              len(peaks) / duration_s)
    return out


def _r_peaks(lead: np.ndarray, fs: float) -> np.ndarray:
    if len(lead) < int(fs) or not np.any(lead):
        return np.zeros(0, dtype=np.int64)
    high = min(15.0, 0.45 * fs)
    sos = butter(2, [5.0, high], btype="bandpass", fs=fs, output="sos")
    env = np.abs(sosfiltfilt(sos, lead))
    ref = np.percentile(env, 99)
    if ref <= 0:
        return np.zeros(0, dtype=np.int64)
    peaks, _ = find_peaks(env, height=0.4 * ref, distance=max(1, int(0.25 * fs)))
    return peaks


def window_features(windows: np.ndarray, channel_mask: np.ndarray, patch_mask: np.ndarray,
                    channels: list[str], fs: float) -> np.ndarray:
    """Feature matrix (N, F) of windows (N, C, P, S); see the module doc."""
    windows = np.asarray(windows, dtype=np.float64)
    n, c, p, s = windows.shape
    out = np.zeros((n, len(feature_names(channels))))
    order = [channels.index(name) for name in _PEAK_LEADS if name in channels]
    for i in range(n):
        valid_patches = np.asarray(patch_mask[i], dtype=bool)
        x = windows[i][:, valid_patches, :].reshape(c, -1)
        valid = np.asarray(channel_mask[i], dtype=bool)
        if x.shape[1] == 0 or not valid.any():
            continue
        lead = next((j for j in order if valid[j]), int(np.flatnonzero(valid)[0]))
        out[i, :len(FEATURE_NAMES_RR)] = rr_features(_r_peaks(x[lead], fs), fs, x.shape[1] / fs)
        col = len(FEATURE_NAMES_RR)
        amp = np.stack([np.ptp(x, axis=1), x.std(axis=1)], axis=1) * valid[:, None]
        out[i, col:col + 2 * c] = amp.ravel()
        col += 2 * c
        spec = np.abs(np.fft.rfft(x[valid], axis=1)) ** 2
        freqs = np.fft.rfftfreq(x.shape[1], 1.0 / fs)
        total = spec[:, (freqs >= 0.5) & (freqs <= 40.0)].sum(axis=1) + 1e-12
        for b, (lo, hi) in enumerate(BANDS):
            band = spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1)
            out[i, col + b] = float(np.mean(band / total))
        out[i, col + len(BANDS)] = float(np.log10(np.mean(total)))
    return out
