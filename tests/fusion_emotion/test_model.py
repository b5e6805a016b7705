"""FusionModel shapes, gradients, pooling; the frozen (cached) path equals the full model;
encoders from our checkpoints, official-format state dicts, or random init with a warning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion_emotion.config import FusionConfig
from fusion_emotion.encoders import embed_windows, load_encoder, resolve_weights
from fusion_emotion.model import BinaryHeads, FusionModel, pool_channels, pool_patches

SMALL = {"n_layers": 1, "dim_feedforward": 64}


def _encoder(seed: int = 0):
    from criss_cross import CrissCrossEncoder, EncoderConfig

    torch.manual_seed(seed)
    return CrissCrossEncoder(EncoderConfig(proj_out=False, **SMALL))


def _inputs(b: int = 3):
    g = torch.Generator().manual_seed(0)
    return {"eeg": torch.randn(b, 14, 4, 200, generator=g), "ecg": torch.randn(b, 2, 4, 200, generator=g)}


@pytest.mark.parametrize("pool,dim", [("flatten", 2 * 4 * 200), ("mean", 2 * 200)])
def test_forward_shape_and_every_parameter_gets_a_gradient(pool, dim):
    model = FusionModel(["eeg", "ecg"], {"eeg": _encoder(0), "ecg": _encoder(1)}, n_patches=4,
                        d_model=200, pool=pool)
    assert model.in_features == dim
    logits = model(_inputs())
    assert logits.shape == (3, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []


def test_single_modality_model():
    model = FusionModel(["ecg"], {"ecg": _encoder()}, n_patches=4, d_model=200, pool="mean")
    assert model(_inputs()).shape == (3, 3)
    with pytest.raises(ValueError, match="no encoder"):
        FusionModel(["eeg"], {"ecg": _encoder()}, n_patches=4, d_model=200)


def test_channel_pooling_skips_missing_channels():
    z = torch.randn(2, 3, 4, 5)
    mask = torch.tensor([[True, False, True], [True, True, True]])
    out = pool_channels(z, mask)
    assert torch.allclose(out[0], (z[0, 0] + z[0, 2]) / 2)
    assert torch.allclose(out[1], z[1].mean(0))
    assert pool_patches(out, "flatten").shape == (2, 20)
    assert pool_patches(out, "mean").shape == (2, 5)


def test_cached_embeddings_give_the_frozen_models_outputs():
    """Heads on cached channel-pooled embeddings == the full model with frozen encoders."""
    encoders = {"eeg": _encoder(0), "ecg": _encoder(1)}
    full = FusionModel(["eeg", "ecg"], encoders, n_patches=4, d_model=200).eval()
    heads_only = FusionModel(["eeg", "ecg"], None, n_patches=4, d_model=200).eval()
    heads_only.head.load_state_dict(full.head.state_dict())
    x = _inputs(5)
    cached = {
        m: torch.from_numpy(embed_windows(encoders[m], iter([(x[m].numpy(), None)]), 5, scale=1.0,
                                          batch_size=2))
        for m in ("eeg", "ecg")
    }
    with torch.no_grad():
        assert torch.allclose(full(x), heads_only(cached), atol=1e-5)


def test_heads_init_and_dropout_follow_their_generator():
    a, b = BinaryHeads(10), BinaryHeads(10)
    a.reset_parameters(torch.Generator().manual_seed(3))
    b.reset_parameters(torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    x = torch.randn(4, 10)
    a.set_generator(torch.Generator().manual_seed(5))
    b.set_generator(torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    ya = a.train()(x)
    torch.manual_seed(1)  # the global RNG does not matter
    assert torch.equal(ya, b.train()(x))


def test_random_init_warns_and_uses_the_modality_scale():
    cfg = FusionConfig(eeg_encoder=SMALL)
    enc = load_encoder("eeg", None, cfg)
    assert enc.source == "random-init" and "NO pretrained weights" in enc.warning
    assert enc.input_scale == 0.01 and enc.config["n_layers"] == 1
    again = load_encoder("eeg", None, cfg)
    for pa, pb in zip(enc.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(pa, pb)  # seeded by init_seed
    assert load_encoder("ecg", None, FusionConfig(ecg_scale=2.0, ecg_encoder=SMALL)).input_scale == 2.0


def test_our_checkpoint_loads_with_its_input_scale(tmp_path):
    from criss_cross import CrissCrossEncoder, EncoderConfig, save_checkpoint

    model = CrissCrossEncoder(EncoderConfig(input_scale=0.5, **SMALL))
    save_checkpoint(model, tmp_path / "ecg_encoder")
    for path in (tmp_path / "ecg_encoder", tmp_path / "ecg_encoder.safetensors", tmp_path):
        enc = load_encoder("ecg", path, FusionConfig())
        assert enc.source == "checkpoint" and enc.warning is None
        assert enc.input_scale == 0.5 and enc.config["proj_out"] is False
        loaded = enc.model.state_dict()
        encoder_keys = [k for k in model.state_dict() if not k.startswith("proj_out")]
        assert sorted(loaded) == sorted(encoder_keys)  # the reconstruction head is dropped
        for k in encoder_keys:
            assert torch.equal(model.state_dict()[k], loaded[k]), k
    assert load_encoder("ecg", tmp_path, FusionConfig(ecg_scale=1.0)).input_scale == 1.0


def test_pretrain_run_folder_resolves_to_its_latest_checkpoint(tmp_path):
    from criss_cross import CrissCrossEncoder, EncoderConfig, save_checkpoint

    ckdir = tmp_path / "pretrain" / "checkpoints"
    for step in (100, 200, 300):
        save_checkpoint(CrissCrossEncoder(EncoderConfig(**SMALL)), ckdir / f"step_{step:08d}" / "model")
    (ckdir / "latest").write_text('{"checkpoint": "step_00000200", "step": 200}')
    kind, file = resolve_weights(tmp_path / "pretrain")
    assert kind == "checkpoint" and file == ckdir / "step_00000200" / "model.safetensors"
    (ckdir / "latest").unlink()
    assert resolve_weights(tmp_path / "pretrain")[1] == ckdir / "step_00000300" / "model.safetensors"


def test_hub_folder_loads_with_its_own_config_and_scale(tmp_path):
    """A `criss-cross export` folder loads as what it is (architecture and input_scale from its
    config.json), whether the folder or its model.safetensors is named; it used to be refused
    (folder) or read as CBraMod tensors at the default size and scale (file)."""
    from criss_cross import CrissCrossEncoder, EncoderConfig, save_pretrained

    torch.manual_seed(0)
    model = CrissCrossEncoder(EncoderConfig(**SMALL, input_scale=0.5)).eval()
    folder = save_pretrained(model, tmp_path / "hub")
    x = torch.randn(2, 12, 3, 200)
    with torch.no_grad():
        ref = model.forward_features(x)
    for path in (folder, folder / "model.safetensors"):
        enc = load_encoder("ecg", path, FusionConfig())
        assert enc.source == "hub" and enc.input_scale == 0.5
        assert enc.config["n_layers"] == 1 and enc.config["dim_feedforward"] == 64
        with torch.no_grad():
            assert torch.equal(enc.model.eval().forward_features(x), ref)


def test_only_our_hub_folders_count_as_hub(tmp_path):
    """A folder is read as Hub format only when its config.json is a criss-cross encoder's:
    our own checkpoint beside another config.json (a run's settings) stays a checkpoint, and a
    third-party HF-style folder's tensors stay CBraMod tensors."""
    from criss_cross import CrissCrossEncoder, EncoderConfig, save_checkpoint

    run = tmp_path / "run"
    save_checkpoint(CrissCrossEncoder(EncoderConfig(**SMALL)), run / "model")
    (run / "config.json").write_text('{"steps": 300}')
    assert resolve_weights(run) == ("checkpoint", run / "model.safetensors")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "cbramod"}')
    (other / "model.safetensors").write_bytes(b"")
    assert resolve_weights(other / "model.safetensors") == ("cbramod",
                                                            other / "model.safetensors")


def test_official_state_dict_loads(tmp_path):
    from criss_cross import CrissCrossEncoder

    model = CrissCrossEncoder()  # CBraMod's size: the official .pth has 12 layers
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "pretrained_weights.pth")
    enc = load_encoder("eeg", tmp_path / "pretrained_weights.pth", FusionConfig())
    assert enc.source == "cbramod" and enc.input_scale == 0.01 and enc.d_model == 200
    x = torch.randn(1, 14, 2, 200)
    model.eval()
    enc.model.eval()
    with torch.no_grad():
        assert torch.allclose(model.forward_features(x), enc.model.forward_features(x), atol=1e-6)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        resolve_weights(tmp_path / "nothing.pth")
    with pytest.raises(FileNotFoundError, match="no encoder checkpoint in directory"):
        resolve_weights(tmp_path)


def test_bf16_embeddings_stay_close():
    enc = _encoder()
    w = np.random.default_rng(0).normal(size=(4, 3, 2, 200)).astype(np.float32)
    ref = embed_windows(enc, iter([(w, None)]), 4, scale=1.0)
    low = embed_windows(enc, iter([(w, None)]), 4, scale=1.0, bf16=True)
    assert low.dtype == np.float32
    assert np.linalg.norm(low - ref) / np.linalg.norm(ref) < 0.05


def test_embed_windows_counts():
    enc = _encoder()
    w = np.random.default_rng(0).normal(size=(7, 2, 3, 200)).astype(np.float32)
    out = embed_windows(enc, iter([(w[:4], None), (w[4:], None)]), 7, scale=1.0, batch_size=3)
    assert out.shape == (7, 3, 200) and out.dtype == np.float32
    with pytest.raises(ValueError, match="expected 8"):
        embed_windows(enc, iter([(w, None)]), 8, scale=1.0)
