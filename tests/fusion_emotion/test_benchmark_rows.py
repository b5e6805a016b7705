"""Issue 18 by hand-computed cases: Holm, ECE/Brier, clip aggregation, LOSO folds, the
always-high F1 floor, modality masking; and one small LOSO run through the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion_emotion import train
from fusion_emotion.baselines import always_high_f1, constant
from fusion_emotion.calibration import brier, ece, reliability_bins
from fusion_emotion.config import FusionConfig
from fusion_emotion.levels import clip_aggregate, clip_result
from fusion_emotion.metrics import f1_score
from fusion_emotion.splits import loso_folds, make_folds
from fusion_emotion.stats import holm
from fusion_emotion.strategies import STRATEGIES, draw_absent


def test_holm_on_a_known_p_vector():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, None, 0.9]) == [pytest.approx(0.4), None, pytest.approx(0.9)]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


def test_ece_and_brier_on_a_known_calibration_curve():
    # 10 windows said 0.1 with 1 High (calibrated), 10 said 0.9 with 6 High (gap 0.3)
    p = np.r_[np.full(10, 0.1), np.full(10, 0.9)]
    y = np.r_[np.eye(1, 10, 0)[0], np.ones(6), np.zeros(4)]
    assert ece(y, p) == pytest.approx(0.5 * 0.0 + 0.5 * 0.3)
    assert brier(y, p) == pytest.approx((0.81 + 9 * 0.01 + 6 * 0.01 + 4 * 0.81) / 20)
    b = reliability_bins(y, p)
    assert b["count"].sum() == 20 and b["count"][1] == 10 and b["count"][13] == 10
    assert ece([1, 1, 0], [1.0, 1.0, 0.0]) == 0.0  # p = 1 falls in the last bin
    assert brier([0, 1], [0.5, 0.5]) == 0.25
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        ece([1], [1.5])


def test_clip_level_averages_a_clips_window_probabilities():
    y = [1, 1, 0, 1, 1]
    score = [0.2, 0.6, 0.1, 0.3, 0.9]
    subject = [1, 1, 1, 2, 2]
    clip = [5, 5, 6, 6, 6]
    yc, sc, sub, cl = clip_aggregate(y, score, subject, clip)
    assert yc.tolist() == [1, 0, 1] and sub.tolist() == [1, 1, 2] and cl.tolist() == [5, 6, 6]
    assert sc == pytest.approx([0.4, 0.1, 0.6])
    with pytest.raises(ValueError, match="different labels"):
        clip_aggregate([1, 0], [0.5, 0.5], [1, 1], [2, 2])
    # a fold file of a toy store: subject 1 has clips 5 (High) and 6 (Low)
    dims = ("valence",)
    result = {"y": {"valence": y}, "scores": {"valence": score}, "test_subject": subject,
              "test_clip": clip, "metrics": {}}
    r = clip_result(result, dims)
    assert r["scores"]["valence"] == pytest.approx([0.4, 0.1, 0.6])
    assert r["metrics"]["valence"]["per_subject"][1]["auc"] == 1.0  # 0.4 > 0.1
    assert r["metrics"]["valence"]["per_subject"][2]["n"] == 1


def test_loso_fold_membership():
    subjects = np.repeat(np.arange(1, 24), 5)  # windows of 23 subjects
    folds = loso_folds(subjects, seed=0)
    assert len(folds) == 23
    assert sorted(f.test[0] for f in folds) == list(range(1, 24))
    for f in folds:
        assert len(f.test) == 1 and len(f.val) == 4 and len(f.train) == 18
        assert not (set(f.test) & set(f.val)) and not (set(f.train) & (set(f.val) | set(f.test)))
        assert set(f.train) | set(f.val) | set(f.test) == set(range(1, 24))
    assert folds == make_folds(subjects, "loso", 0)
    assert folds != loso_folds(subjects, seed=1)
    # every subject validates exactly n_val times
    counts = np.bincount([s for f in folds for s in f.val], minlength=24)[1:]
    assert counts.tolist() == [4] * 23
    assert FusionConfig(folds="loso").folds == "loso" and FusionConfig(folds="7").folds == 7
    with pytest.raises(ValueError, match="at least 3"):
        FusionConfig(folds=2)


def test_always_high_f1_is_2a_over_1_plus_a():
    y = np.r_[np.ones(81), np.zeros(27)]  # a = 0.75
    assert f1_score(y, constant(True, 108).astype(np.int64)) == pytest.approx(2 * 0.75 / 1.75)
    assert always_high_f1(0.75) == pytest.approx(0.857142857)
    # the paper's accuracies as High shares: 75, 81, 86 of 108 -> 81.97, 85.71, 88.66
    assert [round(100 * always_high_f1(k / 108), 2) for k in (75, 81, 86)] == [81.97, 85.71, 88.66]
    assert always_high_f1(0.0) == 0.0


def test_modality_masking_uses_a_learned_absent_token():
    d = {"eeg": 4, "ecg": 3}
    head = STRATEGIES["concat"](["eeg", "ecg"], d, n_patches=2, pool="flatten", hidden=5, dropout=0.0)
    with torch.no_grad():
        head.absent_eeg.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    x = torch.zeros(2, 2 * 4 + 2 * 3)
    out = head.blank(x, {"eeg": torch.tensor([True, False])})
    assert out[0, :8].tolist() == [1, 2, 3, 4, 1, 2, 3, 4] and out[1].abs().sum() == 0
    assert out[0, 8:].abs().sum() == 0  # the ECG part untouched
    g = torch.Generator().manual_seed(0)
    none = draw_absent(100, ["eeg", "ecg"], 0.0, g)
    assert not any(v.any() for v in none.values())
    every = draw_absent(1000, ["eeg", "ecg"], 1.0, g)
    assert torch.all(every["eeg"] ^ every["ecg"]) and 400 < int(every["eeg"].sum()) < 600


def test_loso_run_reports_rows_levels_holm_calibration_and_absent(stores, tmp_path, config_factory):
    cfg = config_factory(folds="loso", epochs=2, fusion=["concat", "hep"], modality_dropout=0.5)
    res = train(cfg, stores["small"], tmp_path / "loso", progress=False)
    m, text = res.metrics, res.report_path.read_text()
    assert m["n_folds"] == 6 and len(m["splits"]["seed0"]) == 6
    assert text.splitlines()[2].startswith("**Protocol: leave one subject out**")
    for needle in ("### Window level", "### Clip level", "Always high", "Always low", "2a/(1+a)",
                   "p (Holm)", "## Calibration", "## A missing signal", "High = rating ≥ 3"):
        assert needle in text, needle
    assert (res.out_dir / "reliability.png").is_file()
    assert set(m["absent"]) == {"fusion", "fusion-hep"} and set(m["absent"]["fusion"]) == {"eeg", "ecg"}
    assert m["rows"]["always_high"]["per_subject"]["valence"]["auc"]["mean"] == 0.5
    for dim in ("valence", "arousal", "dominance"):
        assert 0.0 <= m["rows"]["fusion"]["pooled"][dim]["ece"] <= 1.0
        for c in m["comparisons"][dim]["comparisons"]:
            assert c["auc"]["p_holm"] is None or c["auc"]["p_holm"] >= c["auc"]["p"]
