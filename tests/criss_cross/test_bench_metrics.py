"""The bench's metrics, splits, features and task labels against hand-computed cases."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from criss_cross.bench.features import rr_features, window_features
from criss_cross.bench.metrics import (
    bootstrap,
    brier,
    choose_thresholds,
    ece,
    macro_auroc,
    macro_f1_at,
    paired_bootstrap,
    within_patient_auroc,
)
from criss_cross.bench.splits import group_split, manifest_hash, ptbxl_split, split_manifest


def _mean_p(y, p):
    return float(np.mean(p))


def test_auroc_by_hand_and_against_the_probe():
    y = np.array([[1], [0], [1], [0]], dtype=bool)
    p = np.array([[0.9], [0.4], [0.35], [0.1]])
    # positive-negative pairs ranked correctly: (0.9, 0.4), (0.9, 0.1), (0.35, 0.1) of 4
    assert macro_auroc(y, p) == pytest.approx(0.75)
    from criss_cross.probe.challenge import macro_auroc as probe_auroc

    rng = np.random.default_rng(1)
    yy = rng.random((40, 5)) < 0.3
    pp = np.round(rng.random((40, 5)), 1)  # ties
    assert macro_auroc(yy, pp) == pytest.approx(probe_auroc(yy, pp)[0], abs=1e-12)
    yy = rng.random((300, 2)) < 0.3  # above 256 rows: the rank path
    pp = np.round(rng.random((300, 2)), 2)
    assert macro_auroc(yy, pp) == pytest.approx(probe_auroc(yy, pp)[0], abs=1e-12)


def test_ece_and_brier_by_hand():
    y = np.array([1, 0, 1, 0], dtype=float)
    p = np.array([0.9, 0.92, 0.2, 0.1])
    # bins of 1/15: 0.9 and 0.92 share bin 13 (mean y 0.5, mean p 0.91); 0.2 bin 3; 0.1 bin 1
    assert ece(y, p) == pytest.approx(2 / 4 * 0.41 + 1 / 4 * 0.8 + 1 / 4 * 0.1)
    assert ece(np.array([1.0]), np.array([1.0])) == 0.0  # 1.0 falls in the last bin
    assert brier(y, p) == pytest.approx((0.01 + 0.92 ** 2 + 0.64 + 0.01) / 4)


def test_thresholds_maximise_validation_f1():
    y = np.array([[1], [1], [0], [0]], dtype=bool)
    p = np.array([[0.8], [0.6], [0.7], [0.1]])
    # F1 at 0.8: 2/3, at 0.7: 1/2, at 0.6: 4/5, at 0.1: 2/3
    assert choose_thresholds(y, p).tolist() == [0.6]
    assert choose_thresholds(np.zeros((3, 1), bool), p[:3]).tolist() == [0.5]
    assert macro_f1_at(np.array([0.6]))(y, p) == pytest.approx(0.8)


def test_bootstrap_over_patients_with_a_fixed_seed():
    groups = np.array(["a", "a", "b", "c"])
    p = np.array([1.0, 3.0, 5.0, 8.0])[:, None]
    y = np.zeros_like(p)
    # default_rng(0).integers(0, 3, (4, 3)) = [[2,1,1],[0,0,0],[0,0,0],[2,1,2]] over (a, b, c):
    # rows [8,5,5] -> 6, a x3 -> 2, 2, [8,5,8] -> 7; percentiles of [2, 2, 6, 7]
    out = bootstrap(_mean_p, y, p, groups, n_boot=4, seed=0, min_groups=1)
    assert out["value"] == pytest.approx(4.25)
    assert out["lo"] == pytest.approx(2.0)
    assert out["hi"] == pytest.approx(6 + 0.925)


def test_paired_bootstrap_by_hand():
    groups = np.array(["a", "a", "b", "c"])
    pa = np.array([1.0, 3.0, 5.0, 8.0])[:, None]
    pb = np.array([2.0, 2.0, 5.0, 9.0])[:, None]
    y = np.zeros_like(pa)
    # row differences [-1, 1, 0, -1]; the same draws give -1/3, 0, 0, -2/3
    out = paired_bootstrap(_mean_p, y, pa, pb, groups, n_boot=4, seed=0, min_groups=1)
    assert out["value"] == pytest.approx(-0.25)
    assert out["lo"] == pytest.approx(-2 / 3 + 0.075 / 3)
    assert out["hi"] == pytest.approx(0.0)
    assert out["p"] == pytest.approx(1.0)  # 2 * min(P(d <= 0) = 1, P(d >= 0) = 0.5)
    # three patients are too few for an interval by default: no interval, no p-value
    few = bootstrap(_mean_p, y, pa, groups, n_boot=4, seed=0)
    assert few["value"] == pytest.approx(4.25) and np.isnan(few["lo"]) and np.isnan(few["hi"])
    assert np.isnan(paired_bootstrap(_mean_p, y, pa, pb, groups)["p"])
    same = paired_bootstrap(_mean_p, y, pa + 0.1, pa, groups, n_boot=50, seed=3, min_groups=1)
    assert same["lo"] == pytest.approx(0.1) and same["hi"] == pytest.approx(0.1)
    assert same["p"] == 0.0


def test_within_patient_auroc_shows_a_probe_that_only_separates_patients():
    groups = np.array(["p1", "p1", "p2", "p2"])
    y = np.array([[1], [1], [0], [0]], dtype=bool)
    p = np.array([[0.9], [0.8], [0.2], [0.1]])
    assert macro_auroc(y, p) == 1.0
    assert within_patient_auroc(y, p, groups)["n_patients"] == 0
    y2 = np.array([[1], [0], [1], [0]], dtype=bool)
    p2 = np.array([[0.9], [0.1], [0.3], [0.6]])
    w = within_patient_auroc(y2, p2, groups)
    assert w["n_patients"] == 2 and w["median"] == pytest.approx(0.5)


def test_split_manifest_hash_is_stable_and_splits_keep_patients_whole():
    ids = np.array(["r1", "r2", "r3", "r4"])
    groups = np.array(["p1", "p1", "p2", "p3"])
    parts = np.array(["train", "train", "test", "val"])
    canonical = '{"test":["r3"],"train":["r1","r2"],"val":["r4"]}'
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert manifest_hash({"train": ["r2", "r1"], "test": ["r3"], "val": ["r4"]}) == expected
    m = split_manifest(ids[::-1], groups[::-1], parts[::-1], method="m", seed=0, store="s")
    assert m["sha256"] == expected and m["counts"]["train"] == {"records": 2, "groups": 1}
    assert manifest_hash({"train": ["r1"], "test": ["r3", "r2"], "val": ["r4"]}) != expected
    with pytest.raises(ValueError, match="leaks 1 group"):
        split_manifest(ids, groups, np.array(["train", "test", "test", "val"]), method="m",
                       seed=0, store="s")
    g = np.repeat(np.array([f"p{i}" for i in range(10)]), 3)
    a = group_split(g, seed=4)
    assert (a == group_split(g, seed=4)).all()
    for name in np.unique(g):
        assert len(set(a[g == name])) == 1
    strata = {"p0": "1", "p1": "1", "p2": "0", "p3": "0"}
    s = group_split(np.array(["p0", "p1", "p2", "p3"]), strata=strata, seed=0)
    assert sorted(s) == ["test", "test", "train", "train"]
    assert {strata[f"p{i}"] for i in range(4) if s[i] == "test"} == {"0", "1"}
    assert ptbxl_split(np.array([1, 8, 9, 10])).tolist() == ["train", "train", "val", "test"]


def test_challenge_equivalent_codes_are_one_class_in_training():
    from criss_cross.probe.challenge import merge_challenge_codes

    # record JS20052 carries 713427006 (CRBBB); the scored class is 713427006|59118001
    assert merge_challenge_codes(["713427006", "164889003"]) == ["59118001", "164889003"]
    assert merge_challenge_codes(["59118001", "713427006"]) == ["59118001"]
    assert merge_challenge_codes(["733534002", "284470004", "427172004"]) == [
        "164909002", "63593006", "17338001"]


def test_rr_features_by_hand_and_r_peaks_of_a_synthetic_rhythm():
    f = rr_features(np.array([0, 100, 200, 300]), fs=100.0, duration_s=4.0)
    assert f.tolist() == pytest.approx([60.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    f = rr_features(np.array([0, 100, 250, 350]), fs=100.0, duration_s=4.0)
    # RR 1.0, 1.5, 1.0 s: mean 7/6 s -> 51.43 bpm; successive differences +0.5, -0.5 s
    assert f[0] == pytest.approx(60 / (3.5 / 3))
    assert f[2] == pytest.approx(500.0) and f[3] == 1.0
    fs, n = 200.0, 2000
    x = np.zeros((1, 12, 10, 200))
    beats = np.arange(100, n, 160)  # every 0.8 s: 75 bpm
    t = np.arange(n)
    lead = sum(np.exp(-0.5 * ((t - b) / 3.0) ** 2) for b in beats)
    x[0, 1] = lead.reshape(10, 200)
    cm = np.zeros((1, 12), bool)
    cm[0, 1] = True
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    feats = window_features(x, cm, np.ones((1, 10), bool), leads, fs)
    assert feats[0, 0] == pytest.approx(75.0, abs=0.5)
    assert feats[0, 7] == 0.0  # lead I is missing: its peak-to-peak is zero
