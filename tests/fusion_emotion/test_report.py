"""The run folder holds metrics.json, report.md with those numbers, plots, config, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fusion_emotion import FusionConfig, compare_runs, report_path
from fusion_emotion.cli import app
from fusion_emotion.config import DIMENSIONS
from fusion_emotion.model import FusionModel
from fusion_emotion.report import PAPER_LABEL, ROW_LABELS


def test_run_folder_files(planted_run):
    out = planted_run.out_dir
    for name in ("metrics.json", "report.md", "config.yaml", "run.json", "roc_curves.png",
                 "loss_curves.png", "loss_curves_eeg.png", "loss_curves_ecg.png"):
        assert (out / name).is_file(), name
    for name in ("roc_curves.png", "loss_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert FusionConfig.from_file(out / "config.yaml") == FusionConfig.model_validate(
        planted_run.metrics["config"])
    assert planted_run.report_path == out / "report.md"
    assert report_path(out) == (out / "report.md").resolve()
    assert len(list((out / "checkpoints").glob("*.safetensors"))) == 15  # 5 folds x 3 models


def test_report_holds_the_numbers_of_metrics_json(planted_run):
    metrics = json.loads((planted_run.out_dir / "metrics.json").read_text())
    text = (planted_run.out_dir / "report.md").read_text()
    assert f"| {PAPER_LABEL} | 69.44 | 81.14 | 68.69 | 75.00 | 84.21 | 84.79 | 79.63 | 88.30 | 86.69 |" in text
    for row, label in ROW_LABELS.items():
        cells = []
        for dim in DIMENSIONS:
            for m in ("acc", "f1", "auc"):
                st = metrics["rows"][row]["per_subject"][dim][m]
                cells.append(f"{100 * st['mean']:.2f} ± {100 * st['std']:.2f}")
        assert f"| {label} | " + " | ".join(cells) + " |" in text, row
    # the warning about random encoders comes before the table
    assert text.index("WARNING") < text.index("## Table 1")
    assert len(metrics["warnings"]) == 2
    # fold-level numbers agree with the summary
    for dim in DIMENSIONS:
        vals = [f[dim]["auc"] for f in metrics["folds"]["fusion"]]
        assert np.mean(vals) == pytest.approx(metrics["rows"]["fusion"]["per_subject"][dim]["auc"]["mean"])


def test_best_head_checkpoint_reproduces_the_test_scores(planted_run):
    from safetensors.torch import load_file

    out = planted_run.out_dir
    meta = json.loads((out / "checkpoints" / "seed0-fold0-fusion.json").read_text())
    assert meta["files"] == {"heads": "seed0-fold0-fusion.safetensors"}
    assert set(meta["best_epoch"]) == {"valence", "arousal", "dominance"}
    result = json.loads((out / "folds" / "seed0" / "fold0" / "fusion.json").read_text())
    emb = {m: torch.from_numpy(np.load(out / "cache" / f"{m}.npy")) for m in ("eeg", "ecg")}
    model = FusionModel(["eeg", "ecg"], None, n_patches=emb["eeg"].shape[1], d_model=200, pool="mean")
    model.head.load_state_dict(load_file(out / "checkpoints" / "seed0-fold0-fusion.safetensors"))
    idx = torch.as_tensor(result["test_index"])
    with torch.no_grad():
        scores = torch.sigmoid(model.eval()({m: e[idx] for m, e in emb.items()})).numpy()
    assert np.allclose(scores[:, 0], result["scores"]["valence"], atol=1e-6)


def test_compare_runs_side_by_side(planted_run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text((planted_run.out_dir / "metrics.json").read_text())
    text = compare_runs([planted_run.out_dir, other])
    assert text.count(f"| {PAPER_LABEL} |") == 1
    assert text.count("| planted: Fusion (EEG+ECG) |") == 1 and text.count("| other: EEG only |") == 1
    same_name = compare_runs([planted_run.out_dir, planted_run.out_dir])
    assert same_name.count(f"| {planted_run.out_dir}: Fusion (EEG+ECG) |") == 2
    res = CliRunner().invoke(app, ["report", str(planted_run.out_dir), "--out", str(tmp_path / "cmp.md")])
    assert res.exit_code == 0, res.output
    assert "planted: EEG only" in (tmp_path / "cmp.md").read_text()
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 1 and "metrics.json does not exist" in res.output
