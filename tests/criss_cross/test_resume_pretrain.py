"""A run resumed from a checkpoint draws the same loss curve as an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from criss_cross.pretrain import latest_checkpoint, parameter_digest, pretrain

STEPS = 40


@pytest.fixture(scope="module")
def reference(tiny_config, tmp_path_factory):
    """An uninterrupted run of STEPS steps, checkpoints every 10 (two loader workers)."""
    cfg = tiny_config(steps=STEPS, num_workers=2, keep_checkpoints=10)
    out = tmp_path_factory.mktemp("reference") / "ref"
    summary = pretrain(cfg, out, progress=False)
    return cfg, summary, out


def _metrics(run):
    drop = ("elapsed_s", "samples_per_s", "data_wait_fraction")
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_from_checkpoint_equals_uninterrupted(reference, tmp_path):
    cfg, ref, ref_dir = reference
    # The state a run killed at step ~17 leaves: checkpoint 10 complete, checkpoint 20 only a
    # temporary directory, metrics logged up to step 15, a stale pointer file removed.
    run = tmp_path / "killed"
    shutil.copytree(ref_dir, run)
    for ck in (run / "checkpoints").glob("step_*"):
        if ck.name != "step_00000010":
            shutil.rmtree(ck)
    (run / "checkpoints" / ".tmp-step_00000020-1").mkdir()
    (run / "checkpoints" / "latest").write_text(json.dumps({"checkpoint": "step_00000010",
                                                             "step": 10}))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n")
    (run / "loss_curve.png").unlink()

    resumed = pretrain(cfg, run, resume=True, progress=False)
    assert resumed.start_step == 10
    np.testing.assert_allclose(resumed.losses, ref.losses[10:], rtol=0, atol=1e-6)
    assert resumed.param_digest == ref.param_digest
    assert _metrics(run) == _metrics(ref_dir)
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert (run / "loss_curve.png").is_file()


def test_resume_refuses_a_changed_config(reference, tiny_config):
    _, _, ref_dir = reference
    with pytest.raises(ValueError, match="seed"):
        pretrain(tiny_config(steps=STEPS, num_workers=2, keep_checkpoints=10, seed=1), ref_dir,
                 resume=True, progress=False)


def test_sigkill_then_resume(reference, tmp_path):
    """A real SIGKILL of the CLI mid-run; `--resume` finishes with the reference weights."""
    cfg, ref, _ = reference
    cfile = tmp_path / "cfg.json"
    cfile.write_text(json.dumps(cfg.model_dump(mode="json")))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "criss_cross.cli", "pretrain", "--config", str(cfile),
           "--out", str(run), "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            ck = latest_checkpoint(run) if run.exists() else None
            if ck is not None and ck.name >= "step_00000020":
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its loader workers
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()
    killed_at = latest_checkpoint(run)
    assert killed_at is not None and killed_at.name < f"step_{STEPS:08d}"
    res = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    from criss_cross.checkpoint import load_checkpoint

    final = load_checkpoint(latest_checkpoint(run) / "model")
    assert latest_checkpoint(run).name == f"step_{STEPS:08d}"
    ref_model = load_checkpoint(latest_checkpoint(reference[2]) / "model")
    assert parameter_digest(final) == parameter_digest(ref_model)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS
