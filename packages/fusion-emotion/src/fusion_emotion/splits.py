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

Leave one subject out (``folds="loso"``, :func:`loso_folds`): fold ``k`` tests the ``k``-th
subject (sorted ids); its validation subjects come from the training side: the ``n_val``
subjects that follow the test subject in the seed's permutation (cyclically), ``n_val`` =
round((n - 1) / 5) (4 of 22 for DREAMER, the k-fold's 1 : 4 ratio of validation to training);
the other subjects train. Every subject is tested exactly once and validated ``n_val`` times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Fold", "subject_folds", "loso_folds", "make_folds", "n_folds_of", "fold_windows"]


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


def loso_folds(subjects: Sequence[int] | np.ndarray, seed: int = 0, n_val: int | None = None) -> list[Fold]:
    """Leave one subject out: one fold per distinct id (see the module docstring)."""
    ids = np.unique(np.asarray(subjects, dtype=np.int64))
    if ids.size < 3:
        raise ValueError(f"leave-one-subject-out needs at least 3 subjects, got {ids.size}")
    if n_val is None:
        n_val = max(1, int(round((ids.size - 1) / 5)))
    if not 1 <= n_val <= ids.size - 2:
        raise ValueError(f"n_val ({n_val}) must be in 1..{ids.size - 2}")
    order = [int(s) for s in np.random.default_rng(seed).permutation(ids)]
    pos = {s: i for i, s in enumerate(order)}
    folds = []
    for k, test in enumerate(int(s) for s in ids):
        val = tuple(sorted(order[(pos[test] + 1 + j) % ids.size] for j in range(n_val)))
        train = tuple(sorted(int(s) for s in ids if s != test and s not in val))
        folds.append(Fold(index=k, train=train, val=val, test=(test,)))
    return folds


def make_folds(subjects: Sequence[int] | np.ndarray, folds: int | str, seed: int = 0) -> list[Fold]:
    """``folds`` = a number (:func:`subject_folds`) or ``"loso"`` (:func:`loso_folds`)."""
    if folds == "loso":
        return loso_folds(subjects, seed)
    return subject_folds(subjects, int(folds), seed)


def n_folds_of(folds: int | str, n_subjects: int) -> int:
    """How many folds ``folds`` makes for ``n_subjects`` subjects."""
    return n_subjects if folds == "loso" else int(folds)


def fold_windows(subject: np.ndarray, fold: Fold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window indices (sorted, int64) of the train, validation and test subjects of ``fold``."""
    subject = np.asarray(subject)
    out = []
    for part in (fold.train, fold.val, fold.test):
        out.append(np.flatnonzero(np.isin(subject, np.asarray(part, dtype=subject.dtype))).astype(np.int64))
    return out[0], out[1], out[2]
