"""Dropout for CPU training: the same function as :func:`torch.nn.functional.dropout`, faster.

On CPU, PyTorch's dropout draws a Bernoulli float mask (about 6 ns per element);
:func:`keep_mask` thresholds 16-bit lanes of int64 random words (about 1.4 ns per element),
with ``p`` rounded to a multiple of 2**-16. Other devices, and ``torch.compile``, use PyTorch's
fused kernel. :func:`residual_dropout` fuses ``x + dropout(y)`` into one ``addcmul``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Dropout", "dropout", "fast_dropout_applies", "keep_mask", "residual_dropout"]


# Dropout draws 16 random bits per element: the keep probability is rounded to a multiple of
# 2**-16 (p = 0.1 drops with probability 0.100006) and the scale uses the rounded value, so
# the output stays unbiased.
_DROP_BITS = 16
_DROP_LEVELS = 1 << _DROP_BITS


def keep_mask(x: Tensor, p: float) -> Tensor:
    """Float mask of x's shape: 1 / (1 - p) with probability 1 - p, else 0 (CPU dropout).

    PyTorch's CPU RNG costs about 3 ns per float drawn by ``torch.rand``; a full-range int64
    draw costs about as much and gives four 16-bit lanes, which are compared with the integer
    threshold of ``p``: a third of the cost, for a 2**-16 rounding of ``p``.
    """
    n = x.numel()
    levels = round(p * _DROP_LEVELS)  # dropped lanes out of 2**16
    words = torch.empty(-(-n // 4), dtype=torch.int64, device=x.device).random_(-(2**63), None)
    lanes = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-2**15, 2**15)
    keep = lanes >= levels - _DROP_LEVELS // 2
    return keep.to(x.dtype).mul_(_DROP_LEVELS / (_DROP_LEVELS - levels))


def fast_dropout_applies(x: Tensor, p: float) -> bool:
    """Whether :func:`keep_mask` serves ``x``: on CPU, eager, and p not rounded to 0 or 1."""
    levels = round(p * _DROP_LEVELS)
    return (
        x.device.type == "cpu" and not torch.compiler.is_compiling() and 0 < levels < _DROP_LEVELS
    )


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout, as :func:`torch.nn.functional.dropout`, faster on CPU.

    Each element is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``. On CPU,
    PyTorch's dropout draws a Bernoulli mask, divides it and multiplies (about 6 ns per
    element for the mask alone); :func:`keep_mask` makes the same kind of float mask from 16
    random bits per element in about 1.4 ns, with ``p`` rounded to a multiple of 2**-16.
    Other devices use the fused kernel of :func:`torch.nn.functional.dropout`, and so does
    ``torch.compile`` (Inductor fuses it).
    """
    if not training or p == 0.0:
        return x
    if not fast_dropout_applies(x, p):
        return F.dropout(x, p, True)
    return x * keep_mask(x, p)


def residual_dropout(x: Tensor, y: Tensor, p: float, training: bool = True) -> Tensor:
    """``x + dropout(y)`` in one pass on CPU (``torch.addcmul``)."""
    if not training or p == 0.0:
        return x + y
    if not fast_dropout_applies(y, p):
        return x + F.dropout(y, p, True)
    return torch.addcmul(x, y, keep_mask(y, p))


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` through :func:`dropout` (same semantics, faster on CPU)."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)
