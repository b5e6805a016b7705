"""``hep``: the content of both signals plus their timing, as heartbeat-evoked EEG responses.

The head MLP reads each modality's pooled tokens (as ``concat``) and the HEP features of the
window (:mod:`fusion_emotion.hep`: the EEG averaged around the R peaks of the paired ECG), all
concatenated. The HEP features need both signals: with either modality absent they are replaced
by their own learned absent vector, as the missing modality's tokens are.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_emotion.hep import HEP_DIM
from fusion_emotion.pooling import feature_dim, pool_patches
from fusion_emotion.strategies.base import Strategy, Tokens, mlp

__all__ = ["HepFusion"]


class HepFusion(Strategy):
    name = "hep"
    inputs = "hep"

    def __init__(self, modalities, d_model, n_patches, *, pool="flatten", hidden=200, dropout=0.2):
        super().__init__(modalities, d_model, n_patches, pool=pool, hidden=hidden, dropout=dropout)
        if len(self.modalities) < 2:
            raise ValueError("hep fusion needs EEG and ECG")
        self.in_features = sum(feature_dim(n_patches, self.d_model[m], pool) for m in self.modalities) + HEP_DIM
        self.absent_hep = nn.Parameter(torch.zeros(HEP_DIM))
        self.head = mlp(self.in_features, hidden, dropout)

    @classmethod
    def prepare(cls, tokens: Tokens, patch_mask: torch.Tensor | None, pool: str) -> torch.Tensor:
        """(B, F + HEP_DIM): the pooled modalities and the window's HEP features (``tokens["hep"]``)."""
        if "hep" not in tokens:
            raise ValueError("the hep strategy needs the windows' HEP features (tokens['hep'])")
        pooled = [pool_patches(z, pool, patch_mask) for m, z in tokens.items() if m != "hep"]
        return torch.cat([*pooled, tokens["hep"].to(pooled[0].dtype)], dim=1)

    def blank(self, prepared: torch.Tensor, absent) -> torch.Tensor:
        n_content = self.in_features - HEP_DIM
        content = Strategy.blank(self, prepared[:, :n_content], absent)
        hep = prepared[:, n_content:]
        gone = torch.zeros(len(prepared), dtype=torch.bool, device=prepared.device)
        for a in absent.values():
            gone = gone | a
        hep = torch.where(gone[:, None], self.absent_hep.to(hep.dtype)[None], hep)
        return torch.cat([content, hep], dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)
