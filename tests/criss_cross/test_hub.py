"""Named models (registry) and the Hub format: round trips, strictness, repo ids offline, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import criss_cross
from criss_cross.checkpoint import CheckpointError
from criss_cross.hub import export_run, from_pretrained, save_pretrained
from criss_cross.registry import create_model, get_model_spec, list_models

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _reference_state(shared_data: Path) -> dict[str, torch.Tensor]:
    path = shared_data / "reference" / "cbramod_reference.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    ref = np.load(path)
    return {k[len("state/"):]: torch.from_numpy(ref[k]) for k in ref.files if k.startswith("state/")}


def test_registry_lists_the_three_presets_with_their_input():
    assert list_models() == ["cbramod", "ecg-base", "ecg-small"]
    assert criss_cross.list_models() == list_models()
    base, small, eeg = (get_model_spec(n) for n in ("ecg-base", "ecg-small", "cbramod"))
    assert base.input_spec() == {
        "modality": "ecg", "channels": ["I", "II", "III", "aVR", "aVL", "aVF",
                                        "V1", "V2", "V3", "V4", "V5", "V6"],
        "n_chans": 12, "rates_hz": [100, 200, 500, 1000], "units": "mV", "input_scale": 1.0,
        "n_patches": 10, "patch_size": 200}
    assert small.encoder_config.n_layers == 2 and base.encoder_config.n_layers == 12
    assert eeg.encoder_config.input_scale == 0.01 and eeg.units == "uV"
    verbose = list_models(verbose=True)
    assert [d["name"] for d in verbose] == list_models() and "weights" in verbose[0]


def test_create_model_sizes_overrides_and_errors():
    model = create_model("ecg-base")
    assert sum(p.numel() for p in model.state_dict().values()) == 4_924_000
    assert len(model.state_dict()) == 211
    small = create_model("ecg-small", dropout=0.0, proj_out=False)
    assert small.config.n_layers == 2 and small.config.dropout == 0.0
    assert not any(k.startswith("proj_out") for k in small.state_dict())
    with pytest.raises(KeyError, match="known models: cbramod, ecg-base, ecg-small"):
        create_model("ecg-huge")
    with pytest.raises(ValueError, match="no published weights"):
        create_model("ecg-base", pretrained=True)
    with pytest.raises(FileNotFoundError, match="do not exist"):
        create_model("cbramod", pretrained="/nonexistent/pretrained_weights.pth")


def test_save_then_load_is_bit_exact(tmp_path):
    torch.manual_seed(0)
    model = create_model("ecg-small")
    spec = get_model_spec("ecg-small")
    out = save_pretrained(model, tmp_path / "m", name="ecg-small", input_spec=spec.input_spec(),
                          card={"training_data": "nothing (random init)"})
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    for loaded in (from_pretrained(out), criss_cross.from_pretrained(str(out)),
                   create_model("ecg-small", pretrained=out)):
        own, got = model.state_dict(), loaded.state_dict()
        assert list(own) == list(got)
        assert all(torch.equal(own[k], got[k]) for k in own)
    x = torch.randn(2, 12, 3, 200)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), from_pretrained(out)(x))
    doc = json.loads((out / "config.json").read_text())
    assert doc["model_type"] == "criss-cross-encoder" and doc["name"] == "ecg-small"
    assert doc["input"]["rates_hz"] == [100, 200, 500, 1000] and doc["encoder"]["n_layers"] == 2
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: criss-cross\n")
    from huggingface_hub import ModelCard

    parsed = ModelCard.load(out / "README.md")
    assert parsed.data.library_name == "criss-cross" and "ecg" in parsed.data.tags
    assert "| units | mV |" in card and "nothing (random init)" in card


def test_loading_stays_strict(tmp_path):
    out = save_pretrained(create_model("ecg-small"), tmp_path / "m")
    tensors = load_file(str(out / "model.safetensors"))
    del tensors["encoder.layers.1.norm2.bias"]
    tensors["head.weight"] = torch.zeros(2)
    save_file(tensors, str(out / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): encoder.layers.1.norm2.bias"):
        from_pretrained(out)
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): head.weight"):
        create_model("ecg-small", pretrained=out)
    with pytest.raises(CheckpointError, match="the checkpoint has 2 layers, the model 12"):
        create_model("ecg-base", pretrained=tmp_path / "m")  # same folder, wrong preset
    with pytest.raises(FileNotFoundError, match="model.safetensors missing"):
        (out / "model.safetensors").unlink()
        from_pretrained(out)


def test_exported_keys_are_the_authors(shared_data, tmp_path):
    """The Hub file's keys and shapes are the official CBraMod ones (211 tensors); the authors'
    state dict loads strictly through create_model and comes back out unchanged."""
    ref = _reference_state(shared_data)
    src = tmp_path / "official.safetensors"
    save_file({k: v.contiguous() for k, v in ref.items()}, str(src))
    model = create_model("cbramod", pretrained=src)
    out = save_pretrained(model, tmp_path / "cbramod", name="cbramod")
    saved = load_file(str(out / "model.safetensors"))
    assert sorted(saved) == sorted(ref)
    assert all(saved[k].shape == ref[k].shape and torch.equal(saved[k], ref[k]) for k in ref)
    assert json.loads((out / "config.json").read_text())["encoder"]["input_scale"] == 0.01


def _braindecode_cbramod_keys(n_layer: int) -> dict[str, tuple[int, ...]]:
    """The state dict of braindecode's ``CBraMod(..., return_encoder_output=True)``, written out
    from its source (braindecode 1.8.1, ``braindecode/models/cbramod.py``: ``_PatchEmbedding``
    with ``positional_encoding = Sequential(Conv2d)``, ``proj_in`` = 3 x [Conv2d, GroupNorm,
    GELU], ``spectral_proj = Sequential(Linear, Dropout)``, ``mask_encoding`` a Parameter;
    ``CrissCrossTransformerEncoderLayer`` with ``self_attn_s``/``self_attn_t``
    MultiheadAttention(100, 4), ``linear1``/``linear2``, ``norm1``/``norm2``;
    ``proj_out = Sequential(Linear(200, 200))``; ``final_layer = Identity()``). Checked once by
    loading our export into that class: missing and unexpected keys both empty."""
    keys: dict[str, tuple[int, ...]] = {
        "patch_embedding.mask_encoding": (200,),
        "patch_embedding.positional_encoding.0.weight": (200, 1, 19, 7),
        "patch_embedding.positional_encoding.0.bias": (200,),
        "patch_embedding.proj_in.0.weight": (25, 1, 1, 49),
        "patch_embedding.proj_in.0.bias": (25,),
        "patch_embedding.spectral_proj.0.weight": (200, 101),
        "patch_embedding.spectral_proj.0.bias": (200,),
        "proj_out.0.weight": (200, 200),
        "proj_out.0.bias": (200,),
    }
    for i in (1, 4, 7):  # GroupNorm(5, 25) after each convolution
        keys[f"patch_embedding.proj_in.{i}.weight"] = keys[f"patch_embedding.proj_in.{i}.bias"] = (25,)
    for i in (3, 6):
        keys[f"patch_embedding.proj_in.{i}.weight"] = (25, 25, 1, 3)
        keys[f"patch_embedding.proj_in.{i}.bias"] = (25,)
    for n in range(n_layer):
        p = f"encoder.layers.{n}."
        for a in ("self_attn_s", "self_attn_t"):
            keys.update({p + a + ".in_proj_weight": (300, 100), p + a + ".in_proj_bias": (300,),
                         p + a + ".out_proj.weight": (100, 100), p + a + ".out_proj.bias": (100,)})
        keys.update({p + "linear1.weight": (800, 200), p + "linear1.bias": (800,),
                     p + "linear2.weight": (200, 800), p + "linear2.bias": (200,)})
        for norm in ("norm1", "norm2"):
            keys[p + norm + ".weight"] = keys[p + norm + ".bias"] = (200,)
    return keys


@pytest.mark.parametrize(("name", "n_layer"), [("ecg-base", 12), ("ecg-small", 2), ("cbramod", 12)])
def test_exported_keys_and_shapes_are_braindecodes(tmp_path, name, n_layer):
    out = save_pretrained(create_model(name), tmp_path / name)
    saved = {k: tuple(v.shape) for k, v in load_file(str(out / "model.safetensors")).items()}
    assert saved == _braindecode_cbramod_keys(n_layer)
    assert len(saved) == (211 if n_layer == 12 else 51)


def test_exported_weights_load_strictly_into_braindecode(tmp_path):
    bd = pytest.importorskip("braindecode.models", reason="braindecode is not installed")
    model = create_model("ecg-small").eval()
    out = save_pretrained(model, tmp_path / "m")
    theirs = bd.CBraMod(n_outputs=2, n_chans=12, n_times=600, n_layer=2,
                        return_encoder_output=True).eval()
    result = theirs.load_state_dict(load_file(str(out / "model.safetensors")), strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = torch.randn(2, 12, 3, 200)
    with torch.no_grad():
        torch.testing.assert_close(theirs(x.reshape(2, 12, 600)), model(x), atol=1e-4, rtol=1e-4)


def _hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """The Hub cache layout hf_hub_download reads offline: refs/main -> snapshots/<commit>/."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())


def test_repo_id_goes_through_the_hub_download_offline(tmp_path):
    torch.manual_seed(1)
    model = create_model("ecg-small")
    folder = save_pretrained(model, tmp_path / "m", name="ecg-small")
    _hub_cache(tmp_path / "cache", "acme/ecg-small", folder)
    expected = float(sum(p.double().sum() for p in model.state_dict().values()))
    code = (
        "import criss_cross, torch\n"
        "m = criss_cross.from_pretrained('acme/ecg-small')\n"
        "print(repr(float(sum(p.double().sum() for p in m.state_dict().values()))))\n"
        "try:\n"
        "    criss_cross.from_pretrained('acme/absent')\n"
        "except FileNotFoundError as e:\n"
        "    print('ERR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join(str(ROOT / "packages" / p / "src")
                                         for p in ("biosig-prep", "criss-cross"))}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert float(lines[0]) == expected
    assert lines[1].startswith("ERR acme/absent: not in the Hub cache")


@pytest.fixture(scope="module")
def run_dir(tiny_config, tmp_path_factory):
    from criss_cross.pretrain import pretrain

    out = tmp_path_factory.mktemp("export") / "run"
    pretrain(tiny_config(steps=3, checkpoint_every=3, log_every=1), out, progress=False)
    return out


def test_export_run_writes_a_loadable_folder_with_its_card(run_dir, tmp_path):
    from criss_cross.checkpoint import load_checkpoint
    from criss_cross.embed import resolve_checkpoint

    out = export_run(run_dir, tmp_path / "hub")
    own = load_checkpoint(resolve_checkpoint(run_dir)).state_dict()
    got = from_pretrained(out).state_dict()
    assert all(torch.equal(own[k], got[k]) for k in own) and list(own) == list(got)
    doc = json.loads((out / "config.json").read_text())
    assert doc["input"]["rates_hz"] == [100, 200] and doc["input"]["units"] == "mV"
    # the stores' preprocessing, which criss_cross.stream applies at inference (issue 21)
    from criss_cross.stream import prep_config_from_card

    prep, where = prep_config_from_card(doc)
    assert where.startswith("model card") and (prep.n_patches, prep.patch_size) == (4, 50)
    assert (prep.ecg.l_freq, prep.ecg.h_freq) == (0.5, 40.0)
    card = (out / "README.md").read_text()
    assert "50 records" in card and "l_freq" in card and "final_loss" in card
    with pytest.raises(FileExistsError, match="already holds a model"):
        export_run(run_dir, out)


def test_export_overwrite_removes_the_onnx_files_of_the_old_weights(run_dir, tmp_path):
    from criss_cross.cli import app
    from criss_cross.hub import INT8_NAME, ONNX_META_NAME, ONNX_NAME

    out = export_run(run_dir, tmp_path / "hub")
    for n in (ONNX_NAME, INT8_NAME, ONNX_META_NAME):
        (out / n).write_text("from an earlier --onnx export")
    res = CliRunner().invoke(app, ["export", str(run_dir), str(out), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "model.safetensors", "pretraining_data.json"]


def test_export_and_models_commands(run_dir, tmp_path):
    from criss_cross.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["export", str(run_dir), str(tmp_path / "hub"), "--name", "tiny"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "hub" / "config.json").read_text())["name"] == "tiny"
    res = runner.invoke(app, ["export", str(tmp_path / "absent"), str(tmp_path / "x")])
    assert res.exit_code == 1 and "does not exist" in res.output
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0 and res.output.splitlines()[0].startswith("cbramod: ")
