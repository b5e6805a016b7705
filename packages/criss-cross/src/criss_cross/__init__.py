"""criss-cross: a CBraMod-compatible criss-cross transformer encoder and its objectives.

>>> from criss_cross import CrissCrossEncoder, EncoderConfig
>>> model = CrissCrossEncoder(EncoderConfig())          # (B, C, P, 200) -> (B, C, P, 200)
>>> model = load_cbramod_checkpoint("pretrained_weights.pth")   # the authors' weights

Masks live in :mod:`criss_cross.masking`, objectives in :mod:`criss_cross.losses`, every
checkpoint format in :mod:`criss_cross.checkpoint`, both configs in :mod:`criss_cross.config`,
attention and dropout kernels in :mod:`criss_cross.layers`, the training run in
:mod:`criss_cross.pretrain`, the commands in :mod:`criss_cross.commands` (root app:
:mod:`criss_cross.cli`).
"""

from criss_cross.checkpoint import (
    CheckpointError,
    load_cbramod_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from criss_cross.config import EncoderConfig
from criss_cross.encoder import CrissCrossEncoder
from criss_cross.hub import export_run, from_pretrained, save_pretrained
from criss_cross.losses import DualMaskingLoss, LossOutput, MaskedReconstructionLoss
from criss_cross.masking import channel_mask, dual_mask, patch_mask
from criss_cross.registry import create_model, list_models
from criss_cross.version import __version__

__all__ = [
    "CheckpointError",
    "CrissCrossEncoder",
    "DualMaskingLoss",
    "EncoderConfig",
    "LossOutput",
    "MaskedReconstructionLoss",
    "__version__",
    "channel_mask",
    "dual_mask",
    "load_cbramod_checkpoint",
    "load_checkpoint",
    "patch_mask",
    "save_checkpoint",
    "create_model",
    "export_run",
    "from_pretrained",
    "list_models",
    "save_pretrained",
]
