"""Concatenation fusion of an EEG and an ECG encoder with three binary heads.

Ghallab et al., "Leveraging Foundational Models and Simple Fusion for Multi-modal Physiological
Signal Analysis", arXiv 2512.15250. Encoders: CBraMod (Wang et al., ICLR 2025, arXiv 2412.07236;
official code https://github.com/wjq-learning/CBraMod) as :class:`criss_cross.CrissCrossEncoder`.

For each modality: encoder features (B, C, P, D) -> mean over the valid channels (B, P, D) ->
flatten over patches (B, P·D) (default) or mean over patches (B, D). The modalities' vectors are
concatenated (EEG first) and fed to three parallel heads, one per dimension (valence, arousal,
dominance), each ``Linear(F, hidden) -> ELU -> Dropout -> Linear(hidden, 1)`` giving the logit of
High.

With ``encoders=None`` the model is "heads only": its inputs are the channel-pooled embeddings
(B, P, D) cached by the frozen mode, so the same heads are trained either way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fusion_emotion.config import DIMENSIONS

__all__ = ["pool_channels", "pool_patches", "Dropout", "BinaryHeads", "FusionModel", "feature_dim"]


def pool_channels(z: torch.Tensor, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over channels of ``z`` (B, C, P, D) -> (B, P, D), over valid channels only.

    channel_mask : (B, C) bool, True where the channel holds signal (the store's convention;
        False = missing and zero-filled). None: every channel counts.
    """
    if z.ndim != 4:
        raise ValueError(f"embeddings must be (B, C, P, D), got shape {tuple(z.shape)}")
    if channel_mask is None:
        return z.mean(dim=1)
    w = channel_mask.to(z.dtype)[:, :, None, None]
    return (z * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def pool_patches(z: torch.Tensor, pool: str) -> torch.Tensor:
    """(B, P, D) -> (B, P·D) for ``pool="flatten"`` or (B, D) for ``pool="mean"``."""
    if pool == "flatten":
        return z.flatten(1)
    if pool == "mean":
        return z.mean(dim=1)
    raise ValueError(f"pool must be 'flatten' or 'mean', got {pool!r}")


def feature_dim(n_patches: int, d_model: int, pool: str) -> int:
    """Length of one modality's vector after pooling."""
    return n_patches * d_model if pool == "flatten" else d_model


class Dropout(nn.Module):
    """Inverted dropout that draws from ``self.generator`` when one is set (else the global RNG).

    Heads of several folds train side by side in threads in the frozen mode; an explicit
    generator per job keeps every job's result independent of how the threads interleave.
    """

    def __init__(self, p: float = 0.2):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability ({p}) must be in [0, 1)")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BinaryHeads(nn.Module):
    """Three parallel feed-forward heads: (B, F) -> logits (B, 3) in :data:`DIMENSIONS` order."""

    def __init__(self, in_features: int, hidden: int = 200, dropout: float = 0.2):
        super().__init__()
        self.heads = nn.ModuleDict(
            {
                dim: nn.Sequential(
                    nn.Linear(in_features, hidden),
                    nn.ELU(),
                    Dropout(dropout),
                    nn.Linear(hidden, 1),
                )
                for dim in DIMENSIONS
            }
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.heads[dim](features) for dim in DIMENSIONS], dim=1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default ``nn.Linear`` init, drawn from ``generator``."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Make every dropout of the heads draw from ``generator``."""
        for module in self.modules():
            if isinstance(module, Dropout):
                module.generator = generator


class FusionModel(nn.Module):
    """Encoders (optional) + channel mean + patch pooling + concatenation + :class:`BinaryHeads`.

    modalities : the inputs, concatenated in this order (e.g. ``["eeg", "ecg"]``).
    encoders : modality -> encoder with ``forward_features(x) -> (B, C, P, D)``; None for the
        heads-only model whose inputs are cached channel-pooled embeddings (B, P, D).
    n_patches, d_model : P and D of every modality (``d_model`` may be a per-modality mapping).
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
    ):
        super().__init__()
        if not modalities:
            raise ValueError("FusionModel needs at least one modality")
        if pool not in ("flatten", "mean"):
            raise ValueError(f"pool must be 'flatten' or 'mean', got {pool!r}")
        self.modalities = list(modalities)
        self.pool = pool
        if encoders is not None:
            missing = [m for m in self.modalities if m not in encoders]
            if missing:
                raise ValueError(f"no encoder for modalities {missing}")
            self.encoders: nn.ModuleDict | None = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        else:
            self.encoders = None
        dims = d_model if isinstance(d_model, Mapping) else dict.fromkeys(self.modalities, d_model)
        self.in_features = sum(feature_dim(n_patches, dims[m], pool) for m in self.modalities)
        self.head = BinaryHeads(self.in_features, hidden=hidden, dropout=dropout)

    def forward_features(
        self,
        inputs: Mapping[str, torch.Tensor],
        channel_mask: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The concatenated vector (B, F).

        inputs : modality -> windows (B, C, P, S) already scaled for the encoder, or, for the
            heads-only model, channel-pooled embeddings (B, P, D).
        """
        parts = []
        for m in self.modalities:
            x = inputs[m]
            if self.encoders is not None:
                mask = None if channel_mask is None else channel_mask.get(m)
                x = pool_channels(self.encoders[m].forward_features(x), mask)
            parts.append(pool_patches(x, self.pool))
        return torch.cat(parts, dim=1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(
        self,
        inputs: Mapping[str, torch.Tensor],
        channel_mask: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits of High, (B, 3), columns in :data:`DIMENSIONS` order."""
        return self.forward_head(self.forward_features(inputs, channel_mask))
