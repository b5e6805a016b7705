"""criss_cross.layers: the fused-attention switch and the names the encoder re-exports."""

from __future__ import annotations

import torch

import criss_cross.encoder as encoder
import criss_cross.layers as layers
import criss_cross.layers.attention_dispatch as attention_mod


def test_fused_attention_switch_routes_to_the_math_path(monkeypatch):
    q, k, v = (torch.randn(2, 3, 64, 25, generator=torch.Generator().manual_seed(i))
               for i in range(3))
    calls = []
    real = attention_mod.attention_math

    def spy(*args, **kw):
        calls.append(args[0].shape)
        return real(*args, **kw)

    monkeypatch.setattr(attention_mod, "attention_math", spy)
    assert layers.use_fused_attn()
    fused = layers.attention(q, k, v)  # 64 keys > CPU_MATH_MAX_LEN: SDPA
    assert calls == []
    try:
        layers.set_fused_attn(False)
        assert not layers.use_fused_attn()
        math_out = layers.attention(q, k, v)
    finally:
        layers.set_fused_attn(True)
    assert len(calls) == 1
    torch.testing.assert_close(math_out, fused, rtol=1e-5, atol=1e-6)


def test_encoder_still_exports_the_moved_names():
    for name in ("CPU_MATH_MAX_LEN", "Dropout", "attention", "attention_math", "dropout",
                 "padded_sdpa", "residual_dropout"):
        assert getattr(encoder, name) is getattr(layers, name)
