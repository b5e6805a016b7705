"""Metrics of a bench run, their bootstrap intervals over patients, and paired differences.

Every metric takes labels ``y`` (N, K) binary and probabilities ``p`` (N, K) in [0, 1]:

- :func:`macro_auroc` / :func:`macro_f1`: the probe's (Mann-Whitney AUROC, mean over classes
  with positives and negatives; F1 = 2TP / (2TP + FP + FN) at per-class thresholds);
- :func:`ece`: expected calibration error, all (record, class) pairs pooled into 15
  equal-width bins ``[0, 1/15), ..., [14/15, 1]``: ``sum_b |B_b| / n * |mean(y_b) - mean(p_b)|``;
- :func:`brier`: mean of ``(p - y) ** 2`` over all pairs;
- :func:`choose_thresholds`: per class, the probability that maximises F1 on *validation*.

Intervals resample patients, not rows (rows of one patient are not independent):
:func:`bootstrap` draws ``rng.integers(0, G, size=(n_boot, G))`` with
``rng = numpy.random.default_rng(seed)``, takes every row of the drawn patients (a patient
drawn twice counts twice), and reports the 2.5 and 97.5 percentiles (numpy's linear
interpolation) of the finite replicates. :func:`paired_bootstrap` applies the same draws to
two methods' probabilities and gives the difference's interval and a two-sided bootstrap
p-value ``min(1, 2 * min(P(d <= 0), P(d >= 0)))``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from criss_cross.probe.challenge import macro_f1 as _macro_f1

__all__ = ["MIN_GROUPS", "Metric", "auroc_per_class", "brier", "bootstrap", "choose_thresholds", "ece", "macro_auroc",
           "macro_f1_at", "paired_bootstrap", "within_patient_auroc"]

Metric = Callable[[np.ndarray, np.ndarray], float]


def auroc_per_class(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUROC of each column (Mann-Whitney U with average ranks for ties; NaN where a column
    lacks positives or negatives); equal to :func:`criss_cross.probe.challenge.macro_auroc`'s
    per-class values, vectorised over columns for the bootstrap."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    if y.shape[0] == 0:
        return np.full(y.shape[1], np.nan)
    pos = y.sum(axis=0).astype(np.float64)
    neg = y.shape[0] - pos
    if y.shape[0] <= 256:  # small (bootstrap replicates): count the pairs directly
        d = p[:, None, :] - p[None, :, :]
        wins = (d > 0) + 0.5 * (d == 0)
        u = np.einsum("ik,jk,ijk->k", y.astype(np.float64), (~y).astype(np.float64), wins)
    else:
        ranks = rankdata(p, axis=0)
        u = (ranks * y).sum(axis=0) - pos * (pos + 1) / 2.0
    out = np.full(y.shape[1], np.nan)
    ok = (pos > 0) & (neg > 0)
    out[ok] = u[ok] / (pos[ok] * neg[ok])
    return out


def macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Mean AUROC over the classes with both positives and negatives (NaN if none)."""
    per = auroc_per_class(y, p)
    return float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")


def macro_f1_at(thresholds: np.ndarray) -> Metric:
    """Macro F1 of ``p >= thresholds`` (one threshold per class)."""
    th = np.asarray(thresholds, dtype=np.float64)

    def f1(y: np.ndarray, p: np.ndarray) -> float:
        return _macro_f1(np.asarray(y, dtype=bool), np.asarray(p) >= th[None, :])[0]

    return f1


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins (1.0 falls in the last)."""
    yv = np.asarray(y, dtype=np.float64).ravel()
    pv = np.asarray(p, dtype=np.float64).ravel()
    if yv.size == 0:
        return float("nan")
    bins = np.minimum((pv * n_bins).astype(np.int64), n_bins - 1)
    # |B| / n * |mean(y_B) - mean(p_B)| = |sum(y_B) - sum(p_B)| / n
    gap = np.bincount(bins, weights=yv, minlength=n_bins) - np.bincount(bins, weights=pv,
                                                                        minlength=n_bins)
    return float(np.abs(gap).sum() / yv.size)


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between probability and label over all (row, class) pairs."""
    yv = np.asarray(y, dtype=np.float64)
    return float(np.mean((np.asarray(p, dtype=np.float64) - yv) ** 2)) if yv.size else float("nan")


def choose_thresholds(y_val: np.ndarray, p_val: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per class, the candidate threshold (a validation probability) with the highest F1;
    ``default`` for a class without positives in ``y_val``. Ties: the highest threshold."""
    y_val = np.asarray(y_val, dtype=bool)
    p_val = np.asarray(p_val, dtype=np.float64)
    out = np.full(y_val.shape[1], default)
    for k in range(y_val.shape[1]):
        yk, pk = y_val[:, k], p_val[:, k]
        if not yk.any():
            continue
        best, best_f1 = default, -1.0
        for t in np.unique(pk)[::-1]:
            pred = pk >= t
            tp = float((pred & yk).sum())
            f1 = 2 * tp / (2 * tp + float((pred & ~yk).sum()) + float((~pred & yk).sum()))
            if f1 > best_f1:
                best, best_f1 = float(t), f1
        out[k] = best
    return out


def _draws(groups: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """Row indices of each replicate (see the module doc), cached for repeated calls."""
    groups = np.asarray(groups).astype(str)
    return _draws_cached(groups.tobytes(), groups.dtype.str, n_boot, seed)


@lru_cache(maxsize=16)
def _draws_cached(raw: bytes, dtype: str, n_boot: int, seed: int) -> list[np.ndarray]:
    groups = np.frombuffer(raw, dtype=dtype)
    unique, inverse = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    draws = np.random.default_rng(seed).integers(0, len(unique), size=(n_boot, len(unique)))
    return [np.concatenate([rows_of[g] for g in d]) for d in draws]


def _interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return float(lo), float(hi)


#: Fewer test patients than this give no interval (and no p-value): resampling two or three
#: patients yields replicates that are mostly undefined or identical, an interval of zero
#: width that would read as certainty.
MIN_GROUPS = 5


def _too_few(groups: np.ndarray, min_groups: int) -> bool:
    return len(np.unique(np.asarray(groups).astype(str))) < min_groups


def bootstrap(metric: Metric, y: np.ndarray, p: np.ndarray, groups: np.ndarray, *,
              n_boot: int = 1000, seed: int = 0, min_groups: int = MIN_GROUPS) -> dict[str, float]:
    """``metric(y, p)`` with its 95 % bootstrap interval over ``groups`` (patients).

    Returns ``{"value", "lo", "hi"}``; ``lo``/``hi`` are NaN when no replicate is finite or
    there are fewer than ``min_groups`` patients.
    """
    if _too_few(groups, min_groups):
        return {"value": float(metric(y, p)), "lo": float("nan"), "hi": float("nan")}
    reps = np.array([metric(y[idx], p[idx]) for idx in _draws(groups, n_boot, seed)])
    lo, hi = _interval(reps)
    return {"value": float(metric(y, p)), "lo": lo, "hi": hi}


def paired_bootstrap(metric: Metric, y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray,
                     groups: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                     min_groups: int = MIN_GROUPS) -> dict[str, float]:
    """``metric(y, p_a) - metric(y, p_b)`` on the same rows, its 95 % interval from the same
    patient draws for both, and the two-sided bootstrap p-value (see the module doc); NaN
    interval and p-value with fewer than ``min_groups`` patients."""
    if _too_few(groups, min_groups):
        nan = float("nan")
        return {"value": float(metric(y, p_a) - metric(y, p_b)), "lo": nan, "hi": nan, "p": nan}
    diffs = np.array([metric(y[idx], p_a[idx]) - metric(y[idx], p_b[idx])
                      for idx in _draws(groups, n_boot, seed)])
    lo, hi = _interval(diffs)
    finite = diffs[np.isfinite(diffs)]
    if finite.size:
        pval = float(min(1.0, 2.0 * min(np.mean(finite <= 0), np.mean(finite >= 0))))
    else:
        pval = float("nan")
    return {"value": float(metric(y, p_a) - metric(y, p_b)), "lo": lo, "hi": hi, "p": pval}


def within_patient_auroc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Macro AUROC inside each patient that has both positives and negatives of some class.

    Returns ``n_patients`` (with a defined value), ``median``, ``q25``, ``q75`` (NaN when no
    patient has both classes: the pooled AUROC then only separates patients).
    """
    groups = np.asarray(groups).astype(str)
    values = []
    for g in np.unique(groups):
        sel = groups == g
        v = macro_auroc(y[sel], p[sel])
        if np.isfinite(v):
            values.append(v)
    if not values:
        return {"n_patients": 0, "median": float("nan"), "q25": float("nan"),
                "q75": float("nan")}
    q25, med, q75 = np.percentile(values, [25, 50, 75])
    return {"n_patients": len(values), "median": float(med), "q25": float(q25),
            "q75": float(q75)}
