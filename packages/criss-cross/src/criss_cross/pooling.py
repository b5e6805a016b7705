"""Averages over the valid entries of a token grid: the one rule every pooling uses.

A store marks its zero-filled leads in ``channel_mask`` (B, C) and the zero padding of a
record's last window in ``patch_mask`` (B, P), True where real samples are. Embeddings
(:meth:`criss_cross.CrissCrossEncoder.embed`), the probe and fusion-emotion's pooling all
average with :func:`masked_mean`, so a padded or missing entry never counts in a mean.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["masked_mean"]


def masked_mean(x: Tensor, valid: Tensor | None, dim: int) -> Tensor:
    """Mean of ``x`` over ``dim``, counting only the entries where ``valid`` is True.

    valid : bool, shaped like the leading ``dim + 1`` axes of ``x`` (e.g. (B, C) for the
        channels of (B, C, P, D), ``dim=1``); None counts every entry. A row with no valid
        entry gives zeros.
    """
    if valid is None:
        return x.mean(dim=dim)
    if tuple(valid.shape) != tuple(x.shape[:dim + 1]):
        raise ValueError(f"the mask's shape {tuple(valid.shape)} is not the leading axes "
                         f"{tuple(x.shape[:dim + 1])} of the values {tuple(x.shape)}")
    w = valid.to(device=x.device, dtype=x.dtype)
    w = w.reshape(*valid.shape, *([1] * (x.ndim - valid.ndim)))
    return (x * w).sum(dim=dim) / w.sum(dim=dim).clamp_min(1.0)
