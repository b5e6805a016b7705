"""Subject-independent 3:1:1 splits, rotated so that every subject is a test subject exactly once.

The assignment (one rule, written to ``metrics.json`` for every run):

1. The distinct subject ids are sorted, then shuffled with ``numpy.random.default_rng(seed)``
   (one permutation per seed; a different seed gives a different grouping).
2. The shuffled list is cut into ``n_folds`` contiguous groups with :func:`numpy.array_split`,
   so group sizes differ by at most one (23 subjects, 5 folds: 5, 5, 5, 4, 4).
3. Fold ``k`` tests on group ``k``, selects (validation) on group ``(k + 1) % n_folds`` and trains
   on the other ``n_folds - 2`` groups. With 5 folds that is 3:1:1 by subject; every subject is
   tested exactly once and validated exactly once per seed, and a test subject's windows never
   reach training or model selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Fold", "subject_folds", "fold_windows"]


@dataclass(frozen=True)
class Fold:
    """The subjects of one rotation (sorted ids)."""

    index: int
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    def as_dict(self) -> dict[str, list[int]]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


def subject_folds(subjects: Sequence[int] | np.ndarray, n_folds: int = 5, seed: int = 0) -> list[Fold]:
    """The ``n_folds`` rotations for the distinct ids in ``subjects`` (see the module docstring).

    subjects : the subject id of every window, or the distinct ids; duplicates are ignored.
    """
    ids = np.unique(np.asarray(subjects, dtype=np.int64))
    if n_folds < 3:
        raise ValueError(f"n_folds ({n_folds}) must be at least 3 (train, validation, test)")
    if ids.size < n_folds:
        raise ValueError(f"n_folds ({n_folds}) must not exceed the number of subjects ({ids.size})")
    order = np.random.default_rng(seed).permutation(ids)
    groups = [tuple(sorted(int(s) for s in g)) for g in np.array_split(order, n_folds)]
    folds = []
    for k in range(n_folds):
        v = (k + 1) % n_folds
        train = tuple(sorted(s for j, g in enumerate(groups) if j not in (k, v) for s in g))
        folds.append(Fold(index=k, train=train, val=groups[v], test=groups[k]))
    return folds


def fold_windows(subject: np.ndarray, fold: Fold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window indices (sorted, int64) of the train, validation and test subjects of ``fold``."""
    subject = np.asarray(subject)
    out = []
    for part in (fold.train, fold.val, fold.test):
        out.append(np.flatnonzero(np.isin(subject, np.asarray(part, dtype=subject.dtype))).astype(np.int64))
    return out[0], out[1], out[2]
