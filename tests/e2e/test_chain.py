"""The whole chain at tiny scale, through the three CLIs, checking the numbers at every hand-off.

Challenge-style corpus (synth) -> ``biosig-prep convert`` -> ``criss-cross pretrain`` ->
DREAMER.mat (synth) -> ``biosig-prep convert --format dreamer`` -> ``fusion-emotion train`` with
the pretrained ECG encoder -> report.md / metrics.json. The same commands as ``make demo``
(tools/demo.sh), with a tiny window (4 patches x 50 samples) and a tiny encoder so the chain runs
in well under a minute on two cores. The CLIs run in this process (``typer.testing.CliRunner``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

# 4 patches x 50 samples: a window is 2 s at 100 Hz, 1 s at 200 Hz (DREAMER: 1 s windows).
TINY_PREP = {"rates": [100, 200], "n_patches": 4, "patch_size": 50,
             "dreamer": {"window_seconds": 1.0}}
WINDOW = TINY_PREP["n_patches"] * TINY_PREP["patch_size"]
TINY_ENCODER = {"d_model": 50, "patch_size": 50, "n_heads": 2, "n_layers": 2,
                "dim_feedforward": 100}
N_RECORDS, BROKEN = 24, 5
SUBJECTS, CLIPS, CLIP_SECONDS = 5, 4, 6
PRETRAIN_STEPS = 60

runner = CliRunner()


def invoke(app, args: list[str], ok=(0,)):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code in ok, f"exit {result.exit_code}\n{result.output}"
    return result


def _biosig_app():
    from biosig_prep.cli import app

    return app


# ---- the chain, one fixture per hand-off -------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("chain")
    (d / "prep.yaml").write_text(yaml.safe_dump(TINY_PREP))
    return d


@pytest.fixture(scope="module")
def corpus(work) -> dict:
    out = work / "challenge"
    invoke(_biosig_app(), ["synth", "challenge", out, "--n-records", N_RECORDS,
                           "--broken", BROKEN, "--long-seconds", 40, "--seed", 0])
    return json.loads((out / "manifest.json").read_text()) | {"dir": out}


@pytest.fixture(scope="module")
def ecg_store(work, corpus):
    dst = work / "ecg.zarr"
    # exit 3: the store is complete, some records were skipped (the broken files, on purpose)
    res = invoke(_biosig_app(), ["convert", corpus["dir"], dst, "--config", work / "prep.yaml",
                                 "--workers", 0, "--no-progress"], ok=(3,))
    return {"path": dst, "output": res.output, "config": work / "prep.yaml"}


@pytest.fixture(scope="module")
def pretrain_run(work, ecg_store):
    from criss_cross.cli import app

    out = work / "pretrain"
    cfg = {"encoder": TINY_ENCODER, "batch_size": 16, "steps": PRETRAIN_STEPS,
           "warmup_steps": 5, "checkpoint_every": PRETRAIN_STEPS, "log_every": 5,
           "num_workers": 0, "threads": 1}
    (work / "pretrain.yaml").write_text(yaml.safe_dump(cfg))
    invoke(app, ["pretrain", "--store", ecg_store["path"], "--stream", "ecg@100",
                 "--stream", "ecg@200", "--config", work / "pretrain.yaml", "--out", out,
                 "--no-progress"])
    return out


@pytest.fixture(scope="module")
def dreamer_mat(work):
    path = work / "DREAMER.mat"
    truth = work / "truth.json"
    invoke(_biosig_app(), ["synth", "dreamer", path, "--subjects", SUBJECTS, "--clips", CLIPS,
                           "--clip-seconds", CLIP_SECONDS, "--baseline-seconds", 2,
                           "--seed", 0, "--truth", truth])
    return {"path": path, "truth": json.loads(truth.read_text())}


@pytest.fixture(scope="module")
def dreamer_store(work, dreamer_mat):
    dst = work / "dreamer.zarr"
    invoke(_biosig_app(), ["convert", dreamer_mat["path"], dst, "--format", "dreamer",
                           "--config", work / "prep.yaml", "--workers", 0, "--no-progress"])
    return dst


@pytest.fixture(scope="module")
def ecg_checkpoint(pretrain_run) -> Path:
    from criss_cross.pretrain import latest_checkpoint

    return latest_checkpoint(pretrain_run) / "model.safetensors"


@pytest.fixture(scope="module")
def fusion_run(work, dreamer_store, ecg_checkpoint):
    from fusion_emotion.cli import app

    out = work / "fusion"
    # no official CBraMod weights here: a tiny randomly initialised EEG encoder (loud warning)
    (work / "fusion.yaml").write_text(yaml.safe_dump({"eeg_encoder": TINY_ENCODER}))
    res = invoke(app, ["train", "--store", dreamer_store, "--ecg-weights", ecg_checkpoint,
                       "--config", work / "fusion.yaml", "--freeze-encoders", "--folds", 5,
                       "--epochs", 3, "--out", out, "--no-progress"])
    return {"dir": out, "output": res.output}


# ---- the hand-offs -----------------------------------------------------------------------------


def _expected_windows(n_samples: int, fs: int, rate: int) -> int:
    # polyphase resampling to `rate` gives ceil(n * rate / fs) samples; whole windows, plus a
    # zero-padded tail window when at least half its patches are whole (tail policy pad)
    n = -(-n_samples * rate // fs)
    patch, n_patches = TINY_PREP["patch_size"], TINY_PREP["n_patches"]
    tail = (n % WINDOW) // patch >= -(-n_patches // 2)
    return n // WINDOW + int(tail)


def test_corpus_store_counts_match_the_manifest(corpus, ecg_store):
    from biosig_prep.store import open_store

    recs = {r["record"]: r for r in corpus["records"]}
    assert len(recs) == N_RECORDS
    store = open_store(ecg_store["path"])
    s = store.summary
    assert s["records_in"] == N_RECORDS
    rows = store.records()
    status = dict(zip(rows["id"].tolist(), rows["status"].tolist(), strict=True))
    assert set(status) == set(recs)
    for rid, r in recs.items():
        if r["expected_status"] == "ok":
            assert status[rid] == "ok", (rid, r["quirks"], status[rid])
        elif r["expected_status"] in ("read_error", "qc_error"):
            assert status[rid] != "ok", (rid, r["broken"])
    skipped = [rid for rid, st in status.items() if st != "ok"]
    assert s["records_skipped"] == len(skipped)
    assert len(skipped) >= BROKEN - 1  # a flat lead may be masked instead of rejected
    for rid in skipped:  # convert lists every skipped record with its reason
        assert f"({rid}): {status[rid]}" in ecg_store["output"], rid

    # the same command again: the store is complete, nothing is redone, same exit code
    again = invoke(_biosig_app(), ["convert", corpus["dir"], ecg_store["path"], "--config",
                                   ecg_store["config"], "--workers", 0, "--no-progress"], ok=(3,))
    assert "already complete" in again.output
    assert open_store(ecg_store["path"]).summary == s

    row_of = {rid: i for i, rid in enumerate(rows["id"].tolist())}
    for rate in TINY_PREP["rates"]:
        name = f"ecg@{rate}"
        stream = store.stream(name)
        want = {rid: _expected_windows(recs[rid]["n_samples"], recs[rid]["fs"], rate)
                for rid, st in status.items() if st == "ok"}
        assert len(stream) == s["windows"][name] == sum(want.values()), name
        got = np.bincount(stream.record[:], minlength=len(row_of))
        for rid, n in want.items():
            assert got[row_of[rid]] == n, (name, rid)
        # a reduced-lead record is zero-filled and flagged in channel_mask
        for rid, r in recs.items():
            if status[rid] == "ok" and len(r["leads"]) < 12 and want[rid]:
                mask = stream.channel_mask[:][stream.record[:] == row_of[rid]]
                assert mask.sum(axis=1).tolist() == [len(r["leads"])] * want[rid], rid


def test_pretraining_loss_falls(pretrain_run, ecg_checkpoint):
    rows = [json.loads(line) for line in (pretrain_run / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    assert rows[-1]["step"] == PRETRAIN_STEPS
    loss = np.array([r["loss"] for r in rows])
    zeros = np.array([r["zero_mse"] for r in rows])  # predicting zeros on the same positions
    assert np.all(np.isfinite(loss))
    # the reconstruction head starts at zero, so the run starts at the zero predictor's loss (the
    # first row averages the first log interval) and must end below it: it learned more than scale
    assert loss[0] == pytest.approx(zeros[0], rel=0.05)
    assert loss[-3:].mean() < 0.95 * zeros[-3:].mean(), (loss.round(4), zeros.round(4))
    assert ecg_checkpoint.is_file()
    from criss_cross import load_checkpoint

    model = load_checkpoint(ecg_checkpoint)
    assert model.config.n_layers == TINY_ENCODER["n_layers"]


def test_dreamer_store_matches_the_file(dreamer_mat, dreamer_store):
    from biosig_prep.store import open_store

    truth = dreamer_mat["truth"]
    store = open_store(dreamer_store)
    per_trial = int(CLIP_SECONDS // TINY_PREP["dreamer"]["window_seconds"])
    n = SUBJECTS * CLIPS * per_trial
    assert sorted(store.stream_names) == ["ecg@200", "eeg@200"]
    assert len(store.stream("eeg@200")) == len(store.stream("ecg@200")) == n
    assert store.summary["records_ok"] == SUBJECTS * CLIPS
    lab = store.labels()
    assert all(len(v) == n for v in lab.values())
    np.testing.assert_array_equal(np.bincount(lab["subject"]), [CLIPS * per_trial] * SUBJECTS)
    for dim in ("valence", "arousal", "dominance"):
        scores = np.asarray(truth[f"score_{dim}"])
        np.testing.assert_array_equal(lab[dim], scores[lab["subject"], lab["clip"]])


def _table1(report: str, level: str = "Window") -> dict[str, list[str]]:
    """Row label -> the nine cells of the report's Table 1 at ``level`` ("Window" or "Clip":
    the report's two sub-tables)."""
    section = report.split("## Table 1", 1)[1].split("\n## ", 1)[0]
    section = section.split(f"### {level} level", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| Method"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_fusion_report_holds_the_metrics(fusion_run, dreamer_store, ecg_checkpoint):
    from fusion_emotion.cli import app

    out = fusion_run["dir"]
    assert str((out / "report.md").resolve()) in fusion_run["output"].replace("\n", "")
    metrics = json.loads((out / "metrics.json").read_text())
    report = (out / "report.md").read_text()
    assert metrics["n_windows"] == SUBJECTS * CLIPS * CLIP_SECONDS
    assert metrics["n_subjects"] == SUBJECTS
    # the pretrained ECG encoder was used; the EEG encoder is random, and both files say so
    enc = metrics["encoders"]
    assert enc["ecg"]["source"] == "checkpoint"
    assert Path(enc["ecg"]["path"]).resolve() == ecg_checkpoint.resolve()
    assert enc["eeg"]["source"] == "random-init"
    assert any("EEG" in w and "random" in w for w in metrics["warnings"])
    assert "WARNING" in report
    # every subject is tested exactly once across the folds
    tested = sorted(s for f in metrics["splits"]["seed0"] for s in f["test"])
    assert tested == list(range(SUBJECTS))
    # Table 1 of the report = metrics.json, cell by cell, at both levels (window and clip)
    assert metrics["levels"] == ["window", "clip"]
    assert set(metrics["rows"]) >= {"fusion", "eeg", "ecg", "majority", "per_clip"}
    assert metrics["rows_by_level"]["window"] == metrics["rows"]
    for level, rows in metrics["rows_by_level"].items():
        table = _table1(report, level.capitalize())
        assert table["Ghallab et al. (paper)"][:3] == ["69.44", "81.14", "68.69"]
        assert set(rows) == set(metrics["rows"])
        for row in rows.values():
            cells = table[row["label"]]
            k = 0
            for dim in ("valence", "arousal", "dominance"):
                for m in ("acc", "f1", "auc"):
                    stat = row["per_subject"][dim][m]
                    if stat["mean"] is None:
                        assert cells[k] == "–"
                    else:
                        mean, std = (float(x) for x in re.findall(r"-?\d+\.\d+", cells[k]))
                        assert mean == pytest.approx(100 * stat["mean"], abs=0.006)
                        assert std == pytest.approx(100 * stat["std"], abs=0.006)
                        assert 0 <= stat["mean"] <= 1
                    k += 1
    table = _table1(report)
    for png in ("roc_curves.png", "loss_curves.png"):
        assert (out / png).stat().st_size > 0
    # `fusion-emotion report` shows the same rows
    res = invoke(app, ["report", out])
    fusion_cells = table[metrics["rows"]["fusion"]["label"]]
    assert " | ".join(fusion_cells) in res.output
