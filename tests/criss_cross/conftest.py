"""Fixtures of the criss-cross tests: small stores converted by biosig-prep from real records."""

from __future__ import annotations

from pathlib import Path

import pytest

# A window of 4 patches x 50 samples keeps the test encoder tiny (d_model = patch_size = 50)
# while the store goes through the real converter; 10 s records give 5 windows at 100 Hz and
# 10 at 200 Hz.
TINY_PREP = {"rates": [100, 200], "n_patches": 4, "patch_size": 50,
             "dreamer": {"window_seconds": 1.0}}
TINY_ENCODER = {"d_model": 50, "patch_size": 50, "n_heads": 2, "n_layers": 2,
                "dim_feedforward": 100}


@pytest.fixture(scope="session")
def cinc_store(shared_data: Path, tmp_path_factory) -> str:
    """The 50 real CinC 2021 records in ../shared/data, converted (ecg@100, ecg@200)."""
    from biosig_prep import convert
    from biosig_prep.config import PrepConfig

    src = shared_data / "ecg" / "cinc2021"
    if not src.is_dir():
        pytest.skip(f"{src} is absent")
    dst = tmp_path_factory.mktemp("cinc") / "cinc.zarr"
    summary = convert([src], dst, PrepConfig.model_validate(TINY_PREP), workers=0,
                      progress=False)
    assert summary.records_ok > 0
    return str(dst)


@pytest.fixture(scope="session")
def tiny_config(cinc_store):
    """A PretrainConfig for a tiny encoder on the converted records (one CPU thread)."""
    from criss_cross.pretrain import PretrainConfig

    def make(**kw):
        base = dict(stores=[cinc_store], streams=["ecg@100", "ecg@200"], encoder=TINY_ENCODER,
                    batch_size=16, steps=40, warmup_steps=5, checkpoint_every=10, log_every=5,
                    num_workers=0, threads=1)
        base.update(kw)
        return PretrainConfig.model_validate(base)

    return make


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (a module opts in with ``pytestmark``): on a busy 2-core
    machine OpenMP with two threads runs 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
