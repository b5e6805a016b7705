"""The ``hep`` strategy on a file whose dominance lives only in EEG-ECG timing (synth rule
"heartbeat": EEG events follow every R peak by 0.25 s for High, an independent train with the
same RR intervals for Low; content otherwise identical between the classes)."""

from __future__ import annotations

import numpy as np
import pytest

from fusion_emotion import train


def _auc(metrics, row, dim="dominance"):
    return metrics["rows"][row]["per_subject"][dim]["auc"]["mean"]


@pytest.fixture(scope="module")
def timing_store(tmp_path_factory):
    from biosig_prep.convert import convert
    from biosig_prep.synth.dreamer import write_dreamer_mat

    root = tmp_path_factory.mktemp("timing")
    mat = root / "timing.mat"
    write_dreamer_mat(mat, n_subjects=8, n_clips=8, clip_seconds=30.0, baseline_seconds=2.0, seed=5,
                      effects={"dominance_rule": "heartbeat"})
    convert([mat], root / "timing.zarr", fmt="dreamer", workers=0, progress=False)
    return root / "timing.zarr"


def test_hep_features_separate_the_planted_timing(timing_store):
    from fusion_emotion.data import open_dreamer
    from fusion_emotion.hep import HEP_DIM, PRE, hep_features
    from fusion_emotion.metrics import roc_auc

    d = open_dreamer(timing_store, {"eeg": "eeg@200", "ecg": "ecg@200"})
    h = hep_features(d.iter_chunks, 200.0, d.n_windows)
    assert h.shape == (d.n_windows, HEP_DIM)
    y = d.targets()[:, 2]
    # somewhere in the 0.25-0.5 s after the R peak (the 10 Hz burst) one point separates the classes
    aucs = [roc_auc(y, h[:, k]) for k in range(int(PRE * 100) + 25, int(PRE * 100) + 50)]
    assert max(max(aucs), 1 - min(aucs)) > 0.95


@pytest.mark.slow
def test_timing_strategy_beats_chance_where_content_rows_cannot(timing_store, tmp_path, config_factory):
    cfg = config_factory(fusion=["concat", "hep"], baselines=False, folds=4)
    m = train(cfg, timing_store, tmp_path / "timing", progress=False).metrics
    assert _auc(m, "fusion-hep") >= 0.85
    for row in ("fusion", "eeg", "ecg"):  # content only: nothing to learn
        assert 0.3 <= _auc(m, row) <= 0.7, (row, _auc(m, row))
    # the other planted effects are still in the content
    assert _auc(m, "fusion-hep", "arousal") >= 0.8
    assert np.isfinite(_auc(m, "fusion-hep", "valence"))
