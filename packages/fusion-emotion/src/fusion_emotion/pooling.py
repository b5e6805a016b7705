"""Pooling of encoder outputs over channels and patches, over valid entries only.

Conventions of the store (contract 3 of the design): ``channel_mask`` (B, C) and ``patch_mask``
(B, P) are True where the channel / patch holds real samples; a missing mask means all valid.
A padded patch (the zero tail of a record's last window) never counts in a mean, and is zeroed
in a flattened vector.
"""

from __future__ import annotations

import torch

from criss_cross.pooling import masked_mean

__all__ = ["pool_channels", "pool_patches", "feature_dim", "POOLS"]

POOLS = ("flatten", "mean")


def pool_channels(z: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over channels of ``z`` (B, C, P, D) -> (B, P, D), over valid channels only.

    channel_mask : (B, C) bool, True where the channel holds signal (the store's convention;
        False = missing and zero-filled). None: every channel counts.
    """
    if z.ndim != 4:
        raise ValueError(f"embeddings must be (B, C, P, D), got shape {tuple(z.shape)}")
    return masked_mean(z, channel_mask, dim=1)


def pool_patches(z: torch.Tensor, pool: str, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, P, D) -> (B, P·D) for ``pool="flatten"`` or (B, D) for ``pool="mean"``.

    patch_mask : (B, P) bool, True = valid patch; the mean is over valid patches only, and
        flatten zeroes the padded ones. None: every patch counts.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be 'flatten' or 'mean', got {pool!r}")
    if pool == "mean":
        return masked_mean(z, patch_mask, dim=1)
    if patch_mask is None:
        return z.flatten(1)
    return (z * patch_mask.to(z.dtype)[:, :, None]).flatten(1)


def feature_dim(n_patches: int, d_model: int, pool: str) -> int:
    """Length of one modality's vector after pooling."""
    return n_patches * d_model if pool == "flatten" else d_model
