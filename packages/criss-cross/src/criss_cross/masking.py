"""Masks for masked-reconstruction pretraining.

Convention (as in MAE): **True = masked** (the patch is replaced by the model's
``mask_encoding`` and reconstructed), False = visible. Shapes use ``B, C, P`` for batch,
channels (leads) and patches.

Every function takes an explicit :class:`torch.Generator`, so a run is reproducible from its
seed whatever else draws random numbers; masks are drawn on the generator's device and then
moved to ``device``.

- :func:`patch_mask`: each patch masked independently with probability ``ratio`` (Bernoulli).
- :func:`channel_mask`: per sample, ``k = floor(proportion * C + 1/2)`` whole channels chosen
  uniformly without replacement (``round`` with halves rounded up, so 0.25 of 2 leads is 1).
- :func:`dual_mask`: the union of both; returns the patch mask and the masked channels.

Padded patches (``valid_patches`` False: the zero padding of a record's last partial window)
are never masked: a masked channel masks its valid patches only. Zero-filled leads
(``valid_channels`` False) are never chosen for whole-channel masking. Neither changes the
random draws, so with everything valid the masks are the ones drawn without them.

Defaults of the dual-masking objective: ``ratio = 0.5`` (CBraMod's pretraining ratio) and
``proportion = 0.25`` (3 of 12 ECG leads). The paper (arXiv 2512.15250) gives no values; these
are ours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_CHANNEL_PROPORTION",
    "DEFAULT_PATCH_RATIO",
    "channel_mask",
    "dual_mask",
    "n_masked_channels",
    "patch_mask",
]

DEFAULT_PATCH_RATIO = 0.5
DEFAULT_CHANNEL_PROPORTION = 0.25


def _check_shape(shape: Sequence[int], ndim: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in ndim:
        names = " or ".join({2: "(B, C)", 3: "(B, C, P)"}[n] for n in ndim)
        raise ValueError(f"shape must be {names}, got {shape}")
    if any(s < 1 for s in shape):
        raise ValueError(f"every dimension of shape must be >= 1, got {shape}")
    return shape


def _check_fraction(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def _check_generator(generator: torch.Generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
            f"got {type(generator).__name__}"
        )
    return generator


def n_masked_channels(n_chans: int, proportion: float) -> int:
    """Channels masked per sample: ``floor(proportion * n_chans + 1/2)``."""
    return int(math.floor(_check_fraction(proportion, "proportion") * n_chans + 0.5))


def patch_mask(
    shape: Sequence[int],
    ratio: float,
    generator: torch.Generator,
    device: torch.device | str | None = None,
) -> Tensor:
    """Bernoulli patch mask.

    Parameters
    ----------
    shape : (B, C, P)
    ratio : float in [0, 1]
        Probability that a patch is masked.
    generator : torch.Generator
    device : optional
        Where the mask goes (default: the generator's device).

    Returns
    -------
    Tensor, shape (B, C, P), bool
        True = masked.
    """
    shape = _check_shape(shape, (3,))
    ratio = _check_fraction(ratio, "ratio")
    generator = _check_generator(generator)
    u = torch.rand(shape, generator=generator, device=generator.device)
    return (u < ratio).to(device if device is not None else generator.device)


def channel_mask(
    shape: Sequence[int],
    proportion: float,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    valid_channels: Tensor | None = None,
) -> Tensor:
    """Whole-channel mask: per sample, ``round(proportion * C)`` channels chosen uniformly.

    Parameters
    ----------
    shape : (B, C) or (B, C, P)
        Only B and C are used.
    proportion : float in [0, 1]
        Fraction of channels masked per sample, rounded half up to a count
        (:func:`n_masked_channels`).
    generator : torch.Generator
    device : optional
        Where the mask goes (default: the generator's device).
    valid_channels : Tensor, shape (B, C), bool, optional
        Channels that may be chosen (False for zero-filled leads). With it, each sample masks
        ``round(proportion * n_valid)`` of its valid channels.

    Returns
    -------
    Tensor, shape (B, C), bool
        True = every patch of that channel is masked.
    """
    shape = _check_shape(shape, (2, 3))
    b, c = shape[0], shape[1]
    proportion = _check_fraction(proportion, "proportion")
    generator = _check_generator(generator)
    gdev = generator.device
    scores = torch.rand((b, c), generator=generator, device=gdev)
    if valid_channels is None:
        k = torch.full((b, 1), n_masked_channels(c, proportion), device=gdev)
    else:
        if tuple(valid_channels.shape) != (b, c):
            raise ValueError(
                f"valid_channels must have shape (B, C) = {(b, c)}, got {tuple(valid_channels.shape)}"
            )
        valid = valid_channels.to(device=gdev, dtype=torch.bool)
        n_valid = valid.sum(dim=1, keepdim=True).to(torch.float64)
        k = torch.floor(proportion * n_valid + 0.5).to(torch.int64)
        scores = torch.where(valid, scores, 2.0)  # invalid channels rank last
    # Rank of every channel in a uniformly random order; the k first are masked.
    rank = scores.argsort(dim=1).argsort(dim=1)
    return (rank < k).to(device if device is not None else gdev)


def dual_mask(
    shape: Sequence[int],
    ratio: float,
    proportion: float,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    valid_channels: Tensor | None = None,
    valid_patches: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Dual masking: Bernoulli patches (``ratio``) united with whole channels (``proportion``).

    Parameters
    ----------
    shape : (B, C, P)
    ratio, proportion, generator, device, valid_channels
        As in :func:`patch_mask` and :func:`channel_mask`. The patch mask is drawn first, then
        the channels, from the same generator.
    valid_patches : Tensor, shape (B, P), bool, optional
        False for padded patches, which are never masked (neither by the Bernoulli draw nor
        as part of a masked channel). All valid when None.

    Returns
    -------
    mask : Tensor, shape (B, C, P), bool
        True = masked (patch-masked or in a masked channel); what the model is given.
    masked_channels : Tensor, shape (B, C), bool
        True = the whole channel was masked; what :class:`criss_cross.losses.DualMaskingLoss`
        needs.
    """
    shape = _check_shape(shape, (3,))
    patches = patch_mask(shape, ratio, generator)
    channels = channel_mask(shape, proportion, generator, valid_channels=valid_channels)
    mask = patches | channels.unsqueeze(-1)
    if valid_patches is not None:
        if tuple(valid_patches.shape) != (shape[0], shape[2]):
            raise ValueError(f"valid_patches must have shape (B, P) = {(shape[0], shape[2])}, "
                             f"got {tuple(valid_patches.shape)}")
        mask = mask & valid_patches.to(device=mask.device, dtype=torch.bool).unsqueeze(1)
    out = device if device is not None else generator.device
    return mask.to(out), channels.to(out)
