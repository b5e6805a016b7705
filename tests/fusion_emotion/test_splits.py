"""Subject-independent folds: 3:1:1, every subject tested exactly once, nothing leaks."""

from __future__ import annotations

import numpy as np
import pytest

from fusion_emotion.splits import fold_windows, subject_folds


@pytest.mark.parametrize("n_subjects,n_folds", [(23, 5), (10, 5), (7, 3), (23, 4)])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_subject_tested_and_validated_once(n_subjects, n_folds, seed):
    subjects = np.arange(n_subjects)
    folds = subject_folds(np.repeat(subjects, 3), n_folds, seed)
    assert len(folds) == n_folds
    tested = sorted(s for f in folds for s in f.test)
    validated = sorted(s for f in folds for s in f.val)
    assert tested == list(subjects) and validated == list(subjects)
    for f in folds:
        parts = [set(f.train), set(f.val), set(f.test)]
        assert set().union(*parts) == set(subjects)
        assert sum(len(p) for p in parts) == n_subjects  # disjoint
        sizes = [len(f.train), len(f.val), len(f.test)]
        assert max(len(f.val), len(f.test)) - min(len(f.val), len(f.test)) <= 1
        assert sizes[0] >= (n_folds - 2) * (n_subjects // n_folds)


def test_23_subjects_five_folds_is_3_1_1():
    folds = subject_folds(np.arange(23), 5, 0)
    assert sorted(len(f.test) for f in folds) == [4, 4, 5, 5, 5]
    for f in folds:
        assert len(f.train) in (13, 14, 15) and len(f.val) in (4, 5)


def test_seeds_change_the_grouping_deterministically():
    a = subject_folds(np.arange(23), 5, 0)
    assert a == subject_folds(np.arange(23), 5, 0)
    assert a != subject_folds(np.arange(23), 5, 1)


def test_fold_windows_never_leak():
    rng = np.random.default_rng(0)
    subject = rng.integers(0, 10, 500)
    for fold in subject_folds(subject, 5, 0):
        tr, va, te = fold_windows(subject, fold)
        assert len(tr) + len(va) + len(te) == len(subject)
        assert not set(tr) & set(te) and not set(va) & set(te) and not set(tr) & set(va)
        assert set(subject[te]) == set(fold.test)
        assert not set(subject[tr]) & set(fold.test)
        assert not set(subject[va]) & set(fold.test)


def test_bad_fold_counts():
    with pytest.raises(ValueError, match="at least 3"):
        subject_folds(np.arange(10), 2)
    with pytest.raises(ValueError, match="number of subjects"):
        subject_folds(np.arange(4), 5)
