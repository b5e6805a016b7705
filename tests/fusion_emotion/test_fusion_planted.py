"""What each strategy learns on planted data, the paired statistics and the report around them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import wilcoxon

from fusion_emotion import train
from fusion_emotion.config import FUSIONS, fusion_row
from fusion_emotion.stats import bootstrap_ci, paired, subject_values


def _auc(metrics, row, dim):
    return metrics["rows"][row]["per_subject"][dim]["auc"]["mean"]


def test_cross_attention_sees_time_alignment_concat_does_not(aligned_store, tmp_path, config_factory):
    """Dominance High iff the ECG bursts fall in the EEG bursts' seconds: the same number of
    bursts either way, so pooling each signal over time first leaves nothing to learn."""
    cfg = config_factory(fusion=["concat", "cross-attention"], ablations=False, baselines=False)
    m = train(cfg, aligned_store, tmp_path / "aligned", progress=False).metrics
    assert _auc(m, "fusion-cross-attention", "dominance") >= 0.85
    assert 0.3 <= _auc(m, "fusion", "dominance") <= 0.7
    for dim in ("valence", "arousal"):  # the other planted effects are still there for both
        assert _auc(m, "fusion", dim) >= 0.8 and _auc(m, "fusion-cross-attention", dim) >= 0.8


def test_every_strategy_does_as_well_as_the_single_modalities(planted_all_run):
    """On the existing effects (valence <- EEG, arousal <- ECG, dominance <- both)."""
    m = planted_all_run.metrics
    assert sorted(planted_all_run.trained) == sorted(
        f"seed0/fold{k}/{fusion_row(f)}" for k in range(5) for f in FUSIONS if f != "concat")
    for f in FUSIONS:
        row = fusion_row(f)
        for dim in ("arousal", "dominance"):
            best_single = max(_auc(m, "eeg", dim), _auc(m, "ecg", dim))
            assert _auc(m, row, dim) >= best_single - 0.02, (row, dim)
        # where both signals are needed, every strategy beats each single modality
        assert _auc(m, row, "dominance") > max(_auc(m, "eeg", "dominance"), _auc(m, "ecg", "dominance"))
        # valence lives in the EEG alone: the ECG half of a fused input is noise to the head,
        # and with 6 training subjects that costs a few points (see docs/benchmarks.md)
        # hep adds 72 HEP features that carry nothing here: with 216 training windows they cost it
        # more (measured 0.85 against EEG-only 0.99 on valence; a known weakness, issue 18 report)
        slack = 0.2 if f == "hep" else 0.1
        assert _auc(m, row, "valence") >= _auc(m, "eeg", "valence") - slack, row
    for dim, block in m["comparisons"].items():
        for c in block["comparisons"]:
            if dim != "valence" and c["kind"] == "single" and c["row"].startswith("fusion"):
                worse = c["auc"]["distinguishable"] and c["auc"]["diff"] < 0
                assert not worse, (dim, c)


def test_paired_statistics_are_scipy_and_a_bootstrap_over_subjects():
    rng = np.random.default_rng(0)
    a = {s: 0.7 + 0.05 * rng.normal() for s in range(23)}
    b = {s: v - 0.1 + 0.02 * rng.normal() for s, v in a.items()}
    b[99] = 0.5  # a subject only one row has is left out
    r = paired(a, b)
    d = np.array([a[s] - b[s] for s in range(23)])
    assert r["n"] == 23 and r["diff"] == pytest.approx(d.mean())
    assert r["p"] == pytest.approx(wilcoxon(d).pvalue)
    assert r["ci"][0] < d.mean() < r["ci"][1] and r["ci"][0] > 0 and r["distinguishable"]
    assert paired(a, b) == r  # a fixed generator: the same report twice
    noise = paired(a, {s: v + 0.03 * rng.normal() for s, v in a.items()})
    assert noise["ci"][0] < 0 < noise["ci"][1] and not noise["distinguishable"]
    same = paired(a, a)
    assert same["diff"] == 0 and same["p"] == 1.0 and not same["distinguishable"]
    lo, hi = bootstrap_ci(np.full(5, 0.8))
    assert lo == hi == pytest.approx(0.8)


def test_seeds_are_averaged_per_subject_first():
    def result(seed, values):
        return {"seed": seed, "metrics": {"valence": {"per_subject": {
            str(s): {"auc": v} for s, v in values.items()}}}}

    res = [result(0, {1: 0.6, 2: 0.8}), result(1, {1: 0.8, 2: None}), result(2, {1: 0.7})]
    assert subject_values(res, "valence", "auc") == pytest.approx({1: 0.7, 2: 0.8})


def test_report_shows_the_comparisons_and_the_subject_plot(planted_all_run):
    out = planted_all_run.out_dir
    text = (out / "report.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "subject_auc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![subject_auc](subject_auc.png)" in text
    assert "## Paired comparisons" in text and "In words" in text
    for label in ("Fusion: concat (EEG+ECG)", "Fusion: late (EEG+ECG)", "Fusion: gated (EEG+ECG)",
                  "Fusion: cross-attention (EEG+ECG)"):
        assert f"| {label} |" in text
    dom = metrics["comparisons"]["dominance"]
    assert dom["best_baseline"] in ("majority", "per_clip") and dom["best_single"] in ("eeg", "ecg")
    c = next(c for c in dom["comparisons"] if c["row"] == "fusion-gated" and c["kind"] == "baseline")
    a = c["auc"]
    cell = f"{100 * a['diff']:+.1f} [{100 * a['ci'][0]:+.1f}, {100 * a['ci'][1]:+.1f}]"
    assert "| dominance | Fusion: gated (EEG+ECG) | " in text and cell in text
    assert a["distinguishable"]  # a planted effect against a baseline is no noise
    # per-subject AUCs behind the plot: one per test subject, their mean is the pooled-seed mean
    assert len(metrics["subject_auc"]["valence"]["fusion-late"]) == metrics["n_subjects"]


def test_cli_bad_config_device_and_out_are_one_line(stores, tmp_path):
    from typer.testing import CliRunner

    from fusion_emotion.cli import app

    def run(*extra):
        return CliRunner().invoke(app, ["train", "--store", str(stores["small"]), "--out",
                                        str(tmp_path / "x"), "--no-progress", *extra])

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    evil = tmp_path / "evil.yaml"
    evil.write_text("epochs: !!python/object/apply:os.system ['echo pwned']\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for res, words in (
        (run("--config", str(bad)), [str(bad), "could not be parsed"]),
        (run("--config", str(evil)), [str(evil), "could not be parsed"]),
        (run("--config", str(tmp_path / "none.yaml")), ["none.yaml", "does not exist"]),
        (run("--device", "tpu"), ["--device", "tpu"]),
        (run("--fusion", "film"), ["fusion"]),
    ):
        assert res.exit_code == 1, res.output
        assert "Traceback" not in res.output and all(w in res.output for w in words), res.output
    res = CliRunner().invoke(app, ["train", "--store", str(stores["small"]), "--out", str(a_file)])
    assert res.exit_code == 1 and f"--out {a_file} is a file" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert "pwned" not in run("--config", str(evil)).output
