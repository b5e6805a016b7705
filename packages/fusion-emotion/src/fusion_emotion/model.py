"""EEG and ECG encoders, channel pooling and a fusion strategy with three binary heads.

Ghallab et al., "Leveraging Foundational Models and Simple Fusion for Multi-modal Physiological
Signal Analysis", arXiv 2512.15250. Encoders: CBraMod (Wang et al., ICLR 2025, arXiv 2412.07236;
official code https://github.com/wjq-learning/CBraMod) as :class:`criss_cross.CrissCrossEncoder`.

For each modality: encoder features (B, C, P, D) -> mean over the valid channels: per-patch
tokens (B, P, D). A fusion strategy (:mod:`fusion_emotion.strategies`; default ``concat``, the
paper's: flatten over patches (B, P·D) or mean over valid patches (B, D), modalities
concatenated, EEG first) feeds three parallel heads, one per dimension (valence, arousal,
dominance), each giving the logit of High; the concat head is
``Linear(F, hidden) -> ELU -> Dropout -> Linear(hidden, 1)``.

With ``encoders=None`` the model is "heads only": its inputs are the channel-pooled tokens
(B, P, D) cached by the frozen mode, so the same heads are trained either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import torch
from torch import nn

from fusion_emotion.config import DIMENSIONS
from fusion_emotion.pooling import POOLS, feature_dim, pool_channels, pool_patches
from fusion_emotion.strategies import FusionHeads, reset_linear
from fusion_emotion.strategies.base import Dropout, SeededDropout, mlp

__all__ = ["pool_channels", "pool_patches", "Dropout", "BinaryHeads", "FusionModel", "feature_dim"]


class _FeatureEncoder(Protocol):
    """What FusionModel needs of an encoder: ``forward_features(x) -> (B, C, P, D)``."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...


class BinaryHeads(nn.Module):
    """Three parallel feed-forward heads on one feature vector: (B, F) -> logits (B, 3) in
    :data:`DIMENSIONS` order (the ``concat`` strategy's heads, on features already pooled)."""

    def __init__(self, in_features: int, hidden: int = 200, dropout: float = 0.2):
        super().__init__()
        self.heads = nn.ModuleDict({dim: mlp(in_features, hidden, dropout) for dim in DIMENSIONS})

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.heads[dim](features) for dim in DIMENSIONS], dim=1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default ``nn.Linear`` init, drawn from ``generator``."""
        reset_linear(self, generator)

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Make every dropout of the heads draw from ``generator``."""
        for module in self.modules():
            if isinstance(module, SeededDropout):
                module.generator = generator


class FusionModel(nn.Module):
    """Encoders (optional) + channel mean + a fusion strategy + three heads.

    modalities : the inputs, in this order (e.g. ``["eeg", "ecg"]``).
    encoders : modality -> encoder with ``forward_features(x) -> (B, C, P, D)``; None for the
        heads-only model whose inputs are cached channel-pooled tokens (B, P, D).
    n_patches, d_model : P and D of every modality (``d_model`` may be a per-modality mapping).
    fusion : a name of :data:`fusion_emotion.strategies.STRATEGIES` (default "concat").
    learn_absent : the heads' absent-modality tokens are trained (modality dropout) rather than
        fixed at zero.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        encoders: Mapping[str, nn.Module] | None,
        *,
        n_patches: int,
        d_model: int | Mapping[str, int],
        pool: str = "flatten",
        hidden: int = 200,
        dropout: float = 0.2,
        fusion: str = "concat",
        learn_absent: bool = False,
    ):
        super().__init__()
        if not modalities:
            raise ValueError("FusionModel needs at least one modality")
        if pool not in POOLS:
            raise ValueError(f"pool must be 'flatten' or 'mean', got {pool!r}")
        self.modalities = list(modalities)
        self.pool = pool
        self.fusion = fusion
        if encoders is not None:
            missing = [m for m in self.modalities if m not in encoders]
            if missing:
                raise ValueError(f"no encoder for modalities {missing}")
            self.encoders: nn.ModuleDict | None = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        else:
            self.encoders = None
        dims = dict(d_model) if isinstance(d_model, Mapping) else dict.fromkeys(self.modalities, d_model)
        self.in_features = sum(feature_dim(n_patches, dims[m], pool) for m in self.modalities)
        self.head = FusionHeads(fusion, self.modalities, dims, n_patches, pool=pool, hidden=hidden,
                                dropout=dropout, learn_absent=learn_absent)

    def tokens(
        self,
        inputs: Mapping[str, torch.Tensor],
        channel_mask: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Channel-pooled per-patch tokens {modality: (B, P, D)} (the inputs themselves for the
        heads-only model)."""
        out = {}
        for m in self.modalities:
            x = inputs[m]
            if self.encoders is not None:
                mask = None if channel_mask is None else channel_mask.get(m)
                encoder = cast(_FeatureEncoder, self.encoders[m])
                x = pool_channels(encoder.forward_features(x), mask)
            out[m] = x
        if self.fusion == "hep" and "hep" in inputs:  # window features the hep strategy reads
            out["hep"] = inputs["hep"]
        return out

    def forward_features(
        self,
        inputs: Mapping[str, torch.Tensor],
        channel_mask: Mapping[str, torch.Tensor] | None = None,
        patch_mask: torch.Tensor | None = None,
    ) -> Any:
        """What the heads read (for ``concat`` the concatenated vector (B, F)).

        inputs : modality -> windows (B, C, P, S) already scaled for the encoder, or, for the
            heads-only model, channel-pooled embeddings (B, P, D).
        patch_mask : (B, P) bool, True = valid patch (None = all valid).
        """
        return self.head.prepare(self.tokens(inputs, channel_mask), patch_mask)

    def forward_head(self, features: Any) -> torch.Tensor:
        return self.head(features)

    def forward(
        self,
        inputs: Mapping[str, torch.Tensor],
        channel_mask: Mapping[str, torch.Tensor] | None = None,
        patch_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of High, (B, 3), columns in :data:`DIMENSIONS` order."""
        return self.forward_head(self.forward_features(inputs, channel_mask, patch_mask))
