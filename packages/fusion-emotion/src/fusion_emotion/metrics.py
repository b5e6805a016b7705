"""Accuracy, F1 (High = positive) and ROC-AUC, per test subject and pooled, in numpy/scipy.

Conventions (the tests pin them against scikit-learn to 1e-9):

- Labels are 0 (Low) / 1 (High); scores are probabilities of High; the predicted label is
  ``score >= 0.5``.
- F1 with High as the positive class; where it is 0/0 (no High label and no High prediction) it
  is 0, as ``sklearn.metrics.f1_score(..., zero_division=0)``.
- ROC-AUC from ranks (the Mann-Whitney U statistic, ties counted half), equal to
  ``sklearn.metrics.roc_auc_score``. It is undefined for a single class.
- "Per subject" (the paper's "mean across subjects"): each metric is computed on the windows of
  one test subject, then averaged over subjects. A subject with one class only is left out of the
  AUC average (accuracy and F1 still count it) and is counted in ``n_auc_excluded``.
- "Pooled": the same metrics over all windows at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "accuracy",
    "f1_score",
    "roc_auc",
    "roc_curve",
    "evaluate",
    "mean_std",
]


def _binary(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 labels, got values {np.unique(y)[:5]}")
    return y.astype(np.int64)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of windows whose predicted label equals the true label."""
    y_true, y_pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if y_true.size == 0:
        raise ValueError("accuracy of no windows is undefined")
    return float(np.mean(y_true == y_pred))


def f1_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of the High class (label 1): 2·TP / (2·TP + FP + FN); 0 where that is 0/0."""
    y_true, y_pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    tp = int(np.sum((y_true == 1) & (y_pred == 1)))
    fp = int(np.sum((y_true == 0) & (y_pred == 1)))
    fn = int(np.sum((y_true == 1) & (y_pred == 0)))
    denom = 2 * tp + fp + fn
    return 0.0 if denom == 0 else 2.0 * tp / denom


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Area under the ROC curve from ranks; raises ValueError where only one class is present."""
    y_true = _binary(y_true, "y_true")
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.shape != y_true.shape:
        raise ValueError(f"y_score shape {y_score.shape} differs from y_true shape {y_true.shape}")
    n_pos = int(y_true.sum())
    n_neg = int(y_true.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC is undefined when only one class is present")
    ranks = rankdata(y_score)  # average ranks for ties
    u = ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    y_true = _binary(y_true, "y_true")
    y_score = np.asarray(y_score, dtype=np.float64)
    order = np.argsort(-y_score, kind="mergesort")
    y, s = y_true[order], y_score[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    n_pos, n_neg = max(int(y.sum()), 1), max(int(y.size - y.sum()), 1)
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos]


def _scores(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float | None]:
    y_pred = (np.asarray(y_score) >= 0.5).astype(np.int64)
    try:
        auc: float | None = roc_auc(y_true, y_score)
    except ValueError:
        auc = None
    return {"acc": accuracy(y_true, y_pred), "f1": f1_score(y_true, y_pred), "auc": auc}


def evaluate(y_true: np.ndarray, y_score: np.ndarray, subject: np.ndarray) -> dict:
    """Per-subject-averaged and pooled metrics of one dimension.

    Returns ``{"subject": {acc, f1, auc, n_subjects, n_auc_excluded},
    "pooled": {acc, f1, auc}, "per_subject": {id: {acc, f1, auc, n}}}``; ``auc`` is None where it
    is undefined (pooled: one class in all windows; subject mean: every subject has one class).
    """
    y_true = _binary(y_true, "y_true")
    y_score = np.asarray(y_score, dtype=np.float64)
    subject = np.asarray(subject)
    if not (y_true.shape == y_score.shape == subject.shape):
        raise ValueError(
            f"y_true {y_true.shape}, y_score {y_score.shape} and subject {subject.shape} must match"
        )
    per_subject = {}
    for sid in np.unique(subject):
        sel = subject == sid
        per_subject[int(sid)] = {**_scores(y_true[sel], y_score[sel]), "n": int(sel.sum())}
    aucs = [m["auc"] for m in per_subject.values() if m["auc"] is not None]
    subject_mean = {
        "acc": float(np.mean([m["acc"] for m in per_subject.values()])),
        "f1": float(np.mean([m["f1"] for m in per_subject.values()])),
        "auc": float(np.mean(aucs)) if aucs else None,
        "n_subjects": len(per_subject),
        "n_auc_excluded": len(per_subject) - len(aucs),
    }
    return {"subject": subject_mean, "pooled": _scores(y_true, y_score), "per_subject": per_subject}


def mean_std(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Mean and population standard deviation (ddof 0) of the defined values, and their count."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)}
