"""Reconstruction objectives for masked pretraining.

Both losses take ``pred`` and ``target`` (B, C, P, S), a patch ``mask`` (B, C, P) bool with
**True = masked**, and optionally ``valid_channels`` (B, C) bool: False marks zero-filled leads,
and ``valid_patches`` (B, P) bool: False marks padded patches (the zero padding of a record's
last partial window). Both are left out of every term (they hold no signal to reconstruct).

Every term is a pooled MSE: the squared error summed over the selected patches (all S samples
of each) divided by their number, as CBraMod's ``mse(pred[mask], target[mask])``. A term with
nothing to average (no masked channel in the batch, say) is dropped and the weights of the
others renormalised, so the total is never NaN; when every term is empty the total is a zero
that still back-propagates. Everything stays on the device (no ``.item()``, no host sync), so
the losses compile.

The result is a :class:`LossOutput`: ``total`` to back-propagate, ``terms`` (each term's value;
0 for a dropped one) and ``weights`` (each term's effective weight in ``total``; 0 for a dropped
one), for a trainer to log.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import torch
from torch import Tensor, nn

__all__ = ["DualMaskingLoss", "LossOutput", "MaskedReconstructionLoss"]


class LossOutput(NamedTuple):
    """``total`` (scalar), ``terms`` and ``weights`` (scalars by name; see the module doc)."""

    total: Tensor
    terms: dict[str, Tensor]
    weights: dict[str, Tensor]


def _check(
    pred: Tensor, target: Tensor, mask: Tensor, valid_channels: Tensor | None,
    valid_patches: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Validate shapes; return the per-patch MSE (B, C, P) and the valid-patch weight."""
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            "pred and target must both have shape (B, C, P, S), got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if tuple(mask.shape) != tuple(pred.shape[:3]):
        raise ValueError(f"mask must have shape (B, C, P) = {tuple(pred.shape[:3])}, got {tuple(mask.shape)}")
    per_patch = (pred.float() - target.float()).square().mean(dim=-1)
    valid = torch.ones_like(per_patch)
    if valid_channels is not None:
        if tuple(valid_channels.shape) != tuple(pred.shape[:2]):
            raise ValueError(
                f"valid_channels must have shape (B, C) = {tuple(pred.shape[:2])}, "
                f"got {tuple(valid_channels.shape)}"
            )
        valid = valid * valid_channels.to(per_patch.dtype).unsqueeze(-1)
    if valid_patches is not None:
        if tuple(valid_patches.shape) != (pred.shape[0], pred.shape[2]):
            raise ValueError(
                f"valid_patches must have shape (B, P) = {(pred.shape[0], pred.shape[2])}, "
                f"got {tuple(valid_patches.shape)}"
            )
        valid = valid * valid_patches.to(per_patch.dtype).unsqueeze(1)
    return per_patch, valid


def _term(per_patch: Tensor, select: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``per_patch`` over the patches where ``select`` (float 0/1) is 1, and presence."""
    count = select.sum()
    value = (per_patch * select).sum() / count.clamp_min(1.0)
    return value, (count > 0).to(per_patch.dtype)


def _combine(values: dict[str, Tensor], weights: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted mean of ``values`` with ``weights`` renormalised to sum to 1 (0 if all are 0)."""
    norm = cast(Tensor, sum(weights.values()))
    scale = torch.where(norm > 0, 1.0 / norm.clamp_min(1e-12), torch.zeros_like(norm))
    eff = {k: w * scale for k, w in weights.items()}
    return cast(Tensor, sum(eff[k] * values[k] for k in values)), eff


class MaskedReconstructionLoss(nn.Module):
    """CBraMod's objective: MSE over the masked patches (of valid channels).

    ``forward(pred, target, mask, masked_channels=None, valid_channels=None) -> LossOutput``
    with one term, ``"patch"``. ``masked_channels`` is accepted (and ignored) so that the two
    losses can be swapped in a trainer.
    """

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Tensor,
        masked_channels: Tensor | None = None,
        valid_channels: Tensor | None = None,
        valid_patches: Tensor | None = None,
    ) -> LossOutput:
        per_patch, valid = _check(pred, target, mask, valid_channels, valid_patches)
        value, present = _term(per_patch, mask.to(per_patch.dtype) * valid)
        # present is 0 or 1; a dropped term gives a zero total that keeps the graph.
        total = value * present
        return LossOutput(total, {"patch": value}, {"patch": present})


class DualMaskingLoss(nn.Module):
    """Dual-masking objective: ``L = 1/2 L_patch + 1/2 L_channel``.

    - ``L_patch``: MSE over the masked patches (``mask``, the union of patch and channel
      masking, as fed to the model), as :class:`MaskedReconstructionLoss`.
    - ``L_channel = 1/2 L_masked_channels + 1/2 L_unmasked_channels``: MSE over all patches of
      the channels masked whole (``masked_channels``), and MSE over all patches of the other
      channels.

    Empty terms are dropped level by level: with no masked channel in the batch,
    ``L_channel = L_unmasked_channels``; with no masked patch at all, ``L = L_channel``.
    Terms are ``"patch"``, ``"masked_channels"``, ``"unmasked_channels"`` and ``"channel"``;
    weights are the effective weights of the first three in ``total`` (1/2, 1/4, 1/4 when
    none is empty).

    Parameters
    ----------
    patch_weight : float
        Weight of ``L_patch`` (``1 - patch_weight`` for ``L_channel``); 0.5 by default.
    masked_channel_weight : float
        Weight of ``L_masked_channels`` inside ``L_channel``; 0.5 by default.
    """

    def __init__(self, patch_weight: float = 0.5, masked_channel_weight: float = 0.5):
        super().__init__()
        for name, w in (("patch_weight", patch_weight), ("masked_channel_weight", masked_channel_weight)):
            if not 0.0 <= w <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {w}")
        self.patch_weight = float(patch_weight)
        self.masked_channel_weight = float(masked_channel_weight)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Tensor,
        masked_channels: Tensor | None = None,
        valid_channels: Tensor | None = None,
        valid_patches: Tensor | None = None,
    ) -> LossOutput:
        if masked_channels is None:
            raise ValueError(
                "DualMaskingLoss needs masked_channels (B, C) bool: pass the second output of "
                "criss_cross.masking.dual_mask"
            )
        per_patch, valid = _check(pred, target, mask, valid_channels, valid_patches)
        if tuple(masked_channels.shape) != tuple(pred.shape[:2]):
            raise ValueError(
                f"masked_channels must have shape (B, C) = {tuple(pred.shape[:2])}, "
                f"got {tuple(masked_channels.shape)}"
            )
        chans = masked_channels.to(per_patch.dtype).unsqueeze(-1).expand_as(per_patch)
        patch, has_patch = _term(per_patch, mask.to(per_patch.dtype) * valid)
        masked, has_masked = _term(per_patch, chans * valid)
        unmasked, has_unmasked = _term(per_patch, (1.0 - chans) * valid)

        wm = self.masked_channel_weight
        channel, ch_eff = _combine(
            {"masked_channels": masked, "unmasked_channels": unmasked},
            {"masked_channels": wm * has_masked, "unmasked_channels": (1.0 - wm) * has_unmasked},
        )
        has_channel = torch.clamp(has_masked + has_unmasked, max=1.0)
        wp = self.patch_weight
        total, top_eff = _combine(
            {"patch": patch, "channel": channel},
            {"patch": wp * has_patch, "channel": (1.0 - wp) * has_channel},
        )
        weights = {
            "patch": top_eff["patch"],
            "masked_channels": top_eff["channel"] * ch_eff["masked_channels"],
            "unmasked_channels": top_eff["channel"] * ch_eff["unmasked_channels"],
        }
        terms = {
            "patch": patch,
            "masked_channels": masked,
            "unmasked_channels": unmasked,
            "channel": channel,
        }
        return LossOutput(total, terms, weights)
