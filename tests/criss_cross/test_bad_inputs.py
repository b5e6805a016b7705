"""Bad checkpoints, configs and options: one line naming the file and the problem, exit 1.

(Issue 10, item 10.) Each case gave a traceback, or built a huge model, before.
"""

from __future__ import annotations

import errno
import json
import shutil
import time

import pytest
import torch
from typer.testing import CliRunner

from criss_cross import (
    CheckpointError,
    CrissCrossEncoder,
    EncoderConfig,
    load_cbramod_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from criss_cross.cli import app
from criss_cross.pretrain import latest_checkpoint, pretrain

TINY = EncoderConfig(d_model=50, patch_size=50, n_heads=2, n_layers=2, dim_feedforward=64)


def _one_line_error(res, *needles: str) -> str:
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    weights, meta = save_checkpoint(CrissCrossEncoder(TINY), tmp_path / "enc")
    return weights, meta


# --- checkpoint files ------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "error", "message"), [
    ("n_layers", 100000, "above the ceiling", "1.19 G parameters"),
    ("dim_feedforward", 10**9, "above the ceiling", "dim_feedforward 1000000000"),
    ("n_layers", 3, "the config does not match the weights",
     "the checkpoint has 2 layers, the model 3"),
    ("dim_feedforward", 65, "the config does not match the weights",
     "encoder.layers.0.linear1.weight (checkpoint (64, 50), model (65, 50))"),
])
def test_an_edited_config_is_refused_before_the_model_is_built(saved, field, value, error,
                                                               message):
    weights, meta = saved
    doc = json.loads(meta.read_text())
    doc["config"][field] = value
    meta.write_text(json.dumps(doc))
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=error) as info:
        load_checkpoint(weights)
    assert time.perf_counter() - t0 < 1.0  # nothing of that size was allocated
    assert message in str(info.value) and str(meta) in str(info.value)


def test_corrupt_or_fake_safetensors_name_the_file(saved, tmp_path):
    weights, _ = saved
    good = weights.read_bytes()
    cases = {
        "text": b"this is not a tensor file\n",
        "short": b"\x01\x02",
        "huge header": (10**12).to_bytes(8, "little") + b"{}",
        "not json": (4).to_bytes(8, "little") + b"{{{{",
        "truncated": good[: len(good) - 100],
    }
    for name, data in cases.items():
        weights.write_bytes(data)
        with pytest.raises(CheckpointError, match="is not a valid safetensors file") as info:
            load_checkpoint(weights)
        assert str(weights) in str(info.value) and "\n" not in str(info.value), name
        fake = tmp_path / "official.safetensors"
        fake.write_bytes(data)
        with pytest.raises(CheckpointError, match=str(fake)):
            load_cbramod_checkpoint(fake)


def test_a_non_tensor_value_in_a_pth_names_the_key(tmp_path):
    torch.manual_seed(0)
    sd = CrissCrossEncoder(EncoderConfig(n_layers=12)).state_dict()
    sd["proj_out.0.bias"] = 3
    path = tmp_path / "weights.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"'proj_out.0.bias' holds a int, not a tensor"):
        load_cbramod_checkpoint(path)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(CheckpointError, match="cannot read .*weights.pth") as info:
        load_cbramod_checkpoint(path)
    assert "\n" not in str(info.value)


def test_a_bad_checkpoint_json_names_the_file(saved):
    weights, meta = saved
    meta.write_text("{not json")
    with pytest.raises(CheckpointError, match=f"{meta} cannot be read as JSON"):
        load_checkpoint(weights)
    meta.write_text(json.dumps({"format": "criss-cross-checkpoint", "config": {"n_heads": 3}}))
    with pytest.raises(CheckpointError, match="invalid encoder config: config: Value error, "
                       "n_heads"):
        load_checkpoint(weights)


# --- the CLI ---------------------------------------------------------------------------------


def _config_file(tiny_config, path, **kw):
    path.write_text(json.dumps(tiny_config(**kw).model_dump(mode="json")))
    return path


@pytest.mark.parametrize(("text", "needle"), [
    ("steps: [1, 2\n", "could not be parsed"),
    ("!!python/object/apply:os.system ['echo pwned']\n", "could not be parsed"),
    ("- a\n- b\n", "must hold a mapping"),
])
def test_pretrain_config_file_errors(tmp_path, text, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    res = CliRunner().invoke(app, ["pretrain", "--config", str(cfg), "--out",
                                   str(tmp_path / "run"), "--no-progress"])
    _one_line_error(res, str(cfg), needle)
    res = CliRunner().invoke(app, ["pretrain", "--config", str(tmp_path / "none.yaml"),
                                   "--out", str(tmp_path / "run")])
    _one_line_error(res, "none.yaml", "does not exist")


def test_device_and_out_errors(tiny_config, cinc_store, tmp_path):
    cfg = _config_file(tiny_config, tmp_path / "c.json", steps=2)
    res = CliRunner().invoke(app, ["pretrain", "--config", str(cfg), "--out",
                                   str(tmp_path / "r"), "--device", "tpu", "--no-progress"])
    _one_line_error(res, "device: Input should be 'auto', 'cpu' or 'cuda'")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    res = CliRunner().invoke(app, ["pretrain", "--config", str(cfg), "--out", str(a_file),
                                   "--no-progress"])
    _one_line_error(res, str(a_file), "is a file")
    run = tmp_path / "run"
    pretrain(tiny_config(steps=2, checkpoint_every=2), run, progress=False)
    base = ["embed", "--checkpoint", str(run), "--store", cinc_store, "--stream", "ecg@100",
            "--no-progress"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "e.zarr"), "--device", "tpu"])
    _one_line_error(res, "unknown device 'tpu'")
    res = CliRunner().invoke(app, [*base, "--out", str(a_file), "--overwrite"])
    _one_line_error(res, str(a_file), "is a file")
    ck = latest_checkpoint(run)
    (ck / "model.safetensors").write_bytes(b"junk")
    res = CliRunner().invoke(app, ["embed", "--checkpoint", str(ck), "--store", cinc_store,
                                   "--stream", "ecg@100", "--out", str(tmp_path / "f.zarr"),
                                   "--no-progress"])
    _one_line_error(res, str(ck / "model.safetensors"), "not a valid safetensors file")


def test_a_corrupt_latest_pointer_falls_back_with_a_note(tiny_config, cinc_store, tmp_path):
    run = tmp_path / "run"
    pretrain(tiny_config(steps=4, checkpoint_every=2), run, progress=False)
    pointer = run / "checkpoints" / "latest"
    pointer.write_bytes(b"\x00\xffgarbage")
    notes: list[str] = []
    assert latest_checkpoint(run, notes.append).name == "step_00000004"
    assert len(notes) == 1 and str(pointer) in notes[0] and "corrupt" in notes[0]
    res = CliRunner().invoke(app, ["embed", "--checkpoint", str(run), "--store", cinc_store,
                                   "--stream", "ecg@100", "--out", str(tmp_path / "e.zarr"),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert f"note: {pointer} is corrupt" in res.output


def test_disk_full_while_checkpointing(tiny_config, tmp_path, monkeypatch):
    import criss_cross.checkpoint.training as training

    real = training.write_file

    def full_at_step_4(path, data):
        if "step_00000004" in str(path) and path.name == "optimizer.safetensors":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(training, "write_file", full_at_step_4)
    cfg = _config_file(tiny_config, tmp_path / "c.json", steps=6, checkpoint_every=2)
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["pretrain", "--config", str(cfg), "--out", str(run),
                                   "--no-progress"])
    _one_line_error(res, "could not write checkpoint", "step_00000004",
                    "No space left on device")
    assert latest_checkpoint(run).name == "step_00000002"
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_resume_passes_over_a_corrupt_newest_checkpoint(tiny_config, tmp_path):
    cfg = tiny_config(steps=6, checkpoint_every=2, keep_checkpoints=5)
    ref = pretrain(cfg, tmp_path / "ref", progress=False)
    run = tmp_path / "run"
    shutil.copytree(tmp_path / "ref", run)
    shutil.rmtree(run / "checkpoints" / "step_00000006")
    newest = run / "checkpoints" / "step_00000004" / "optimizer.safetensors"
    newest.write_bytes(newest.read_bytes()[:-64])  # torn write
    cfile = _config_file(tiny_config, tmp_path / "c.json", steps=6, checkpoint_every=2,
                         keep_checkpoints=5)
    res = CliRunner().invoke(app, ["pretrain", "--config", str(cfile), "--out", str(run),
                                   "--resume", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "note: skipping damaged checkpoint step_00000004" in res.output
    assert str(newest) in res.output
    assert "resuming from" in res.output and "step_00000002" in res.output
    resumed = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    expect = json.loads((tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()[-1])
    assert resumed["loss"] == pytest.approx(expect["loss"], abs=1e-6)
    assert latest_checkpoint(run).name == "step_00000006"
    assert ref.total_steps == 6
