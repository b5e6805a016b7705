"""A killed run resumes fold by fold and ends with the same numbers as an uninterrupted one."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest

from fusion_emotion import train

protocol_mod = importlib.import_module("fusion_emotion.protocol")


def _numbers(metrics):
    return {k: metrics[k] for k in ("rows", "folds", "history", "splits")}


@pytest.fixture(scope="module")
def reference(stores, tmp_path_factory, config_factory):
    cfg = config_factory(epochs=3, folds=3)
    out = tmp_path_factory.mktemp("resume") / "reference"
    return cfg, train(cfg, stores["small"], out, progress=False)


def test_rerun_skips_finished_folds_and_gives_the_same_result(stores, reference, tmp_path):
    cfg, ref = reference
    out = tmp_path / "run"
    shutil.copytree(ref.out_dir, out)
    for f in (out / "folds" / "seed0" / "fold1").glob("*.json"):
        f.unlink()
    (out / "folds" / "seed0" / "fold2" / "eeg.json").unlink()
    (out / "metrics.json").unlink()
    again = train(cfg, stores["small"], out, progress=False)
    assert sorted(again.trained) == ["seed0/fold1/ecg", "seed0/fold1/eeg", "seed0/fold1/fusion",
                                     "seed0/fold2/eeg"]
    assert len(again.skipped) == 5
    assert _numbers(again.metrics) == _numbers(ref.metrics)


def test_killed_run_resumes(stores, reference, tmp_path, monkeypatch):
    cfg, ref = reference
    out = tmp_path / "killed"
    real = protocol_mod.Runner.run_job
    calls = {"n": 0}

    def dies_on_the_fourth_job(self, job, on_epoch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("killed")
        return real(self, job, on_epoch)

    monkeypatch.setattr(protocol_mod.Runner, "run_job", dies_on_the_fourth_job)
    with pytest.raises(KeyboardInterrupt):
        train(cfg.model_copy(update={"jobs": 1}), stores["small"], out, progress=False)
    assert not (out / "metrics.json").exists()
    finished = sorted(p.name for p in (out / "folds").rglob("*.json"))
    assert len(finished) == 3
    monkeypatch.setattr(protocol_mod.Runner, "run_job", real)
    again = train(cfg, stores["small"], out, progress=False)
    assert len(again.skipped) == 3 and len(again.trained) == 6
    assert _numbers(again.metrics) == _numbers(ref.metrics)


def test_changed_settings_are_refused(stores, reference, tmp_path):
    cfg, ref = reference
    out = tmp_path / "changed"
    shutil.copytree(ref.out_dir, out)
    with pytest.raises(ValueError, match=r"different settings \(lr: 0.001 -> 0.01\).*--no-resume"):
        train(cfg.model_copy(update={"lr": 1e-2}), stores["small"], out, progress=False)
    # more seeds extend the run: the finished seed is kept
    more = train(cfg.model_copy(update={"seeds": [0, 1]}), stores["small"], out, progress=False)
    assert len(more.skipped) == 9 and len(more.trained) == 9
    assert json.loads((out / "metrics.json").read_text())["config"]["seeds"] == [0, 1]
    fresh = train(cfg, stores["small"], out, progress=False, resume=False)
    assert len(fresh.trained) == 9 and _numbers(fresh.metrics) == _numbers(ref.metrics)
