"""A tiny end-to-end bench on a generated Challenge-style store (seconds, not minutes)."""

from __future__ import annotations

import json

import pytest
from tests.criss_cross.conftest import TINY_ENCODER, TINY_PREP

from criss_cross.bench import BenchConfig, run_bench

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def challenge_store(tmp_path_factory) -> str:
    from biosig_prep import convert
    from biosig_prep.config import PrepConfig
    from biosig_prep.synth.challenge import write_challenge_corpus

    base = tmp_path_factory.mktemp("bench")
    write_challenge_corpus(base / "src", 24, sources=["E", "JS", "HR"], durations=[10.0],
                           quirks=False, broken=0, seed=3)
    prep = PrepConfig.model_validate({**TINY_PREP, "rates": [100]})
    convert([base / "src"], base / "c.zarr", prep, workers=0, progress=False)
    return str(base / "c.zarr")


def test_bench_challenge2021_end_to_end(challenge_store, tmp_path):
    cfg = BenchConfig(task="challenge2021", store=challenge_store, stream="ecg@100",
                      encoder=TINY_ENCODER, n_boot=30, probe_steps=50,
                      label_fractions=[0.5, 1.0], finetune_epochs=1, batch_size=16)
    doc = run_bench(cfg, tmp_path / "b")
    m = doc["metrics"]
    assert set(m) == {"encoder", "finetune", "random", "features", "prevalence"}
    for key in ("macro_auroc", "macro_f1", "ece", "brier", "challenge_score"):
        v = m["features"][key]
        assert v["value"] is not None and v["lo"] <= v["value"] + 1e-9 <= v["hi"] + 2e-9 or \
            v["lo"] is None
    assert m["prevalence"]["macro_auroc"]["value"] == pytest.approx(0.5)
    # random init is the encoder here: the paired difference is exactly zero
    d = doc["paired"]["encoder_minus_random"]["macro_auroc"]
    assert d["value"] == 0.0 and d["lo"] == 0.0 and d["hi"] == 0.0
    split = doc["split"]
    assert sum(c["records"] for c in split["counts"].values()) == doc["data"]["n_units"] == 24
    assert len(split["sha256"]) == 64
    assert [r["fraction"] for r in doc["label_efficiency"]] == [0.5, 1.0]
    report = (tmp_path / "b" / "report.md").read_text()
    assert "| Same architecture, random init, linear probe |" in report
    assert "| Handcrafted features, linear probe |" in report
    assert split["sha256"][:16] in report
    assert (tmp_path / "b" / "bench.png").read_bytes()[:4] == b"\x89PNG"
    again = json.loads((tmp_path / "b" / "split.json").read_text())
    assert again["sha256"] == split["sha256"]
    # the same seed gives the same split and numbers on a rerun (embeddings from the cache)
    rerun = run_bench(cfg.model_copy(update={"finetune_epochs": 0, "label_fractions": [1.0]}),
                      tmp_path / "c")
    assert rerun["split"]["sha256"] == split["sha256"]
    assert rerun["metrics"]["encoder"]["macro_auroc"] == m["encoder"]["macro_auroc"]
