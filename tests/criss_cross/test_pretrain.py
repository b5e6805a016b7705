"""Dual-masking pretraining: schedule, config, loss going down on real records, outputs, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from criss_cross.cli import app, build_config
from criss_cross.pretrain import (
    PretrainConfig,
    _loss_terms,
    get_lr,
    latest_checkpoint,
    pretrain,
)


def test_get_lr_warmup_then_cosine_to_min():
    kw = dict(lr=5e-4, min_lr=1e-5, warmup_steps=10, total_steps=110)
    lrs = [get_lr(s, **kw) for s in range(120)]
    assert lrs[0] == pytest.approx(5e-4 / 11)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11], strict=True))  # warm-up rises
    assert lrs[10] == pytest.approx(5e-4)
    assert all(a >= b for a, b in zip(lrs[10:109], lrs[11:110], strict=True))  # cosine falls
    assert lrs[60] == pytest.approx(1e-5 + 0.5 * (5e-4 - 1e-5))
    assert lrs[110] == lrs[119] == 1e-5


def test_config_defaults_and_files(tmp_path):
    cfg = PretrainConfig(stores=["x.zarr"])
    assert (cfg.lr, cfg.weight_decay, cfg.min_lr, cfg.grad_clip, cfg.batch_size) == (
        5e-4, 0.05, 1e-5, 1.0, 128)
    assert (cfg.mask_ratio, cfg.channel_mask_proportion) == (0.5, 0.25)
    assert cfg.encoder.n_layers == 12 and cfg.encoder.d_model == 200
    assert cfg.total_steps(1000) == 10 * 8 and cfg.warmup(80) == 4
    (tmp_path / "c.yaml").write_text("stores: [a.zarr]\nsteps: 7\nencoder: {n_layers: 3}\n")
    assert PretrainConfig.from_file(tmp_path / "c.yaml").encoder.n_layers == 3
    (tmp_path / "c.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    assert PretrainConfig.from_file(tmp_path / "c.json") == cfg
    with pytest.raises(ValueError, match="MODALITY@RATE"):
        PretrainConfig(streams=["ecg500"])
    # --small keeps CBraMod's width, shrinks depth and steps; explicit options win over it
    small = build_config({"stores": ["a"], "steps": 5}, small=True)
    assert (small.encoder.n_layers, small.encoder.d_model, small.steps) == (2, 200, 5)
    assert cfg.head_init == "zero"
    assert build_config({"stores": ["a"], "head_init": "cbramod"}).head_init == "cbramod"
    with pytest.raises(ValueError, match="head_init\n  Input should be 'zero' or 'cbramod'"):
        PretrainConfig(head_init="kaiming")


def test_zero_filled_lead_never_counts():
    """Perturbing the prediction of a zero-filled lead (channel_mask False) leaves the loss."""
    from criss_cross.losses import DualMaskingLoss
    from criss_cross.masking import dual_mask

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 5, 50)
    valid = torch.ones(4, 6, dtype=torch.bool)
    valid[:, 2] = False
    x[:, 2] = 0.0
    mask, masked_ch = dual_mask((4, 6, 5), 0.5, 0.34, gen)
    pred = torch.randn_like(x)
    loss_fn = DualMaskingLoss()
    base, terms = _loss_terms(loss_fn, pred, x, mask, masked_ch, valid)
    pred2 = pred.clone()
    pred2[:, 2] += 100.0
    again, terms2 = _loss_terms(loss_fn, pred2, x, mask, masked_ch, valid)
    assert torch.equal(base, again)
    assert terms.keys() == terms2.keys()
    for k in terms:
        assert torch.equal(terms[k], terms2[k])
    # ... while the same perturbation on a valid lead does count
    pred3 = pred.clone()
    pred3[:, 1] += 100.0
    assert _loss_terms(loss_fn, pred3, x, mask, masked_ch, valid)[0] > base


def test_pretraining_beats_the_zero_predictor_on_real_records(tiny_config, tmp_path):
    """The loss is read against zero_mse (predicting zeros on the same masked positions); a run
    starts there (zero head) and must end below it: the model learnt the signal, not just the
    output scale. The tiny encoder (d_model 50, 2 s windows) learns slowly: at lr 5e-4 it is
    at ~0.95 x zero_mse after 150 steps, at lr 5e-3 at ~0.75 after 200 (the limit below)."""
    cfg = tiny_config(steps=200, warmup_steps=10, lr=5e-3, checkpoint_every=100, log_every=10,
                      num_workers=1)
    summary = pretrain(cfg, tmp_path / "run", progress=False)
    losses, zeros = np.asarray(summary.losses), np.asarray(summary.zero_mses)
    assert losses.shape == zeros.shape == (200,) and np.isfinite(losses).all()
    assert losses[0] == pytest.approx(zeros[0], rel=1e-6)  # zero head: step 0 predicts zeros
    ratio = losses[-40:].mean() / zeros[-40:].mean()
    assert ratio < 0.85, ratio
    assert summary.data_wait_fraction < 0.5 and summary.samples_per_s > 0

    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(10, 201, 10))
    for key in ("loss", "zero_mse", "lr", "grad_norm", "samples_per_s", "data_wait_fraction",
                "epoch"):
        assert all(math.isfinite(r[key]) for r in lines), key
    assert any(k.startswith("loss_") and k != "loss_last" for k in lines[0])  # the terms
    assert lines[0]["loss"] == pytest.approx(losses[:10].mean(), rel=1e-5)
    assert lines[-1]["zero_mse"] == pytest.approx(zeros[-10:].mean(), rel=1e-5)
    assert (run / "loss_curve.png").stat().st_size > 1000
    ck = latest_checkpoint(run)
    assert ck is not None and ck.name == "step_00000200" and summary.checkpoint == ck
    assert sorted(p.name for p in ck.iterdir()) == [
        "model.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors",
        "trainer.json"]
    from criss_cross.checkpoint import load_checkpoint

    model = load_checkpoint(ck / "model")
    assert model.config.n_layers == 2
    # a second run into the same directory must say how to continue
    with pytest.raises(ValueError, match="resume"):
        pretrain(cfg, run, progress=False)


def test_a_fresh_run_starts_at_the_zero_predictor(tiny_config, tmp_path):
    """With the zero-initialised head, step 0 predicts zeros: loss == zero_mse. CBraMod's
    kaiming head starts far above it (on the same batch and masks): the reason for the default."""
    zero = pretrain(tiny_config(steps=1), tmp_path / "z", progress=False)
    assert zero.losses[0] == pytest.approx(zero.zero_mses[0], rel=1e-6)
    cbramod = pretrain(tiny_config(steps=1, head_init="cbramod"), tmp_path / "k", progress=False)
    assert cbramod.zero_mses[0] == pytest.approx(zero.zero_mses[0], rel=1e-6)
    assert cbramod.losses[0] > 10 * cbramod.zero_mses[0]


def test_cli_pretrain_and_errors(tiny_config, tmp_path):
    runner = CliRunner()
    cfg = tiny_config(steps=6, checkpoint_every=3, log_every=3)
    cfile = tmp_path / "cfg.json"
    cfile.write_text(json.dumps(cfg.model_dump(mode="json")))
    out = tmp_path / "cli-run"
    res = runner.invoke(app, ["pretrain", "--config", str(cfile), "--out", str(out),
                              "--steps", "4", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert latest_checkpoint(out).name == "step_00000004"
    assert json.loads((out / "config.json").read_text())["steps"] == 4
    # --resume alone picks up the run's own config; --steps may extend it
    res = runner.invoke(app, ["pretrain", "--out", str(out), "--resume", "--steps", "6",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    assert latest_checkpoint(out).name == "step_00000006"
    res = runner.invoke(app, ["pretrain", "--config", str(cfile), "--out", str(tmp_path / "x"),
                              "--batch-size", "0"])
    assert res.exit_code == 1
    assert "batch_size: Input should be greater than or equal to 1" in res.output
    res = runner.invoke(app, ["pretrain", "--config", str(cfile), "--out", str(tmp_path / "y"),
                              "--stream", "ecg@999", "--no-progress"])
    assert res.exit_code == 1 and "in none of the stores" in res.output


def test_non_finite_loss_stops_the_run(tiny_config, tmp_path, monkeypatch):
    import criss_cross.losses as losses

    class NaNLoss(losses.DualMaskingLoss):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            return out._replace(total=out.total * float("nan"))

    monkeypatch.setattr(losses, "DualMaskingLoss", NaNLoss)
    with pytest.raises(FloatingPointError, match="non-finite loss .* at step 0"):
        pretrain(tiny_config(steps=3), tmp_path / "run", progress=False)
    assert latest_checkpoint(tmp_path / "run") is None
