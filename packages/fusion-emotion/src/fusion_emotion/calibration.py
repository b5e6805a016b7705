"""Calibration of predicted probabilities: expected calibration error, Brier score, reliability bins.

- ECE (Naeini et al., AAAI 2015; Guo et al., ICML 2017, in its binary form): the probabilities
  of High are cut into ``n_bins`` equal-width bins on [0, 1] (15 by default; a probability of
  exactly 1 falls in the last bin); ECE = sum over non-empty bins of ``n_b / n * |mean(y) -
  mean(p)|``: the gap between how often High happened and how likely it was said to be.
- Brier score: ``mean((p - y)^2)``; 0.25 for a constant 0.5, 0 for a perfect, sure model.
"""

from __future__ import annotations

import numpy as np

__all__ = ["N_BINS", "reliability_bins", "ece", "brier"]

N_BINS = 15


def _check(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true {y.shape} and prob {p.shape} must have the same length")
    if y.size == 0:
        raise ValueError("calibration of no samples is undefined")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("probabilities must be finite and in [0, 1]")
    return y, p


def reliability_bins(y_true: np.ndarray, prob: np.ndarray, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Per bin: ``count``, ``mean_prob`` and ``frac_high`` (NaN in empty bins), and ``edges``."""
    y, p = _check(y_true, prob)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / count
        frac = np.bincount(idx, weights=y, minlength=n_bins) / count
    return {"edges": edges, "count": count, "mean_prob": mean_p, "frac_high": frac}


def ece(y_true: np.ndarray, prob: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins (see the module docstring)."""
    b = reliability_bins(y_true, prob, n_bins)
    full = b["count"] > 0
    gap = np.abs(b["frac_high"][full] - b["mean_prob"][full])
    return float(np.sum(b["count"][full] / b["count"].sum() * gap))


def brier(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared difference between the probability of High and the 0/1 outcome."""
    y, p = _check(y_true, prob)
    return float(np.mean((p - y) ** 2))
