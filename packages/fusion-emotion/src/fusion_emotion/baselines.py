"""Baselines that need no signal, fitted on the training subjects of a fold (or on nothing).

- Always high / always low: every test window gets the score 1 (0). Always-high's F1 on a test
  set whose High share is ``a`` is ``2a / (1 + a)`` (precision a, recall 1): the F1 any row
  must beat before its F1 says anything (DREAMER's High, rating >= 3, is the majority class).

- Majority class: every test window gets the fraction of High among the training windows as its
  score (so its AUC is 0.5 and its label is the training majority).
- Per-clip majority: all DREAMER subjects watch the same clips, so a model can score by
  recognising the clip. For each clip, the score is the fraction of *training subjects* who rated
  that clip High (each subject counts once, however many windows the clip gives); its label is
  the majority among them (the training majority class on a tie). A clip no training subject
  saw gets the majority-class score. The gap between this row and the models shows how much of their score could come
  from clip identity alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["majority_class", "per_clip_majority", "constant", "always_high_f1"]


def constant(high: bool, n_test: int) -> np.ndarray:
    """Scores (n_test,) float64: all 1.0 (always high) or all 0.0 (always low)."""
    return np.full(int(n_test), 1.0 if high else 0.0, dtype=np.float64)


def always_high_f1(share_high: float) -> float:
    """F1 of answering High for every sample of a set whose High share is ``share_high``:
    ``2a / (1 + a)`` (precision a, recall 1; 0 when a = 0)."""
    a = float(share_high)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"share_high ({a}) must be in [0, 1]")
    return 2.0 * a / (1.0 + a)


def majority_class(train_labels: np.ndarray, n_test: int) -> np.ndarray:
    """Scores (n_test,) float64, all equal to the fraction of High among ``train_labels`` (0/1).

    Its label is the training majority; an exact tie (0.5) reads as High.
    """
    train_labels = np.asarray(train_labels)
    if train_labels.size == 0:
        raise ValueError("majority class needs at least one training window")
    return np.full(int(n_test), float(np.mean(train_labels)), dtype=np.float64)


def per_clip_majority(
    train_labels: np.ndarray,
    train_clip: np.ndarray,
    train_subject: np.ndarray,
    test_clip: np.ndarray,
) -> np.ndarray:
    """Scores (n_test,) float64 of the per-clip majority baseline (see the module docstring)."""
    train_labels = np.asarray(train_labels, dtype=np.float64)
    train_clip = np.asarray(train_clip)
    train_subject = np.asarray(train_subject)
    test_clip = np.asarray(test_clip)
    if train_labels.size == 0:
        raise ValueError("per-clip majority needs at least one training window")
    overall = float(np.mean(train_labels))
    # a tie between training subjects goes to the training majority: 0.5 reads as High, the
    # float just below it as Low, so the score still ranks between the clips on either side
    tie = 0.5 if overall >= 0.5 else float(np.nextafter(0.5, 0.0))
    clip_score: dict[int, float] = {}
    for clip in np.unique(train_clip):
        sel = train_clip == clip
        # one vote per subject: the subject's (majority) label for this clip
        votes = [
            float(np.mean(train_labels[sel & (train_subject == s)]) >= 0.5)
            for s in np.unique(train_subject[sel])
        ]
        frac = float(np.mean(votes))
        clip_score[int(clip)] = tie if frac == 0.5 else frac
    return np.array([clip_score.get(int(c), overall) for c in test_clip], dtype=np.float64)
