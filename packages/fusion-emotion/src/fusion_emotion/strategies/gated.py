"""``gated``: a learned per-sample gate over the two modality embeddings.

Each modality's pooled vector is projected to ``hidden`` (``h_m = ELU(Linear_m(v_m))``); a gate
``g = softmax_m(Linear([h_eeg, h_ecg]))``, one weight per modality and hidden unit, weighs them
per window, and the head MLP reads ``sum_m g_m * h_m`` (Arevalo et al., "Gated Multimodal Units", arXiv 1702.01992, in its softmax
form). A window whose ECG is noisy can lean on its EEG, and the other way round.
"""

from __future__ import annotations

import torch
from torch import nn

from fusion_emotion.pooling import feature_dim
from fusion_emotion.strategies.base import Strategy, Tokens, mlp
from fusion_emotion.strategies.late import pooled

__all__ = ["GatedFusion"]


class GatedFusion(Strategy):
    name = "gated"
    inputs = "pooled"

    def __init__(self, modalities, d_model, n_patches, *, pool="flatten", hidden=200, dropout=0.2):
        super().__init__(modalities, d_model, n_patches, pool=pool, hidden=hidden, dropout=dropout)
        self.proj = nn.ModuleDict(
            {m: nn.Linear(feature_dim(n_patches, self.d_model[m], pool), hidden) for m in self.modalities}
        )
        self.act = nn.ELU()
        self.gate = nn.Linear(hidden * len(self.modalities), hidden * len(self.modalities))
        self.head = mlp(hidden, hidden, dropout)

    @classmethod
    def prepare(cls, tokens: Tokens, patch_mask: torch.Tensor | None, pool: str) -> dict[str, torch.Tensor]:
        return pooled(tokens, patch_mask, pool)

    def gates(self, vectors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, g), both (B, M, hidden): the projected modalities and their gate weights (summing
        to 1 over the modalities)."""
        h = torch.stack([self.act(self.proj[m](vectors[m])) for m in self.modalities], dim=1)
        g = torch.softmax(self.gate(h.flatten(1)).view_as(h), dim=1)
        return h, g

    def forward(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        h, g = self.gates(vectors)
        return self.head((h * g).sum(dim=1))
