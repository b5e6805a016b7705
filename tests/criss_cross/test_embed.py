"""Embeddings of a store's stream: shapes, values, aligned bookkeeping, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biosig_prep import open_store
from criss_cross.cli import app
from criss_cross.embed import embed_store, read_embeddings
from criss_cross.pretrain import pretrain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run_dir(tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("embed") / "run"
    pretrain(tiny_config(steps=3, checkpoint_every=3), out, progress=False)
    return out


@pytest.mark.parametrize("pool", ["none", "channels", "all"])
def test_embed_store_matches_the_model(run_dir, cinc_store, tmp_path, pool):
    from criss_cross.checkpoint import load_checkpoint
    from criss_cross.pretrain import latest_checkpoint

    out = embed_store(run_dir, cinc_store, "ecg@200", tmp_path / "e.zarr", batch_size=64,
                      pool=pool)
    got = read_embeddings(out)
    stream = open_store(cinc_store).stream("ecg@200")
    raw = stream.read(0, len(stream))
    n, c, p, _ = raw["windows"].shape
    expect_shape = {"none": (n, c, p, 50), "channels": (n, p, 50), "all": (n, 50)}[pool]
    assert got["embeddings"].shape == expect_shape
    for key in ("record", "start", "channel_mask"):
        np.testing.assert_array_equal(got[key], raw[key])
    assert got["attrs"]["complete"] and got["attrs"]["pool"] == pool
    model = load_checkpoint(latest_checkpoint(run_dir) / "model").eval()
    rows = [0, 7, n - 1]
    with torch.inference_mode():
        x = torch.from_numpy(raw["windows"][rows]) * model.config.input_scale
        valid = torch.from_numpy(raw["channel_mask"][rows])
        ref = model.embed(x, pool=pool, valid_channels=None if pool == "none" else valid)
    np.testing.assert_allclose(got["embeddings"][rows], ref.numpy(), rtol=1e-4, atol=1e-5)


def test_embed_cli(run_dir, cinc_store, tmp_path):
    out = tmp_path / "cli.zarr"
    args = ["embed", "--checkpoint", str(run_dir), "--store", cinc_store, "--stream", "ecg@100",
            "--out", str(out), "--pool", "all", "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert read_embeddings(out)["embeddings"].shape == (len(open_store(cinc_store).stream("ecg@100")), 50)
    res = CliRunner().invoke(app, args)  # exists: refuses without --overwrite
    assert res.exit_code == 1 and "overwrite" in res.output
    res = CliRunner().invoke(app, [*args[:-3], "--out", str(tmp_path / "x.zarr"), "--stream",
                                   "ecg@500"])
    assert res.exit_code == 1 and "no stream" in res.output


def test_embed_reports_a_missing_shard(run_dir, cinc_store, tmp_path):
    """embed reads through the store's own reader: a deleted shard is an error naming the
    stream and shard, not windows of zeros embedded into a store marked complete."""
    import shutil

    from biosig_prep.store import DamagedShardError

    store = tmp_path / "copy.zarr"
    shutil.copytree(cinc_store, store)
    shards = sorted((store / "ecg@200" / "windows" / "c").iterdir())
    shutil.rmtree(shards[0]) if shards[0].is_dir() else shards[0].unlink()
    with pytest.raises(DamagedShardError, match=r"ecg@200.*shard 0"):
        embed_store(run_dir, str(store), "ecg@200", tmp_path / "e.zarr", pool="all")
