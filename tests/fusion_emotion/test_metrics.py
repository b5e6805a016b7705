"""Metrics against scikit-learn, and the per-subject conventions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.metrics import f1_score as sk_f1
from sklearn.metrics import roc_curve as sk_roc_curve

from fusion_emotion.baselines import majority_class, per_clip_majority
from fusion_emotion.metrics import accuracy, evaluate, f1_score, mean_std, roc_auc, roc_curve


def _cases(n_cases: int = 200):
    rng = np.random.default_rng(0)
    for i in range(n_cases):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        if i % 3 == 0:  # ties in the scores
            s = rng.integers(0, 5, n) / 4.0
        else:
            s = rng.random(n)
        yield y, s


def test_accuracy_f1_auc_match_sklearn():
    for y, s in _cases():
        pred = (s >= 0.5).astype(int)
        assert accuracy(y, pred) == pytest.approx(accuracy_score(y, pred), abs=1e-9)
        assert f1_score(y, pred) == pytest.approx(sk_f1(y, pred, zero_division=0), abs=1e-9)
        if 0 < y.sum() < y.size:
            assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-9)


def test_f1_zero_division_is_zero():
    assert f1_score(np.zeros(4, int), np.zeros(4, int)) == 0.0
    assert sk_f1(np.zeros(4, int), np.zeros(4, int), zero_division=0) == 0.0


def test_auc_single_class_raises():
    with pytest.raises(ValueError, match="one class"):
        roc_auc(np.ones(5, int), np.linspace(0, 1, 5))


def test_roc_curve_matches_sklearn_area():
    for y, s in _cases(50):
        if not 0 < y.sum() < y.size:
            continue
        fpr, tpr = roc_curve(y, s)
        area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        assert area == pytest.approx(roc_auc_score(y, s), abs=1e-9)
        sk_fpr, sk_tpr, _ = sk_roc_curve(y, s, drop_intermediate=False)
        assert fpr[-1] == sk_fpr[-1] == 1.0 and tpr[-1] == sk_tpr[-1] == 1.0


def test_evaluate_per_subject_then_mean():
    rng = np.random.default_rng(1)
    subject = np.repeat([0, 1, 2, 3], 25)
    y = rng.integers(0, 2, 100)
    y[subject == 2] = 1  # one class only: out of the AUC mean, still in acc/F1
    s = np.clip(y * 0.3 + rng.random(100) * 0.7, 0, 1)
    m = evaluate(y, s, subject)
    accs, f1s, aucs = [], [], []
    for sid in range(4):
        sel = subject == sid
        pred = (s[sel] >= 0.5).astype(int)
        accs.append(accuracy_score(y[sel], pred))
        f1s.append(sk_f1(y[sel], pred, zero_division=0))
        if sid != 2:
            aucs.append(roc_auc_score(y[sel], s[sel]))
    assert m["subject"]["acc"] == pytest.approx(np.mean(accs), abs=1e-9)
    assert m["subject"]["f1"] == pytest.approx(np.mean(f1s), abs=1e-9)
    assert m["subject"]["auc"] == pytest.approx(np.mean(aucs), abs=1e-9)
    assert m["subject"]["n_auc_excluded"] == 1 and m["subject"]["n_subjects"] == 4
    assert m["per_subject"][2]["auc"] is None
    pred = (s >= 0.5).astype(int)
    assert m["pooled"]["acc"] == pytest.approx(accuracy_score(y, pred), abs=1e-9)
    assert m["pooled"]["f1"] == pytest.approx(sk_f1(y, pred), abs=1e-9)
    assert m["pooled"]["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-9)


def test_mean_std_population():
    out = mean_std([0.5, 0.7, None, float("nan"), 0.9])
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(0.7)
    assert out["std"] == pytest.approx(np.std([0.5, 0.7, 0.9]))
    assert mean_std([None])["mean"] is None


def test_majority_class_baseline():
    scores = majority_class(np.array([1, 1, 0, 1]), 3)
    assert np.allclose(scores, 0.75)
    m = evaluate(np.array([0, 1, 1]), scores, np.zeros(3, int))
    assert m["subject"]["auc"] == pytest.approx(0.5) and m["subject"]["acc"] == pytest.approx(2 / 3)


def test_per_clip_majority_counts_subjects_not_windows():
    # clip 0: subject 0 High (1 window), subjects 1 and 2 Low (1 window each) -> Low
    # although subject 0 contributes 5 High windows
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 1, 1, 0])
    clip = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    subject = np.array([0, 0, 0, 0, 0, 1, 2, 0, 1, 2])
    s = per_clip_majority(labels, clip, subject, np.array([0, 1, 7]))
    assert s[0] == pytest.approx(1 / 3)  # Low
    assert s[1] == pytest.approx(2 / 3)  # High
    assert s[2] == pytest.approx(labels.mean())  # unseen clip: majority-class score
