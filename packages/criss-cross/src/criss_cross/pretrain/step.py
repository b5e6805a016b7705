"""One optimisation step of dual-masking pretraining, as a typed function.

:func:`train_step` takes a :class:`Batch` (windows, valid leads, valid patches) and the step's
masks and learning rate, runs forward, loss, backward, clipping and the optimizer step, and
returns a :class:`StepOutput`: the loss, the zero predictor's loss on the same masked
positions (``zero_mse``), each loss term and the gradient norm, all averaged over DDP ranks.
Zero-filled leads and padded patches count in no term (:func:`loss_terms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from criss_cross.masking import dual_mask
from criss_cross.pretrain.distributed import Dist, all_reduce_mean
from criss_cross.pretrain.schedule import SALT_MASK, derive_seed

__all__ = ["Batch", "StepOutput", "draw_masks", "loss_terms", "train_step"]


@dataclass
class Batch:
    """A batch on the training device. ``windows`` (B, C, P, S) scaled model input;
    ``valid_channels`` (B, C) bool, False for zero-filled leads; ``valid_patches`` (B, P) bool,
    False for padded patches, or None when the data has no padding."""

    windows: Tensor
    valid_channels: Tensor
    valid_patches: Tensor | None
    epoch: int

    @classmethod
    def from_loader(cls, batch: dict, device: torch.device) -> Batch:
        """From a loader batch: ``patch_mask`` may be missing (all patches valid)."""
        patches = batch.get("patch_mask")
        return cls(
            windows=batch["windows"].to(device, non_blocking=True),
            valid_channels=batch["channel_mask"].to(device, non_blocking=True),
            valid_patches=None if patches is None else patches.to(device, non_blocking=True),
            epoch=int(batch["epoch"]),
        )


@dataclass
class StepOutput:
    """What a step measured (floats, averaged over ranks)."""

    loss: float
    zero_mse: float
    terms: dict[str, float]
    grad_norm: float


def draw_masks(shape: tuple[int, int, int], valid_channels: Tensor,
               valid_patches: Tensor | None, device: torch.device, *, ratio: float,
               proportion: float, seed: int, rank: int, step: int) -> tuple[Tensor, Tensor]:
    """The dual masks of ``step`` (mask (B, C, P), masked channels (B, C)) on ``device``,
    drawn from the seed alone: whole-lead masking picks only valid leads (``valid_channels``
    (B, C)), no mask falls on a padded patch (``valid_patches`` (B, P), None: all valid)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, rank, step, SALT_MASK))
    mask, masked = dual_mask(shape, ratio, proportion, gen, valid_channels=valid_channels,
                             valid_patches=valid_patches)
    return mask.to(device), masked.to(device)


def loss_terms(loss_fn: torch.nn.Module, pred: Tensor, target: Tensor, mask: Tensor,
               masked_channels: Tensor, valid: Tensor, valid_patches: Tensor | None = None,
               ) -> tuple[Tensor, dict[str, Tensor]]:
    """(total, terms) of the dual-masking loss; zero-filled leads (``valid`` False) and padded
    patches (``valid_patches`` False) are left out of every term by the loss itself."""
    kw = {} if valid_patches is None else {"valid_patches": valid_patches}
    out = loss_fn(pred, target, mask, masked_channels=masked_channels, valid_channels=valid,
                  **kw)
    return out.total, dict(out.terms)


def train_step(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    loss_fn: torch.nn.Module,
    batch: Batch,
    mask: Tensor,
    masked_channels: Tensor,
    *,
    lr: float,
    grad_clip: float | None,
    bf16: bool,
    dist_info: Dist,
    step: int,
) -> StepOutput:
    """Forward, loss (and zero_mse), backward, clip, optimizer step at learning rate ``lr``.

    Raises FloatingPointError on a non-finite loss (before the weights change).
    """
    x = batch.windows
    for g in opt.param_groups:
        g["lr"] = lr
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        pred = net(x, mask)
    loss, terms = loss_terms(loss_fn, pred.float(), x, mask, masked_channels,
                             batch.valid_channels, batch.valid_patches)
    with torch.no_grad():
        zero_mse = loss_terms(loss_fn, torch.zeros_like(x), x, mask, masked_channels,
                              batch.valid_channels, batch.valid_patches)[0]
    values = torch.stack([loss.detach(), zero_mse.float(),
                          *(t.detach().float() for t in terms.values())])
    values_list = all_reduce_mean(values, dist_info).tolist()
    if not math.isfinite(values_list[0]):
        raise FloatingPointError(f"non-finite loss ({values_list[0]}) at step {step}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, grad_clip))
    else:
        grad_norm = float(torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in params if p.grad is not None])))
    opt.step()
    return StepOutput(values_list[0], values_list[1],
                      dict(zip(terms, values_list[2:], strict=True)), grad_norm)
