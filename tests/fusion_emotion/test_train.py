"""Planted effects are learned on held-out subjects, nothing else is, and no test window leaks."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fusion_emotion import train
from fusion_emotion.cli import app
from fusion_emotion.config import DIMENSIONS

# the jobs (and the epoch loop they call) live in fusion_emotion.protocol
protocol_mod = importlib.import_module("fusion_emotion.protocol")


def _auc(metrics, row, dim):
    return metrics["rows"][row]["per_subject"][dim]["auc"]["mean"]


def test_planted_effects_learned_on_held_out_subjects(planted_run):
    m = planted_run.metrics
    for dim in DIMENSIONS:  # fusion sees both signals: every dimension is planted
        assert _auc(m, "fusion", dim) >= 0.8, (dim, _auc(m, "fusion", dim))
    assert _auc(m, "eeg", "valence") >= 0.8  # alpha power
    assert _auc(m, "ecg", "arousal") >= 0.8  # heart rate
    # nothing of the other effect is in a single modality
    assert 0.3 <= _auc(m, "eeg", "arousal") <= 0.7
    assert 0.3 <= _auc(m, "ecg", "valence") <= 0.7


def test_fusion_beats_each_modality_where_both_are_needed(planted_run):
    m = planted_run.metrics
    fusion = _auc(m, "fusion", "dominance")
    assert fusion > _auc(m, "eeg", "dominance") + 0.03
    assert fusion > _auc(m, "ecg", "dominance") + 0.03


def test_baselines_do_not_learn_planted_effects(planted_run):
    m = planted_run.metrics
    for dim in DIMENSIONS:
        assert _auc(m, "majority", dim) == pytest.approx(0.5)
        assert 0.2 <= _auc(m, "per_clip", dim) <= 0.8  # states are drawn per subject, not per clip


def test_no_effect_means_chance(stores, tmp_path, config_factory):
    result = train(config_factory(ablations=False, baselines=False), stores["none"], tmp_path / "none",
                   progress=False)
    for dim in DIMENSIONS:
        assert 0.3 <= _auc(result.metrics, "fusion", dim) <= 0.7, dim


def test_every_subject_tested_once_and_no_test_window_reaches_training(planted_run):
    out = planted_run.out_dir
    metrics = planted_run.metrics
    from biosig_prep import open_store

    subject = open_store(metrics["store"]).labels()["subject"]
    tested = []
    for f in sorted((out / "folds" / "seed0").glob("fold*/fusion.json")):
        r = json.loads(f.read_text())
        test_subjects = set(r["subjects"]["test"])
        assert set(subject[r["test_index"]]) == test_subjects
        assert not test_subjects & (set(r["subjects"]["train"]) | set(r["subjects"]["val"]))
        tested += r["subjects"]["test"]
    assert sorted(tested) == sorted(np.unique(subject).tolist())


def test_training_and_selection_never_see_test_subjects(stores, tmp_path, monkeypatch, config_factory):
    """Spy on every window index that reaches the model during training and selection."""
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    real_fit = protocol_mod.fit

    def spy_fit(module, groups, forward, y, subject, train_idx, val_idx, config, generator, on_epoch):
        used: list[np.ndarray] = []

        def spy_forward(idx):
            used.append(idx.numpy().copy())
            return forward(idx)

        out = real_fit(module, groups, spy_forward, y, subject, train_idx, val_idx, config, generator,
                       on_epoch)
        seen.append((np.concatenate(used), train_idx, val_idx))
        return out

    monkeypatch.setattr(protocol_mod, "fit", spy_fit)
    result = train(config_factory(epochs=2, ablations=False, baselines=False), stores["small"],
                   tmp_path / "spy", progress=False)
    from biosig_prep import open_store

    subject = open_store(result.metrics["store"]).labels()["subject"]
    assert len(seen) == 5 * 3  # folds x heads (frozen: each head trains on its own)
    test_sets = [set(f["test"]) for f in result.metrics["splits"]["seed0"]]
    for used, tr, va in seen:
        used_subjects = set(subject[used])
        assert set(np.concatenate([tr, va]).tolist()) == set(used.tolist())
        assert sum(used_subjects.isdisjoint(t) for t in test_sets) == 1  # exactly its own fold's test


def test_finetune_mode_trains_encoders(stores, tmp_path, config_factory):
    cfg = config_factory(freeze_encoders=False, epochs=1, folds=3, ablations=False, baselines=False,
                      save_encoders=True)
    result = train(cfg, stores["small"], tmp_path / "ft", progress=False)
    assert result.metrics["mode"] == "full fine-tuning"
    for dim in DIMENSIONS:
        assert np.isfinite(_auc(result.metrics, "fusion", dim))
    from safetensors.torch import load_file

    ck = tmp_path / "ft" / "checkpoints"
    state = load_file(ck / "seed0-fold0-fusion-valence.safetensors")
    assert any(k.startswith("encoders.eeg.") for k in state) and any(k.startswith("head.") for k in state)
    heads = load_file(ck / "seed0-fold0-fusion.safetensors")
    assert sorted(heads) == sorted(k[len("head."):] for k in state if k.startswith("head."))
    assert all(torch.equal(heads[k], state["head." + k]) for k in heads if ".valence." in k)


def test_cli_train_prints_report_path(stores, tmp_path, config_factory):
    cfg = tmp_path / "cfg.yaml"
    config_factory(epochs=1, folds=3).to_file(cfg)
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["train", "--store", str(stores["small"]), "--out", str(out),
                                   "--config", str(cfg), "--modalities", "ecg", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1] == f"report: {(out / 'report.md').resolve()}"
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["rows"]) == ["ecg", "majority", "per_clip", "always_high", "always_low"]
    assert metrics["config"]["folds"] == 3 and metrics["config"]["modalities"] == ["ecg"]


def test_cli_rejects_bad_options(stores, tmp_path):
    res = CliRunner().invoke(app, ["train", "--store", str(stores["planted"]), "--out",
                                   str(tmp_path / "x"), "--folds", "2", "--pool", "max"])
    assert res.exit_code == 1
    assert "folds:" in res.output and "pool:" in res.output


def test_missing_stream_is_named(stores, tmp_path, config_factory):
    with pytest.raises(ValueError, match="no stream 'eeg@128'.*available: ecg@200, eeg@200"):
        train(config_factory(eeg_stream="eeg@128"), stores["planted"], tmp_path / "bad", progress=False)


def test_swapped_eeg_and_ecg_streams_are_refused(stores, tmp_path, config_factory):
    # before issue 20 this ran with exit 0 and rows labelled EEG that were ECG
    with pytest.raises(ValueError, match="the EEG stream is 'ecg@200', which holds ECG windows"):
        train(config_factory(eeg_stream="ecg@200", ecg_stream="eeg@200"), stores["planted"],
              tmp_path / "swapped", progress=False)
