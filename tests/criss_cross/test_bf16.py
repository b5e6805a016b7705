"""Every bf16 code path of criss-cross runs here on CPU (CPU autocast supports bfloat16), so the
GPU run (tools/bench/gpu_check.sh) does not meet untested code: the pretraining step as
``criss_cross.pretrain`` runs it under autocast, embeddings, the probe's embedding and
fine-tuning, the DDP smoke script and the encoder benchmark's bf16 mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from criss_cross.config import EncoderConfig
from criss_cross.encoder import CrissCrossEncoder
from criss_cross.losses import DualMaskingLoss
from criss_cross.masking import dual_mask
from criss_cross.probe.data import pooled_embeddings
from criss_cross.probe.train import finetune

ROOT = Path(__file__).resolve().parents[2]
TINY = {"d_model": 50, "patch_size": 50, "n_heads": 2, "n_layers": 2, "dim_feedforward": 100}
BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _env() -> dict[str, str]:
    src = [str(ROOT / "packages" / p / "src") for p in ("biosig-prep", "criss-cross")]
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(src)}


def test_pretraining_step_under_bf16_autocast():
    """The step of criss_cross.pretrain with use_bf16: forward under autocast (dropout on),
    the dual-masking loss on pred.float(), backward; every parameter gets a finite gradient
    and the bf16 loss is within 5 % of the fp32 one (same masks, dropout off)."""
    torch.manual_seed(0)
    model = CrissCrossEncoder(EncoderConfig(**TINY))
    x = torch.randn(4, 6, 5, 50)
    mask, masked_ch = dual_mask((4, 6, 5), 0.5, 0.25, torch.Generator().manual_seed(0))
    valid = torch.ones(4, 6, dtype=torch.bool)
    loss_fn = DualMaskingLoss()
    model.train()
    with torch.autocast(**BF16):
        pred = model(x, mask)
    assert pred.dtype == torch.bfloat16
    loss = loss_fn(pred.float(), x, mask, masked_channels=masked_ch, valid_channels=valid).total
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    with torch.no_grad():
        fp32 = loss_fn(model(x, mask), x, mask, masked_channels=masked_ch, valid_channels=valid).total
        with torch.autocast(**BF16):
            bf = model(x, mask)
        bf16 = loss_fn(bf.float(), x, mask, masked_channels=masked_ch, valid_channels=valid).total
    assert abs(float(bf16) - float(fp32)) <= 0.05 * float(fp32)


def test_embeddings_under_bf16_are_close_to_fp32():
    torch.manual_seed(1)
    model = CrissCrossEncoder(EncoderConfig(**TINY, proj_out=False)).eval()
    x = torch.randn(3, 12, 4, 50)
    valid = torch.ones(3, 12, dtype=torch.bool)
    with torch.inference_mode():
        ref = model.embed(x, pool="all", valid_channels=valid)
        with torch.autocast(**BF16):
            got = model.embed(x, pool="all", valid_channels=valid)
            pooled = pooled_embeddings(model, x, valid, torch.ones(3, 4, dtype=torch.bool))
    assert got.dtype == torch.bfloat16
    err = (got.float() - ref).norm() / ref.norm()
    assert err < 0.05 and (pooled.float() - ref).norm() / ref.norm() < 0.05


def test_probe_paths_under_bf16(cinc_store, tmp_path):
    from criss_cross.probe import ProbeConfig, run_probe

    base = dict(store=cinc_store, stream="ecg@100", encoder=TINY, seed=0)
    fp = run_probe(ProbeConfig(**base), tmp_path / "fp32")
    bf = run_probe(ProbeConfig(**base, bf16=True), tmp_path / "bf16")
    assert bf["embeddings_cached"] is False  # precision is part of the cache key
    assert bf["data"] == fp["data"]
    assert abs(bf["metrics"]["linear"]["macro_auroc"] - fp["metrics"]["linear"]["macro_auroc"]) < 0.2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 4, 50)).astype(np.float32)
    y = rng.random((16, 2)) < 0.5
    torch.manual_seed(0)
    _, _, losses = finetune(CrissCrossEncoder(EncoderConfig(**TINY)), x, np.ones((16, 4), bool),
                            np.ones((16, 4), bool), y, epochs=2, batch_size=8, bf16=True)
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_ddp_smoke_script_on_cpu(tmp_path):
    """tools/bench/ddp_smoke.py: two gloo processes, identical weights after the steps."""
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--standalone", str(ROOT / "tools" / "bench" / "ddp_smoke.py"), "--device", "cpu",
         "--steps", "3", "--batch", "4", "--layers", "1", "--bf16", "--json", str(tmp_path / "d.json")],
        env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["world_size"] == 2 and doc["backend"] == "gloo" and doc["bf16"] is True
    assert doc["weights_identical"] is True and doc["samples_per_s"] > 0


def test_encoder_benchmark_runs_its_bf16_mode_on_cpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "bench_encoder.py"), "--device", "cpu",
         "--dtype", "bf16", "--batch", "2", "--infer-batch", "2", "--steps", "5",
         "--infer-steps", "1", "--warmup", "0", "--threads", "1", "--skip-memory",
         "--json", str(tmp_path / "e.json")],
        env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "e.json").is_file()
