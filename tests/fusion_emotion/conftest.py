"""Fixtures of the fusion-emotion tests: small synthetic DREAMER stores and one shared run.

The stores come from the same chain a user runs: ``biosig_prep.synth.dreamer.write_dreamer_mat``
writes a DREAMER.mat-format file with planted effects (valence <- EEG alpha power, arousal <- ECG
heart rate, dominance <- both: High iff both are High), ``biosig_prep.convert`` turns it into a
store. Encoders are one-layer criss-cross encoders with random weights, frozen: band power and
heart rate survive a random conv + attention stack well enough for the heads to learn them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fusion_emotion import FusionConfig, train

N_SUBJECTS, N_CLIPS, CLIP_SECONDS = 10, 12, 30.0  # 3 windows per clip, 360 windows


def make_store(root: Path, name: str, *, effects="planted", seed: int = 1, n_subjects: int = N_SUBJECTS,
               n_clips: int = N_CLIPS, clip_seconds: float = CLIP_SECONDS) -> Path:
    from biosig_prep.convert import convert
    from biosig_prep.synth.dreamer import write_dreamer_mat

    mat = root / f"{name}.mat"
    write_dreamer_mat(mat, n_subjects=n_subjects, n_clips=n_clips, clip_seconds=clip_seconds,
                      baseline_seconds=2.0, seed=seed, effects=effects)
    store = root / f"{name}.zarr"
    convert([mat], store, fmt="dreamer", workers=0, progress=False)
    mat.unlink()
    return store


def tiny_config(**overrides) -> FusionConfig:
    """Frozen one-layer encoders, mean over patches, a longer constant-lr schedule for 216
    training windows (the paper's 10 epochs with StepLR(4) are sized for ~4,800)."""
    small = {"n_layers": 1, "dim_feedforward": 200}
    values = dict(freeze_encoders=True, eeg_encoder=small, ecg_encoder=small, pool="mean",
                  epochs=15, step_size=100)
    values.update(overrides)
    return FusionConfig(**values)


@pytest.fixture(scope="session")
def config_factory():
    """:func:`tiny_config` (tests import nothing from conftest under --import-mode=importlib)."""
    return tiny_config


@pytest.fixture(scope="session")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dreamer")
    return {"planted": make_store(root, "planted", seed=1),
            "none": make_store(root, "none", effects="none", seed=2),
            # 6 subjects x 4 clips x 2 windows: for tests of the machinery, not of learning
            "small": make_store(root, "small", seed=3, n_subjects=6, n_clips=4, clip_seconds=20.0)}


@pytest.fixture(scope="session")
def aligned_store(tmp_path_factory) -> Path:
    """Dominance planted as a time-aligned interaction (synth rule "aligned"): High when the ECG
    bursts fall in the same seconds as the EEG bursts; valence and arousal as in "planted"."""
    return make_store(tmp_path_factory.mktemp("aligned"), "aligned", seed=4,
                      effects={"dominance_rule": "aligned"})


@pytest.fixture(scope="session")
def planted_run(stores, tmp_path_factory):
    """Fusion, EEG-only, ECG-only and both baselines, 5 folds, on the planted store."""
    return train(tiny_config(), stores["planted"], tmp_path_factory.mktemp("run") / "planted",
                 progress=False)


@pytest.fixture(scope="session")
def planted_all_run(planted_run, stores, tmp_path_factory):
    """``--fusion all`` on the planted store: the concat run extended by the other strategies
    (a resumed run adds rows; concat, EEG-only and ECG-only are reused)."""
    import shutil

    out = tmp_path_factory.mktemp("run_all") / "planted_all"
    shutil.copytree(planted_run.out_dir, out)
    return train(tiny_config(fusion="all"), stores["planted"], out, progress=False)
