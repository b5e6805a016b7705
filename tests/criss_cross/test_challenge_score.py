"""The Challenge 2021 score on hand-computed cases (exact), and macro AUROC / F1 against sklearn.

The hand cases use weights that are multiples of 1/16 and records with one or two classes, so
every sum is exact in binary floating point and the quotient is the correctly rounded value of
the fraction computed by hand.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from criss_cross.probe.challenge import (
    challenge_classes,
    challenge_labels,
    challenge_score,
    challenge_weights,
    macro_auroc,
    macro_f1,
    modified_confusion_matrix,
)

AF, AFL, NSR, PVC, VPB = "164889003", "164890007", "426783006", "427172004", "17338001"


def test_the_published_table():
    classes, w = challenge_classes(), challenge_weights()
    assert len(classes) == 26 and w.shape == (26, 26)
    assert sum(len(c) for c in classes) == 30  # 4 equivalent pairs
    pairs = sorted(tuple(sorted(c)) for c in classes if len(c) == 2)
    assert pairs == [("164909002", "733534002"), ("17338001", "427172004"),
                     ("284470004", "63593006"), ("59118001", "713427006")]
    assert np.array_equal(w, w.T) and np.all(np.diag(w) == 1.0)
    idx = {code: j for j, c in enumerate(classes) for code in c}
    assert w[idx[AF], idx[AFL]] == 0.5 and w[idx[AF], idx[NSR]] == 0.25
    assert w[idx[PVC], idx[NSR]] == 0.375 and w[idx[AF], idx[PVC]] == 0.375


def test_labels_fold_equivalent_codes_and_drop_unscored():
    lab = challenge_labels([[PVC], [VPB], ["251170000"], [AF, NSR, "999"]])
    assert lab.shape == (4, 26)
    assert np.array_equal(lab[0], lab[1]) and lab[0].sum() == 1
    assert lab[2].sum() == 0 and lab[3].sum() == 2


def test_modified_confusion_spreads_one_unit_per_record():
    labels = np.array([[1, 1, 0], [0, 0, 1]], dtype=bool)
    outputs = np.array([[1, 0, 0], [0, 0, 0]], dtype=bool)
    # record 0: union {0, 1} -> each true class gets 1/2 on predicted class 0; record 1: nothing
    assert np.array_equal(modified_confusion_matrix(labels, outputs),
                          np.array([[0.5, 0, 0], [0.5, 0, 0], [0, 0, 0]]))


def test_hand_computed_case():
    labels = challenge_labels([[PVC], [AF], [AFL], [AF, NSR], ["251170000"]])
    outputs = challenge_labels([[VPB], [AFL], [], [AF], [AF]])
    # observed: 1 (PVC as its equivalent VPB) + 1/2*w(AF,AFL)=1/4 + 0 + 1/2*1 + 1/2*w(NSR,AF)=1/8
    #           (+ 0: a record without scored labels earns and costs nothing)      = 15/8
    # correct:  1 + 1 + 1 + 1/2*(1 + 1/4 + 1/4 + 1)                              = 17/4
    # inactive: 1/2*w(PVC,NSR)=3/16 + 1/2*w(AF,NSR)=1/8 + 1/2*w(AFL,NSR)=1/8
    #           + 1/2*w(AF,NSR) + 1/2*w(NSR,NSR) = 1/8 + 1/2                    = 17/16
    # score = (15/8 - 17/16) / (17/4 - 17/16) = (13/16) / (51/16) = 13/51
    expected = float(Fraction(13, 51))
    assert challenge_score(labels, outputs) == expected


def test_reference_points():
    labels = challenge_labels([[AF], [NSR], [PVC, AFL], [AF, AFL]])
    assert challenge_score(labels, labels) == 1.0
    sinus = challenge_labels([[NSR]] * 4)
    assert challenge_score(labels, sinus) == 0.0
    # everyone in sinus rhythm: correct == inactive, the score is defined as 0
    assert challenge_score(sinus, challenge_labels([[AF]] * 4)) == 0.0
    # predicting nothing for a single AF record: observed 0, correct 1, inactive 1/2*w(AF,NSR)
    # -> (0 - 1/8) / (1 - 1/8) = -1/7
    assert challenge_score(challenge_labels([[AF]]), challenge_labels([[]])) == float(Fraction(-1, 7))
    with pytest.raises(ValueError, match=r"must both be \(n_records, 26\)"):
        challenge_score(labels[:, :5], labels[:, :5])


def test_macro_auroc_and_f1_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.random((60, 4)) < 0.3
    s = np.round(rng.random((60, 4)) + y * 0.4, 1)  # ties on purpose
    y[:, 3] = False  # a class without positives is left out of the mean
    got, per = macro_auroc(y, s)
    want = [sk.roc_auc_score(y[:, k], s[:, k]) for k in range(3)]
    assert np.allclose(per[:3], want, rtol=0, atol=1e-12) and np.isnan(per[3])
    assert got == pytest.approx(np.mean(want), abs=1e-12)
    out = s > 0.6
    f1, per_f1 = macro_f1(y, out)
    want_f1 = [sk.f1_score(y[:, k], out[:, k]) for k in range(4) if (y[:, k] | out[:, k]).any()]
    assert f1 == pytest.approx(np.mean(want_f1), abs=1e-12)
    assert macro_f1(np.zeros((3, 2), bool), np.zeros((3, 2), bool))[0] != macro_f1(
        np.zeros((3, 2), bool), np.zeros((3, 2), bool))[0]  # NaN: nothing to score
