"""One method's test metrics with their intervals, and the paired comparisons of two methods.

:func:`score_method` gives, for the test rows of one method, macro AUROC, macro F1 at the
thresholds chosen on validation, ECE, Brier and (for the Challenge task) the Challenge 2021
score, each ``{"value", "lo", "hi"}`` with a 95 % bootstrap interval over patients, plus the
per-patient view: the AUROC of patient-mean probabilities and the spread of AUROCs inside
patients (:func:`criss_cross.bench.metrics.within_patient_auroc`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from criss_cross.bench.metrics import (
    Metric,
    bootstrap,
    brier,
    ece,
    macro_auroc,
    macro_f1_at,
    paired_bootstrap,
    within_patient_auroc,
)

__all__ = ["ChallengeContext", "patient_mean", "score_method", "compare"]


class ChallengeContext:
    """What the Challenge score needs beyond the probe's classes: each test row's full 26-class
    labels and the map of the probe's classes onto the 26 columns."""

    def __init__(self, classes: list[str], codes_test: list[list[str]]) -> None:
        from criss_cross.probe.challenge import challenge_labels

        self.labels = challenge_labels(codes_test)                   # (N, 26)
        self.map = challenge_labels([[c] for c in classes]).astype(np.float64)  # (K, 26)

    def metric(self, thresholds: np.ndarray) -> Metric:
        from criss_cross.probe.challenge import challenge_score

        th = np.asarray(thresholds)

        def score(y: np.ndarray, p: np.ndarray) -> float:
            k = p.shape[1] - 26
            pred = p[:, :k] >= th[None, :]
            return challenge_score(p[:, k:].astype(bool), (pred @ self.map) > 0)

        return score


def patient_mean(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (N, K) per patient and the patients' sorted ids."""
    unique, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    sums = np.zeros((len(unique), values.shape[1]))
    np.add.at(sums, inverse, values)
    return sums / np.bincount(inverse)[:, None], unique


def score_method(y: np.ndarray, p: np.ndarray, groups: np.ndarray, thresholds: np.ndarray, *,
                 challenge: ChallengeContext | None = None, n_boot: int = 1000,
                 seed: int = 0) -> dict[str, Any]:
    """Test metrics of probabilities ``p`` (N, K) against ``y`` (N, K); see the module doc."""
    kw = {"n_boot": n_boot, "seed": seed}
    out: dict[str, Any] = {
        "macro_auroc": bootstrap(macro_auroc, y, p, groups, **kw),
        "macro_f1": bootstrap(macro_f1_at(thresholds), y, p, groups, **kw),
        "ece": bootstrap(ece, y, p, groups, **kw),
        "brier": bootstrap(brier, y, p, groups, **kw),
        "thresholds": [float(t) for t in thresholds],
    }
    if challenge is not None:
        both = np.concatenate([p, challenge.labels.astype(np.float64)], axis=1)
        out["challenge_score"] = bootstrap(challenge.metric(thresholds), y, both, groups, **kw)
    py, _ = patient_mean(y.astype(np.float64), groups)
    pp, _ = patient_mean(p, groups)
    out["patient_level_auroc"] = {"value": macro_auroc(py >= 0.5, pp), "n_patients": len(py)}
    out["within_patient_auroc"] = within_patient_auroc(y, p, groups)
    return out


def compare(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, groups: np.ndarray, *,
            n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Paired differences ``a - b`` over patients: macro AUROC and Brier (lower is better)."""
    kw = {"n_boot": n_boot, "seed": seed}
    return {"macro_auroc": paired_bootstrap(macro_auroc, y, p_a, p_b, groups, **kw),
            "brier": paired_bootstrap(brier, y, p_a, p_b, groups, **kw)}
