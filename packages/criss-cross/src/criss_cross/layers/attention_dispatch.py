"""Softmax attention for the criss-cross layers, and the switch between its kernels.

:func:`attention` dispatches to PyTorch's fused
:func:`~torch.nn.functional.scaled_dot_product_attention`, to :func:`padded_sdpa` (CUDA, head
dimensions that are not a multiple of 8, such as CBraMod's 25) or to :func:`attention_math`
(CPU: short sequences and attention dropout); all compute the same function. As timm's
``use_fused_attn``, the fused kernels can be switched off, for debugging or for a backend that
mishandles them: :func:`set_fused_attn` (``False``: always :func:`attention_math`), or the
environment variable ``CRISS_CROSS_FUSED_ATTN=0`` read at import.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

from criss_cross.layers.dropout import dropout

__all__ = ["CPU_MATH_MAX_LEN", "attention", "attention_math", "padded_sdpa", "set_fused_attn",
           "use_fused_attn"]

_FUSED_ATTN = os.environ.get("CRISS_CROSS_FUSED_ATTN", "1").strip().lower() not in (
    "0", "false", "no", "off")


def use_fused_attn() -> bool:
    """Whether :func:`attention` may use PyTorch's fused kernels (True by default)."""
    return _FUSED_ATTN


def set_fused_attn(enable: bool = True) -> None:
    """Allow (True) or forbid (False: always :func:`attention_math`) the fused kernels."""
    global _FUSED_ATTN
    _FUSED_ATTN = bool(enable)


# On CPU, sequences up to this length go through attention_math (see attention()).
CPU_MATH_MAX_LEN = 32


def attention(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
    """Softmax attention of (batch, heads, seq, D) tensors with scale 1/sqrt(D).

    Dispatch, all computing the same function:

    - :func:`torch.nn.functional.scaled_dot_product_attention` by default (fused kernels);
    - on CUDA with D not a multiple of 8 (25 for CBraMod), :func:`padded_sdpa`, so the fused
      kernels accept it;
    - on CPU, :func:`attention_math` with attention dropout (SDPA falls back to its unfused
      path then, with PyTorch's slow CPU dropout and a softmax over short rows), and for
      sequences of at most ``CPU_MATH_MAX_LEN`` keys: CBraMod attends over 10-30 patches and
      up to a few dozen channels, where the flash kernel's blocking costs more than it saves
      (measured 1.2-2.2x slower than attention_math at 10-30 keys, about even at 40-64,
      2.2x faster at 128).
    With :func:`set_fused_attn` ``(False)``, always :func:`attention_math`.
    """
    if not _FUSED_ATTN:
        return attention_math(q, k, v, dropout_p)
    if q.device.type == "cpu":
        if dropout_p > 0.0 or k.shape[-2] <= CPU_MATH_MAX_LEN:
            return attention_math(q, k, v, dropout_p)
        return F.scaled_dot_product_attention(q, k, v)
    if q.device.type == "cuda" and q.shape[-1] % 8:
        return padded_sdpa(q, k, v, dropout_p)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


def padded_sdpa(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0, multiple: int = 8) -> Tensor:
    """SDPA with the head dimension zero-padded to a multiple of ``multiple``; exact.

    Zeros add nothing to the q.k products and give zero output features, which are cut off;
    the scale stays 1/sqrt(D) of the unpadded D.
    """
    d = q.shape[-1]
    pad = -d % multiple
    if pad == 0:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=d**-0.5)
    return out[..., :d]


def attention_math(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0) -> Tensor:
    """Unfused attention with :func:`dropout` on the probabilities, for CPU training.

    The scores are computed transposed (keys along dim -2): PyTorch's CPU softmax vectorises
    over a non-last dimension, about 4x faster (forward and backward) than over rows of 10-12
    elements.
    """
    scores_t = torch.matmul(k, q.transpose(-2, -1)).mul_(q.shape[-1] ** -0.5)  # (..., Lk, Lq)
    attn_t = dropout(scores_t.softmax(dim=-2), dropout_p)
    return torch.matmul(attn_t.transpose(-2, -1), v)
