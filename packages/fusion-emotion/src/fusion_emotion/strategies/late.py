"""``late``: one head per modality on its own pooled vector; the logits mixed by learned weights.

The weights are ``softmax(w)`` with ``w`` starting at 0 (a plain average of the logits). Each
modality's evidence is judged alone: no interaction between the modalities is representable
beyond a weighted sum of log-odds.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_emotion.pooling import feature_dim, pool_patches
from fusion_emotion.strategies.base import Strategy, Tokens, mlp

__all__ = ["LateFusion", "pooled"]


def pooled(tokens: Tokens, patch_mask: torch.Tensor | None, pool: str) -> dict[str, torch.Tensor]:
    """Each modality's tokens pooled over its valid patches: {modality: (B, F_m)}."""
    return {m: pool_patches(z, pool, patch_mask) for m, z in tokens.items()}


class LateFusion(Strategy):
    name = "late"
    inputs = "pooled"

    def __init__(self, modalities, d_model, n_patches, *, pool="flatten", hidden=200, dropout=0.2):
        super().__init__(modalities, d_model, n_patches, pool=pool, hidden=hidden, dropout=dropout)
        self.heads = nn.ModuleDict(
            {m: mlp(feature_dim(n_patches, self.d_model[m], pool), hidden, dropout) for m in self.modalities}
        )
        self.mix = nn.Parameter(torch.zeros(len(self.modalities)))

    @classmethod
    def prepare(cls, tokens: Tokens, patch_mask: torch.Tensor | None, pool: str) -> dict[str, torch.Tensor]:
        return pooled(tokens, patch_mask, pool)

    def forward(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = torch.cat([self.heads[m](vectors[m]) for m in self.modalities], dim=1)  # (B, M)
        return (logits * torch.softmax(self.mix, dim=0)).sum(dim=1, keepdim=True)

    def reset_extra(self) -> None:
        nn.init.zeros_(self.mix)
