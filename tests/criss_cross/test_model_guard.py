"""Every route into an encoder runs the same checks in the same order (issue 17, items 4-6, 9):
config -> size ceiling -> the weights' header against the config -> build and load; one writer
per run folder; one-line messages."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import criss_cross
from criss_cross.checkpoint import CheckpointError, ModelSizeError, load_cbramod_checkpoint
from criss_cross.checkpoint.guard import (
    count_parameters,
    expected_shapes,
    training_memory_bytes,
)
from criss_cross.cli import app
from criss_cross.config import EncoderConfig, PretrainConfig

from .conftest import TINY_ENCODER

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = EncoderConfig(**TINY_ENCODER)


@pytest.fixture()
def hub(tmp_path) -> Path:
    torch.manual_seed(0)
    return criss_cross.save_pretrained(criss_cross.CrissCrossEncoder(TINY), tmp_path / "hub")


def _edit_config(folder: Path, **fields) -> None:
    doc = json.loads((folder / "config.json").read_text())
    doc["encoder"].update(fields)
    (folder / "config.json").write_text(json.dumps(doc))


def _routes(folder: Path):
    """Every way a user hands a Hub folder to the code, as callables."""
    from criss_cross.probe import ProbeConfig
    from criss_cross.probe.run import load_encoder as probe_load
    from fusion_emotion.config import FusionConfig
    from fusion_emotion.encoders import load_encoder as fusion_load

    return {
        "from_pretrained": lambda: criss_cross.from_pretrained(folder),
        "create_model": lambda: criss_cross.create_model("ecg-small", pretrained=folder,
                                                         **TINY_ENCODER),
        "probe": lambda: probe_load(ProbeConfig(store="x", weights=str(folder))),
        "fusion": lambda: fusion_load("ecg", folder, FusionConfig()),
    }


# --- the size of a model follows from its config --------------------------------------------


@pytest.mark.parametrize("cfg", [EncoderConfig(), TINY, EncoderConfig(n_layers=3, proj_out=False,
                                                                       dim_feedforward=72)])
def test_the_estimate_is_the_models_exact_state_dict(cfg):
    sd = criss_cross.CrissCrossEncoder(cfg).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected_shapes(cfg)
    assert count_parameters(cfg) == sum(v.numel() for v in sd.values())
    if cfg == EncoderConfig():
        assert count_parameters(cfg) == 4_924_000  # CBraMod's, with the head


def test_training_memory_by_hand():
    # 1 window, 1 channel, 1 patch, TINY: 16 B/param + 4 B x (2 layers x (12*50 + 3*100 + 1*(1+1))
    # + 8*50)
    n = count_parameters(TINY)
    assert training_memory_bytes(TINY, 1, 1, 1) == 16 * n + 4 * (2 * (600 + 300 + 2) + 400)


# --- item 4: a Hub folder is checked before it is built ---------------------------------------


def test_an_oversize_hub_config_is_refused_by_every_route_in_milliseconds(hub):
    _edit_config(hub, n_layers=100000)
    routes = _routes(hub)
    routes.pop("create_model")  # takes its config from the registry, not from the folder
    for name, route in routes.items():
        t0 = time.perf_counter()
        with pytest.raises(CheckpointError, match="above the ceiling|does not match") as info:
            route()
        assert time.perf_counter() - t0 < 1.0, name
        assert "\n" not in str(info.value), name


def _peak_rss_kb_of_loading(folder: Path) -> tuple[str, int]:
    """Load ``folder`` in a fresh interpreter; its stdout and its peak RSS in kB."""
    code = ("import resource, criss_cross, sys\n"
            "try:\n    criss_cross.from_pretrained(sys.argv[1])\n    print('loaded')\n"
            "except ValueError as e:\n    print('refused', e)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    return out.stdout, int(out.stdout.split()[-1])


@pytest.mark.slow
def test_an_oversize_hub_folder_costs_the_memory_of_a_normal_load(hub, tmp_path):
    """Peak RSS of a refused 100000-layer folder, in a fresh interpreter, against a normal load of
    the same folder measured in the same run: within 100 MB of it (it was 22.7 GB before). The
    baseline is measured, not fixed: importing torch alone costs 0.3 GB with a CPU wheel and about
    1 GB with a CUDA one."""
    normal_out, normal_kb = _peak_rss_kb_of_loading(hub)
    assert "loaded" in normal_out
    _edit_config(hub, n_layers=100000)
    refused_out, refused_kb = _peak_rss_kb_of_loading(hub)
    assert "refused" in refused_out and "above the ceiling" in refused_out
    assert refused_kb < normal_kb + 100_000, (refused_kb, normal_kb)


def _lie_about_shapes(path: Path, shift: int = 0) -> None:
    """Rewrite the header so one tensor claims another shape over the same bytes (or, with
    ``shift``, other bytes of the right length)."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    if shift:
        entry = header["encoder.layers.0.linear1.bias"]
        entry["data_offsets"] = [o + shift for o in entry["data_offsets"]]
    else:
        header["encoder.layers.0.linear1.weight"]["shape"] = [50, 100]  # was (100, 50)
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    text += b" " * (n - len(text))
    path.write_bytes(raw[:8] + text + raw[8 + n:])


@pytest.mark.parametrize(("damage", "message"), [
    ("garbage", "is not a valid safetensors file"),
    ("truncated", "is not a valid safetensors file"),
    ("lying shapes", r"shape mismatches \(1\): encoder.layers.0.linear1.weight"),
    ("shifted offsets", "overlapping or gapped offsets"),
    ("int weights", r"not floating point \(1\): encoder.layers.1.norm2.bias"),
    ("nan weights", "encoder.layers.0.linear2.weight holds 1 NaN/inf"),
    ("missing tensor", r"missing keys \(1\): proj_out.0.bias"),
])
def test_a_damaged_hub_safetensors_is_one_line_on_every_route(hub, damage, message):
    weights = hub / "model.safetensors"
    if damage == "garbage":
        weights.write_bytes(os.urandom(4096))
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:-1000])
    elif damage == "lying shapes":
        _lie_about_shapes(weights)
    elif damage == "shifted offsets":
        _lie_about_shapes(weights, shift=4)
    else:
        tensors = load_file(str(weights))
        if damage == "int weights":
            tensors["encoder.layers.1.norm2.bias"] = torch.ones(50, dtype=torch.int32)
        elif damage == "nan weights":
            tensors["encoder.layers.0.linear2.weight"][3, 4] = float("nan")
        else:
            del tensors["proj_out.0.bias"]
        save_file(tensors, str(weights))
    routes = _routes(hub)
    if damage == "missing tensor":  # fusion drops the head: that file is fine for it
        routes.pop("fusion")
        routes.pop("create_model")
    for name, route in routes.items():
        with pytest.raises(CheckpointError, match=message) as info:
            route()
        assert "\n" not in str(info.value), name


def test_a_hub_config_that_is_not_an_encoder_config_is_one_line(hub):
    (hub / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json cannot be read as JSON"):
        criss_cross.from_pretrained(hub)
    (hub / "config.json").write_text(json.dumps({"model_type": "criss-cross-encoder"}))
    with pytest.raises(CheckpointError, match="no 'encoder' object"):
        criss_cross.from_pretrained(hub)
    (hub / "config.json").write_text(json.dumps({"model_type": "criss-cross-encoder",
                                                 "encoder": {"n_heads": "eight"}}))
    with pytest.raises(CheckpointError, match="invalid encoder config: n_heads: Input should be"):
        criss_cross.from_pretrained(hub)


def test_a_pth_is_checked_against_the_config_before_the_model_is_built(tmp_path):
    sd = criss_cross.CrissCrossEncoder(TINY).state_dict()
    sd["encoder.layers.1.linear1.weight"] = torch.zeros(7, 50)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=r"encoder.layers.1.linear1.weight \(checkpoint "
                       r"\(7, 50\), model \(100, 50\)\)"):
        load_cbramod_checkpoint(tmp_path / "w.pth", TINY)
    with pytest.raises(ModelSizeError, match="above the ceiling"):
        load_cbramod_checkpoint(tmp_path / "w.pth", EncoderConfig(n_layers=100000))


def test_a_pickle_payload_is_one_line_without_torchs_advice(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/ran",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"patch_embedding.spectral_proj.0.weight": Evil()}, f, protocol=4)
    with pytest.raises(CheckpointError, match="nothing in it was run") as info:
        load_cbramod_checkpoint(tmp_path / "evil.pth")
    assert "weights_only=False" not in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "ran").exists()


def test_exported_weights_have_the_mode_of_any_user_file(hub):
    mask = os.umask(0o022)
    os.umask(mask)
    assert (hub / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask


# --- item 5: a ceiling on model size in options and configs -----------------------------------


def test_model_size_options_are_refused_with_one_line_and_the_flag_raises_the_ceiling():
    t0 = time.perf_counter()
    with pytest.raises(ModelSizeError, match=r"40.3 G parameters .* --max-params"):
        criss_cross.create_model("ecg-base", n_layers=100000)
    with pytest.raises(ModelSizeError, match="dim_feedforward 100000000"):
        criss_cross.create_model("ecg-base", dim_feedforward=10**8)
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ModelSizeError, match="above the ceiling of 500 k"):
        criss_cross.create_model("ecg-small", max_params=500_000)
    assert count_parameters(criss_cross.create_model("ecg-small", max_params=2_000_000).config)
    with pytest.raises(ValueError, match="encoder: the encoder would have"):
        PretrainConfig.model_validate({"encoder": {"n_layers": 100000}})
    assert PretrainConfig.model_validate({"encoder": {"n_layers": 30}, "max_params": 10**8})


def test_pretrain_command_refuses_an_oversize_model_in_one_line(tmp_path):
    res = CliRunner().invoke(app, ["pretrain", "--store", str(tmp_path), "--out",
                                   str(tmp_path / "run"), "--n-layers", "100000"])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "40.3 G parameters" in lines[0] and "--max-params" in lines[0]


def test_pretrain_refuses_a_batch_whose_activations_exceed_the_ceiling(tiny_config, tmp_path):
    from criss_cross.pretrain import pretrain

    with pytest.raises(ModelSizeError, match=r"ecg@100: a training step would need .* "
                       r"--max-memory-gb"):
        pretrain(tiny_config(batch_size=10**6), tmp_path / "run", progress=False)


def test_fusion_configs_are_bounded():
    from pydantic import ValidationError

    from biosig_prep.util import validation_lines
    from fusion_emotion.config import FusionConfig

    for fields, message in [({"eeg_encoder": {"n_layers": 100000}}, "eeg_encoder: the encoder "
                                                                    "would have 40.3 G"),
                            ({"ecg_encoder": {"dim_feedforward": 1e8}}, "ecg_encoder: the "),
                            ({"head_hidden": 1e8}, "head_hidden 100000000 gives heads"),
                            ({"eeg_encoder": {"n_heads": 3}}, "eeg_encoder: Value error, "
                                                              "invalid encoder config")]:
        with pytest.raises(ValidationError) as info:
            FusionConfig.model_validate(fields)
        lines = validation_lines(info.value)
        assert len(lines) == 1 and message in lines[0], lines
    assert FusionConfig.model_validate({"head_hidden": 10**6, "max_params": 10**10})


# --- item 6: one writer per run folder --------------------------------------------------------


def _lock_of(pid: int) -> str:
    import socket

    return json.dumps({"pid": pid, "host": socket.gethostname(), "started": "now", "token": "t"})


def test_a_second_pretrain_into_the_same_folder_is_refused(tiny_config, tmp_path):
    from criss_cross.pretrain import pretrain

    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / "writer.lock").write_text(_lock_of(holder.pid))
        with pytest.raises(ValueError, match=rf"being written by another pretraining run \(pid "
                           rf"{holder.pid} on host"):
            pretrain(tiny_config(steps=2), run, progress=False)
        assert not (run / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    notes: list[str] = []
    summary = pretrain(tiny_config(steps=2, checkpoint_every=2), run, progress=False,
                       report=notes.append)  # the holder is dead: a stale lock, taken over
    assert summary.total_steps == 2 and any("took over a stale writer lock" in n for n in notes)
    assert not (run / "writer.lock").exists()


def test_an_empty_lock_is_named_not_pid_none(tmp_path):
    from biosig_prep.store.lock import FolderLock, LockedError

    (tmp_path / "writer.lock").write_bytes(b"")
    with pytest.raises(LockedError, match="is empty or unreadable") as info:
        FolderLock(tmp_path).acquire()
    assert "None" not in str(info.value)
    old = time.time() - 3600
    os.utime(tmp_path / "writer.lock", (old, old))
    lock = FolderLock(tmp_path)
    lock.acquire()
    assert "empty or unreadable" in lock.note
    lock.release()


def test_fusion_train_refuses_a_second_writer(tmp_path):
    from fusion_emotion.cli import app as fusion_app

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "writer.lock").write_text(_lock_of(holder.pid))
        res = CliRunner().invoke(fusion_app, ["train", "--store", str(tmp_path / "none.zarr"),
                                              "--out", str(tmp_path), "--no-progress"])
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 1 and f"fusion-emotion train (pid {holder.pid}" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command", ["probe", "bench"])
def test_probe_and_bench_refuse_a_second_writer_before_reading_anything(command, tmp_path):
    """The run folder is locked before the store is opened: the store here does not exist, so
    any message but the lock's would mean the run started."""
    out = tmp_path / "run"
    out.mkdir()
    extra = ["af-rhythm"] if command == "bench" else []
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "writer.lock").write_text(_lock_of(holder.pid))
        res = CliRunner().invoke(app, [command, *extra, "--store", str(tmp_path / "none.zarr"),
                                       "--out", str(out)])
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 1, res.output
    assert f"being written by another {command} run (pid {holder.pid}" in res.output
    assert "Traceback" not in res.output and sorted(p.name for p in out.iterdir()) == ["writer.lock"]
    # the holder is dead now: its lock is stale and taken over; the run then fails on the store
    res = CliRunner().invoke(app, [command, *extra, "--store", str(tmp_path / "none.zarr"),
                                   "--out", str(out)])
    assert res.exit_code == 1 and "none.zarr" in res.output and "being written" not in res.output
    assert not (out / "writer.lock").exists()
    # a folder that cannot be made (its parent is a file): one line naming it, no traceback
    (tmp_path / "afile").write_text("x")
    res = CliRunner().invoke(app, [command, *extra, "--store", str(tmp_path / "none.zarr"),
                                   "--out", str(tmp_path / "afile" / "run")])
    assert res.exit_code == 1 and "afile/run: cannot take the" in res.output, res.output
    assert "Traceback" not in res.output


# --- item 9: messages of probe and embed ------------------------------------------------------


def test_probe_options_are_loc_msg_lines(tmp_path):
    res = CliRunner().invoke(app, ["probe", "--store", "x", "--out", str(tmp_path),
                                   "--test-fraction", "2"])
    assert res.exit_code == 1
    assert res.output.strip() == "test_fraction: Input should be less than 1"


def test_probe_encoder_config_is_loc_msg(tmp_path):
    from criss_cross.probe import ProbeConfig
    from criss_cross.probe.run import load_encoder

    with pytest.raises(CheckpointError, match=r"^model 'ecg-base': invalid encoder config: "
                       "n_heads: Input should be a valid integer") as info:
        load_encoder(ProbeConfig(store="x", encoder={"n_heads": "x"}))
    assert "https://" not in str(info.value)


def test_probe_and_embed_name_a_damaged_shard_in_one_line(cinc_store, hub, tmp_path):
    import shutil

    store = tmp_path / "copy.zarr"
    shutil.copytree(cinc_store, store)
    shards = sorted((store / "ecg@200" / "windows" / "c").iterdir())
    shutil.rmtree(shards[0]) if shards[0].is_dir() else shards[0].unlink()
    res = CliRunner().invoke(app, ["probe", "--store", str(store), "--stream", "ecg@200",
                                   "--weights", str(hub), "--out", str(tmp_path / "p"),
                                   "--device", "cpu"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "ecg@200" in res.output
    assert "shard 0" in res.output
    res = CliRunner().invoke(app, ["embed", "--checkpoint", str(hub), "--store", str(store),
                                   "--stream", "ecg@200", "--out", str(tmp_path / "e.zarr"),
                                   "--no-progress", "--device", "cpu"])
    assert res.exit_code == 1 and "shard 0" in res.output and "Traceback" not in res.output


def test_embed_takes_a_hub_folder(cinc_store, hub, tmp_path):
    from criss_cross.embed import read_embeddings

    res = CliRunner().invoke(app, ["embed", "--checkpoint", str(hub), "--store", cinc_store,
                                   "--stream", "ecg@100", "--out", str(tmp_path / "e.zarr"),
                                   "--pool", "all", "--no-progress", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    emb = read_embeddings(tmp_path / "e.zarr")
    assert emb["embeddings"].shape[1] == 50 and emb["attrs"]["checkpoint"] == str(hub)
    _edit_config(hub, n_layers=100000)
    res = CliRunner().invoke(app, ["embed", "--checkpoint", str(hub), "--store", cinc_store,
                                   "--stream", "ecg@100", "--out", str(tmp_path / "f.zarr"),
                                   "--no-progress"])
    assert res.exit_code == 1 and "above the ceiling" in res.output
    assert len(res.output.strip().splitlines()) == 1
