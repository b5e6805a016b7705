"""CrissCrossEncoder: shapes, errors, gradients, the criss-cross layout, autocast, compile."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from criss_cross import CrissCrossEncoder, EncoderConfig
from criss_cross.encoder import (
    CPU_MATH_MAX_LEN,
    EncoderLayer,
    attention,
    attention_math,
    dropout,
    padded_sdpa,
    residual_dropout,
)

# CBraMod's width (d_model = patch_size = 200, 8 heads of 25) with 2 layers: fast, same shapes.
SMALL = EncoderConfig(n_layers=2)
# A tiny encoder (patches of 50 samples, 2 heads of 25) for the slower checks.
TINY = EncoderConfig(d_model=50, patch_size=50, n_heads=2, n_layers=2, dim_feedforward=64)


def _x(b, c, p, s=200, seed=0):
    return torch.randn(b, c, p, s, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c, p", [(1, 1), (1, 7), (12, 10), (14, 4), (3, 1), (23, 2)])
def test_output_shapes_for_any_channel_and_patch_count(c, p):
    model = CrissCrossEncoder(SMALL).eval()
    x = _x(2, c, p)
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)
    assert out.shape == (2, c, p, 200)
    assert feats.shape == (2, c, p, 200)
    assert torch.isfinite(out).all() and torch.isfinite(feats).all()


def test_default_config_is_cbramod():
    cfg = EncoderConfig()
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.dim_feedforward, cfg.patch_size) == (
        200, 12, 8, 800, 200,
    )
    assert cfg.dropout == 0.1 and cfg.proj_out and cfg.input_scale == 1.0
    model = CrissCrossEncoder()
    assert sum(p.numel() for p in model.parameters()) == 4_924_000
    assert len(model.state_dict()) == 211


def test_head_off_returns_embeddings_and_pooling():
    model = CrissCrossEncoder(SMALL.model_copy(update={"proj_out": False})).eval()
    assert isinstance(model.proj_out, nn.Identity)
    x = _x(3, 5, 4)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out, model.forward_features(x))
        assert model.embed(x).shape == (3, 5, 4, 200)
        per_patch = model.embed(x, pool="channels")
        assert per_patch.shape == (3, 4, 200)
        torch.testing.assert_close(per_patch, out.mean(dim=1))
        assert model.embed(x, pool="all").shape == (3, 200)
        torch.testing.assert_close(model.embed(x, pool="all"), out.mean(dim=(1, 2)))
        valid = torch.ones(3, 5, dtype=torch.bool)
        valid[:, 1:] = False
        torch.testing.assert_close(model.embed(x, pool="channels", valid_channels=valid), out[:, 0])
    with pytest.raises(ValueError, match="pool"):
        model.embed(x, pool="mean")


def test_embed_ignores_the_head_and_reset_head():
    model = CrissCrossEncoder(SMALL).eval()
    x = _x(1, 2, 3)
    with torch.no_grad():
        assert model(x).shape == (1, 2, 3, 200)
        assert model.embed(x).shape == (1, 2, 3, 200)
        torch.testing.assert_close(model.embed(x), model.forward_features(x))
        model.reset_head(7)
        assert model(x).shape == (1, 2, 3, 7)
        model.reset_head(None)
        assert isinstance(model.proj_out, nn.Identity)


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


def test_clear_errors():
    model = CrissCrossEncoder(SMALL)
    with pytest.raises(ValueError, match=r"\(batch, n_chans, n_patches, patch_size\).*3-D"):
        model(torch.randn(2, 12, 200))
    with pytest.raises(ValueError, match="expected patch_size 200, got 128"):
        model(torch.randn(2, 12, 10, 128))
    x = torch.randn(1, 2, 3, 200)
    x[0, 1, 2, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(x)
    with pytest.raises(ValueError, match="mask must have shape"):
        model(torch.randn(1, 2, 3, 200), torch.zeros(1, 2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 2, 3, 200, dtype=torch.int64))
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(1, 0, 3, 200))


def test_config_validation_names_the_fix():
    with pytest.raises(ValidationError, match="d_model .* must be even"):
        EncoderConfig(d_model=175, patch_size=175)
    with pytest.raises(ValidationError, match="n_heads .* must be even"):
        EncoderConfig(n_heads=5)
    with pytest.raises(ValidationError, match="divisible by n_heads // 2"):
        EncoderConfig(n_heads=6)
    with pytest.raises(ValidationError, match="multiple of 25"):
        EncoderConfig(d_model=210, patch_size=210, n_heads=2)
    with pytest.raises(ValidationError, match="must equal patch_size"):
        EncoderConfig(d_model=100, n_heads=4)
    with pytest.raises(ValidationError):
        EncoderConfig(dropout=1.0)
    with pytest.raises(ValidationError):
        EncoderConfig(unknown=1)
    assert EncoderConfig(input_scale=0.01).input_scale == 0.01
    assert EncoderConfig().n_freq_bins == 101 and TINY.n_freq_bins == 26


# ------------------------------------------------------------------------------------------
# gradients, masking, dropout
# ------------------------------------------------------------------------------------------


def test_every_parameter_gets_a_gradient_and_no_nan():
    torch.manual_seed(0)
    model = CrissCrossEncoder(SMALL).train()
    x = _x(2, 4, 3)
    mask = torch.zeros(2, 4, 3, dtype=torch.bool)
    mask[0, 1] = True
    mask[1, :, 0] = True
    out = model(x, mask)
    assert torch.isfinite(out).all()
    ((out - x) ** 2).mean().backward()
    for name, param in model.named_parameters():
        if name == "patch_embedding.mask_encoding":
            assert not param.requires_grad and param.grad is None
            continue
        assert param.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_mask_replaces_patches_with_mask_encoding():
    model = CrissCrossEncoder(SMALL).eval()
    with torch.no_grad():
        model.patch_embedding.mask_encoding.copy_(torch.linspace(-1, 1, 200))
        x = _x(2, 3, 4)
        mask = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(1)) < 0.5
        replaced = torch.where(mask[..., None], model.patch_embedding.mask_encoding, x)
        torch.testing.assert_close(model(x, mask), model(replaced), rtol=0, atol=0)
        # 0/1 integer masks (the official convention) mean the same
        torch.testing.assert_close(model(x, mask.long()), model(x, mask), rtol=0, atol=0)
        assert not torch.allclose(model(x, mask), model(x))


def test_dropout_statistics_and_modes():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.1, training=True)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.9) < 0.005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    assert abs(y.mean().item() - 1.0) < 0.01
    assert dropout(x, 0.1, training=False) is x
    base = torch.zeros(200_000)
    r = residual_dropout(base, x, 0.25, training=True)
    assert abs((r != 0).float().mean().item() - 0.75) < 0.005
    assert torch.equal(residual_dropout(base, x, 0.25, training=False), base + x)


def test_dropout_rounds_p_to_16_bits_and_stays_unbiased():
    torch.manual_seed(1)
    x = torch.ones(1_000_000)
    y = dropout(x, 0.1)
    dropped = round(0.1 * 2**16)  # 6554 of 65536 lanes
    scale = 2**16 / (2**16 - dropped)
    assert torch.unique(y).tolist() == [0.0, pytest.approx(scale, rel=1e-7)]
    kept = (y != 0).double().mean().item()
    # binomial sd of the kept fraction: sqrt(0.9 * 0.1 / 1e6) = 3e-4
    assert abs(kept - (1 - dropped / 2**16)) < 1.5e-3
    assert abs(y.double().mean().item() - 1.0) < 2e-3
    # the bits are fresh each call and follow the global seed
    torch.manual_seed(1)
    assert torch.equal(dropout(x, 0.1), y)
    assert not torch.equal(dropout(x, 0.1), y)
    # p that 16 bits cannot express goes through torch's dropout
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    # (rounded to 0 of 2**16 lanes it would keep everything at scale 1.0)
    tiny = torch.unique(dropout(x, 1e-7)).tolist()
    assert tiny[-1] == torch.tensor(1 / (1 - 1e-7)).item() != 1.0 and len(tiny) <= 2


def test_train_mode_is_stochastic_eval_mode_is_not():
    model = CrissCrossEncoder(SMALL)
    x = _x(1, 3, 4)
    model.train()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


# ------------------------------------------------------------------------------------------
# the criss-cross layout is the authors' one
# ------------------------------------------------------------------------------------------


def _authors_layer_forward(layer: EncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """The official layer's arithmetic, with nn.MultiheadAttention and explicit transposes."""
    b, c, p, d = x.shape
    half = d // 2
    heads = layer.self_attn_s.n_heads

    def mha(src, attn):
        ref = nn.MultiheadAttention(half, heads, batch_first=True, dtype=x.dtype)
        ref.in_proj_weight.data.copy_(attn.in_proj_weight)
        ref.in_proj_bias.data.copy_(attn.in_proj_bias)
        ref.out_proj.weight.data.copy_(attn.out_proj.weight)
        ref.out_proj.bias.data.copy_(attn.out_proj.bias)
        ref.eval()
        return ref(src, src, src, need_weights=False)[0]

    h = layer.norm1(x)
    xs = h[..., :half].transpose(1, 2).contiguous().view(b * p, c, half)
    xt = h[..., half:].contiguous().view(b * c, p, half)
    xs = mha(xs, layer.self_attn_s).view(b, p, c, half).transpose(1, 2)
    xt = mha(xt, layer.self_attn_t).view(b, c, p, half)
    x = x + torch.cat((xs, xt), dim=3)
    return x + layer.linear2(F.gelu(layer.linear1(layer.norm2(x))))


def test_layer_matches_the_authors_layout_in_float64():
    torch.manual_seed(0)
    layer = EncoderLayer(SMALL).double().eval()
    for module in layer.modules():  # non-trivial biases everywhere
        for name in ("in_proj_bias", "bias"):
            t = getattr(module, name, None)
            if isinstance(t, torch.Tensor):
                nn.init.normal_(t, std=0.1)
    x = torch.randn(2, 5, 3, 200, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), _authors_layer_forward(layer, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("length", [7, CPU_MATH_MAX_LEN, CPU_MATH_MAX_LEN + 9])
def test_attention_paths_agree(length):
    # on CPU, attention() takes attention_math up to CPU_MATH_MAX_LEN keys and SDPA beyond
    q, k, v = (torch.randn(3, 4, length, 25, dtype=torch.float64) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(attention_math(q, k, v, 0.0), ref)
    torch.testing.assert_close(padded_sdpa(q, k, v), ref)
    torch.testing.assert_close(attention(q, k, v), ref)
    assert padded_sdpa(q, k, v).shape == q.shape


def test_float64_input_keeps_a_float64_spectrum():
    model = CrissCrossEncoder(SMALL).double().eval()
    x = _x(2, 3, 4).double()
    seen = []
    model.patch_embedding.spectral_proj.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        model(x)
    assert seen[0].dtype == torch.float64
    torch.testing.assert_close(seen[0], torch.fft.rfft(x, dim=-1, norm="forward").abs(), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------
# initialisation
# ------------------------------------------------------------------------------------------


def test_init_is_kaiming_fan_out_on_linears():
    torch.manual_seed(0)
    model = CrissCrossEncoder()
    w = model.encoder.layers[0].linear1.weight  # (800, 200): fan_out = 800
    assert abs(w.std().item() - math.sqrt(2 / 800)) < 0.002
    attn = model.encoder.layers[0].self_attn_s
    assert torch.equal(attn.in_proj_bias, torch.zeros(300))
    assert torch.equal(model.patch_embedding.mask_encoding, torch.zeros(200))


# ------------------------------------------------------------------------------------------
# autocast and compile
# ------------------------------------------------------------------------------------------


def test_autocast_bf16_cpu():
    model = CrissCrossEncoder(SMALL).eval()
    x = _x(2, 3, 4)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[:, 0, 1] = True
    with torch.no_grad():
        ref = model(x, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x, mask)
    assert out.dtype == torch.bfloat16
    rel = (out.float() - ref).norm() / ref.norm()
    assert rel < 0.05, f"bf16 relative error {rel:.3f}"
    # and training under autocast back-propagates
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x, mask).float().square().mean()
    loss.backward()
    assert model.encoder.layers[0].linear1.weight.grad is not None


def _compile_works() -> str | None:
    try:
        fn = torch.compile(lambda t: t * 2 + 1)
        fn(torch.ones(2))
    except Exception as err:  # no C++ compiler, unsupported platform...
        return f"torch.compile is unusable here: {type(err).__name__}: {str(err)[:200]}"
    return None


@pytest.mark.slow
# Dynamo/Inductor warn about their own internals (deprecated torch.jit APIs, complex FFT ops
# left to eager); those warnings are not about this code.
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_torch_compile_matches_eager():
    reason = _compile_works()
    if reason:
        pytest.skip(reason)
    torch._dynamo.reset()
    cfg = TINY.model_copy(update={"n_layers": 1})
    model = CrissCrossEncoder(cfg).eval()
    x = _x(2, 3, 4, 50)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[0, 1] = True
    start = time.perf_counter()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        out = compiled(x, mask)
        ref = model(x, mask)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert time.perf_counter() - start < 300
