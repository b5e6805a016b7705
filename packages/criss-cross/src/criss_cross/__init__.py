"""criss-cross: a CBraMod-compatible criss-cross transformer encoder and its objectives.

>>> from criss_cross import CrissCrossEncoder, EncoderConfig
>>> model = CrissCrossEncoder(EncoderConfig())          # (B, C, P, 200) -> (B, C, P, 200)
>>> model = load_cbramod_checkpoint("pretrained_weights.pth")   # the authors' weights

Masks live in :mod:`criss_cross.masking`, objectives in :mod:`criss_cross.losses`.
"""

__version__ = "0.1.0"

from criss_cross.checkpoint import (  # noqa: E402  (__version__ first: checkpoint records it)
    CheckpointError,
    load_cbramod_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from criss_cross.config import EncoderConfig  # noqa: E402
from criss_cross.encoder import CrissCrossEncoder  # noqa: E402
from criss_cross.hub import export_run, from_pretrained, save_pretrained  # noqa: E402
from criss_cross.losses import DualMaskingLoss, LossOutput, MaskedReconstructionLoss  # noqa: E402
from criss_cross.masking import channel_mask, dual_mask, patch_mask  # noqa: E402
from criss_cross.registry import create_model, list_models  # noqa: E402

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
