"""Heartbeat-evoked responses (HEP): EEG epochs locked to the R peaks of the paired ECG, averaged
per window; the features of the ``hep`` fusion strategy.

Patch tokens of 1 s cannot see a 100-ms lag between the signals; an average of the EEG around
every heartbeat of a window can: what follows each R peak at a fixed delay adds up, what is
placed independently of the heartbeats averages out (Schandry 1981; Park & Blanke 2019 review
heartbeat-evoked potentials). Per window:

1. R peaks of the ECG: the lead with the largest 5-20 Hz band-passed range, its absolute value,
   peaks at least 0.33 s apart (at most 180 bpm) and above 40 % of the window's 99.5th percentile.
2. For every R peak with room on both sides, the EEG from ``PRE`` s before to ``POST`` s after
   it, minus its own mean before the peak (baseline), averaged over beats and over channels.
3. That average, resampled onto a fixed grid of :data:`HEP_POINTS` points (10 ms), and the log
   of its RMS: :data:`HEP_DIM` numbers. A window with fewer than two usable beats gets zeros.

Computed once per run from the stored windows (frozen mode: beside the cached embeddings), then
standardised feature by feature over all windows (no label is used).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["PRE", "POST", "HEP_POINTS", "HEP_DIM", "r_peaks", "hep_average", "hep_features"]

PRE, POST = 0.1, 0.6
HEP_POINTS = int(round((PRE + POST) * 100)) + 1  # 71: a 10-ms grid
HEP_DIM = HEP_POINTS + 1


def _bandpass(x: np.ndarray, fs: float, lo: float = 5.0, hi: float = 20.0) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, [lo, min(hi, 0.45 * fs)], btype="band", fs=fs, output="sos")
    return sosfiltfilt(sos, x, axis=-1)


def r_peaks(ecg: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the R peaks of one window ``ecg`` (L, n) (see the module docstring)."""
    from scipy.signal import find_peaks

    y = _bandpass(np.asarray(ecg, dtype=np.float64), fs)
    lead = int(np.argmax(np.ptp(y, axis=-1)))
    env = np.abs(y[lead])
    top = float(np.percentile(env, 99.5))
    if top <= 0:
        return np.zeros(0, dtype=np.int64)
    peaks, _ = find_peaks(env, height=0.4 * top, distance=max(1, int(0.33 * fs)))
    return peaks.astype(np.int64)


def hep_average(eeg: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray | None:
    """Channel- and beat-averaged, baseline-corrected EEG around ``peaks``: (round((PRE+POST)·fs)+1,),
    or None with fewer than two usable beats."""
    pre, post = int(round(PRE * fs)), int(round(POST * fs))
    n = eeg.shape[-1]
    use = [p for p in peaks if p - pre >= 0 and p + post < n]
    if len(use) < 2:
        return None
    epochs = np.stack([eeg[:, p - pre : p + post + 1] for p in use])  # (beats, C, L)
    epochs = epochs - epochs[:, :, :max(pre, 1)].mean(axis=-1, keepdims=True)
    return epochs.mean(axis=(0, 1))


def _features(eeg: np.ndarray, ecg: np.ndarray, fs: float) -> np.ndarray:
    avg = hep_average(eeg, r_peaks(ecg, fs), fs)
    if avg is None:
        return np.zeros(HEP_DIM, dtype=np.float64)
    grid = np.linspace(-PRE, POST, HEP_POINTS)
    t = np.arange(avg.size) / fs - PRE
    curve = np.interp(grid, t, avg)
    return np.append(curve, np.log(np.sqrt(np.mean(avg**2)) + 1e-6))


def hep_features(
    parts: Callable[[str], object],
    fs: float,
    n: int,
    standardise: bool = True,
) -> np.ndarray:
    """(n, HEP_DIM) float32 HEP features of every window.

    parts : modality -> iterator of (windows (b, C, P, S), channel_mask) chunks in window order,
        e.g. :meth:`fusion_emotion.data.DreamerWindows.iter_chunks` (EEG in µV, ECG in mV).
    """
    out = np.zeros((n, HEP_DIM), dtype=np.float64)
    i = 0
    for (eeg, _), (ecg, _) in zip(parts("eeg"), parts("ecg"), strict=True):  # type: ignore[call-overload]
        for w in range(len(eeg)):
            e = np.asarray(eeg[w], dtype=np.float64).reshape(eeg.shape[1], -1)
            c = np.asarray(ecg[w], dtype=np.float64).reshape(ecg.shape[1], -1)
            out[i] = _features(e, c, fs)
            i += 1
    if i != n:
        raise ValueError(f"HEP features: read {i} windows, expected {n}")
    if standardise:
        sd = out.std(axis=0)
        out = (out - out.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return out.astype(np.float32)
