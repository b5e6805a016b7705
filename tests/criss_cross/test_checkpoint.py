"""Checkpoints: our safetensors + JSON format, and the authors' state dicts."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file

from criss_cross import (
    CheckpointError,
    CrissCrossEncoder,
    EncoderConfig,
    load_cbramod_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from criss_cross.checkpoint import checkpoint_filter_fn, read_checkpoint_meta

SMALL = EncoderConfig(n_layers=2)


@pytest.fixture()
def model() -> CrissCrossEncoder:
    torch.manual_seed(0)
    return CrissCrossEncoder(SMALL).eval()


def _x():
    return torch.randn(2, 3, 4, 200, generator=torch.Generator().manual_seed(0))


def test_round_trip_gives_identical_outputs(model, tmp_path):
    weights, meta = save_checkpoint(model, tmp_path / "run" / "encoder", extra={"step": 7})
    assert weights == tmp_path / "run" / "encoder.safetensors" and weights.is_file()
    assert meta == tmp_path / "run" / "encoder.json" and meta.is_file()
    doc = json.loads(meta.read_text())
    assert doc["config"] == SMALL.model_dump(mode="json")
    assert doc["extra"] == {"step": 7}
    assert read_checkpoint_meta(weights)["extra"]["step"] == 7
    # the weights file is plain safetensors (no pickle), with the official key names
    tensors = load_file(str(weights))
    assert "encoder.layers.1.self_attn_t.in_proj_weight" in tensors

    for path in (tmp_path / "run" / "encoder", weights, str(weights)):
        loaded = load_checkpoint(path)
        assert loaded.config == SMALL and not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(_x()), model(_x()))


def test_round_trip_keeps_a_non_default_config(tmp_path):
    cfg = EncoderConfig(d_model=50, patch_size=50, n_heads=2, n_layers=1, dim_feedforward=64,
                        proj_out=False, input_scale=0.01)
    model = CrissCrossEncoder(cfg).eval()
    save_checkpoint(model, tmp_path / "tiny.safetensors")
    loaded = load_checkpoint(tmp_path / "tiny")
    assert loaded.config == cfg
    x = torch.randn(1, 2, 3, 50)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_missing_files_are_named(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        load_checkpoint(tmp_path / "nothing")
    save_checkpoint(model, tmp_path / "m")
    (tmp_path / "m.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="m.safetensors"):
        load_checkpoint(tmp_path / "m")


def test_cbramod_state_dict_with_dataparallel_prefix(model, tmp_path):
    official = CrissCrossEncoder().state_dict()  # official key names, CBraMod's shapes
    wrapped = {f"module.{k}": v for k, v in official.items()}
    for source in (wrapped, {"state_dict": wrapped}, {"model": official}):
        loaded = load_cbramod_checkpoint(source)
        for k, v in loaded.state_dict().items():
            assert torch.equal(v, official[k]), k
    # the same through a .pth file read with weights_only=True
    path = tmp_path / "pretrained_weights.pth"
    torch.save(wrapped, path)
    loaded = load_cbramod_checkpoint(path)
    assert torch.equal(loaded.state_dict()["proj_out.0.weight"], official["proj_out.0.weight"])
    # a model without the head drops proj_out.*
    headless = load_cbramod_checkpoint(path, EncoderConfig(proj_out=False))
    assert not any(k.startswith("proj_out") for k in headless.state_dict())


def test_missing_and_unexpected_keys_are_named():
    official = CrissCrossEncoder().state_dict()
    broken = dict(official)
    del broken["encoder.layers.3.linear1.weight"]
    broken["encoder.layers.12.linear1.weight"] = torch.zeros(800, 200)
    with pytest.raises(CheckpointError) as err:
        load_cbramod_checkpoint(broken)
    msg = str(err.value)
    assert "missing keys (1): encoder.layers.3.linear1.weight" in msg
    assert "unexpected keys (1): encoder.layers.12.linear1.weight" in msg

    shapes = dict(official)
    shapes["proj_out.0.weight"] = torch.zeros(100, 200)
    with pytest.raises(CheckpointError, match=r"proj_out.0.weight \(checkpoint \(100, 200\)"):
        load_cbramod_checkpoint(shapes)

    # a 2-layer model and a 12-layer checkpoint: the extra layers are named
    with pytest.raises(CheckpointError, match="unexpected keys .*encoder.layers.2"):
        load_cbramod_checkpoint(official, SMALL)


def test_not_a_cbramod_checkpoint():
    with pytest.raises(CheckpointError, match="not a CBraMod state dict"):
        load_cbramod_checkpoint({"conv.weight": torch.zeros(3)})
    with pytest.raises(TypeError):
        load_cbramod_checkpoint(42)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_pth_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"patch_embedding.spectral_proj.0.weight": _Evil()}, f)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_cbramod_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_cbramod_checkpoint(tmp_path / "absent.pth")


def test_filter_strips_nested_prefixes():
    model = CrissCrossEncoder(SMALL)
    sd = {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    out = checkpoint_filter_fn(sd, model)
    assert sorted(out) == sorted(model.state_dict())
