"""``concat``: the paper's fusion (Ghallab et al., arXiv 2512.15250).

Each modality's tokens pooled over patches (flatten or mean, valid patches only), concatenated
(EEG first), then the head MLP. Blind to time alignment: pooling happens before fusion.
"""

from __future__ import annotations

import torch

from fusion_emotion.pooling import feature_dim, pool_patches
from fusion_emotion.strategies.base import Strategy, Tokens, mlp

__all__ = ["ConcatFusion"]


class ConcatFusion(Strategy):
    name = "concat"
    inputs = "concatenated"

    def __init__(self, modalities, d_model, n_patches, *, pool="flatten", hidden=200, dropout=0.2):
        super().__init__(modalities, d_model, n_patches, pool=pool, hidden=hidden, dropout=dropout)
        self.in_features = sum(feature_dim(n_patches, self.d_model[m], pool) for m in self.modalities)
        # the MLP's layers are this module's own children (keys 0..3, as the paper's head)
        for name, layer in mlp(self.in_features, hidden, dropout).named_children():
            self.add_module(name, layer)

    @classmethod
    def prepare(cls, tokens: Tokens, patch_mask: torch.Tensor | None, pool: str) -> torch.Tensor:
        """(B, F): the pooled modalities, concatenated in the order of ``tokens``."""
        return torch.cat([pool_patches(z, pool, patch_mask) for z in tokens.values()], dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            features = layer(features)
        return features

