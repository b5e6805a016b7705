"""Fusion strategies behind ``--fusion``: each a small module with the same interface.

=================  ==========================================================================
``concat``         the paper's: pooled modalities concatenated, one MLP (default)
``late``           one MLP per modality, logits mixed by learned weights
``gated``          a learned per-sample gate over the projected modality vectors
``cross-attention``  per-patch tokens of each modality attend to the other's before pooling:
                   the one that sees time alignment (at 1-s patches)
``hep``            pooled modalities + heartbeat-evoked EEG responses (EEG averaged around the
                   ECG's R peaks): the one that sees sub-second EEG-ECG timing
=================  ==========================================================================

See :class:`fusion_emotion.strategies.base.Strategy` for the interface. :class:`FusionHeads`
holds one instance per dimension (valence, arousal, dominance): the three share no parameter,
so the frozen mode trains each on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from fusion_emotion.config import DIMENSIONS, FUSIONS
from fusion_emotion.strategies.base import (
    Dropout,
    SeededDropout,
    Strategy,
    Tokens,
    draw_absent,
    mlp,
    take,
)
from fusion_emotion.strategies.concat import ConcatFusion
from fusion_emotion.strategies.cross_attention import CrossAttentionFusion
from fusion_emotion.strategies.gated import GatedFusion
from fusion_emotion.strategies.hep import HepFusion
from fusion_emotion.strategies.late import LateFusion

__all__ = [
    "STRATEGIES",
    "Strategy",
    "ConcatFusion",
    "LateFusion",
    "GatedFusion",
    "CrossAttentionFusion",
    "HepFusion",
    "FusionHeads",
    "SeededDropout",
    "Dropout",
    "mlp",
    "take",
    "draw_absent",
    "reset_linear",
]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (ConcatFusion, LateFusion, GatedFusion, CrossAttentionFusion, HepFusion)
}
assert tuple(STRATEGIES) == FUSIONS


def reset_linear(root: nn.Module, generator: torch.Generator | None = None) -> None:
    """PyTorch's default init of every ``nn.Linear`` under ``root``, drawn from ``generator``;
    LayerNorms to (1, 0)."""
    for module in root.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, nn.LayerNorm):
            module.reset_parameters()


class FusionHeads(nn.Module):
    """The three heads of one strategy: ``prepare``d inputs -> logits (B, 3) in DIMENSIONS order."""

    def __init__(self, strategy: str, modalities: Sequence[str], d_model: Mapping[str, int],
                 n_patches: int, *, pool: str = "flatten", hidden: int = 200, dropout: float = 0.2,
                 learn_absent: bool = False):
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown fusion {strategy!r}: use one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.pool = pool
        cls = STRATEGIES[strategy]
        self.heads = nn.ModuleDict(
            {dim: cls(modalities, d_model, n_patches, pool=pool, hidden=hidden, dropout=dropout)
             for dim in DIMENSIONS}
        )
        if not learn_absent:  # trained only under modality dropout; otherwise fixed at zero
            for head in self.heads.values():
                head.fix_absent_tokens()

    def prepare(self, tokens: Tokens, patch_mask: torch.Tensor | None) -> Any:
        return STRATEGIES[self.strategy].prepare(tokens, patch_mask, self.pool)

    def forward(self, prepared: Any, absent: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (B, 3); ``absent`` ({modality: (B,) bool}) blanks modalities per window."""
        if absent:
            return torch.cat([self.heads[dim](self.heads[dim].blank(prepared, absent)) for dim in DIMENSIONS], dim=1)
        return torch.cat([self.heads[dim](prepared) for dim in DIMENSIONS], dim=1)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every Linear re-drawn from ``generator`` (PyTorch's default init), the rest reset."""
        reset_linear(self, generator)
        for head in self.heads.values():
            head.reset_extra()
            for name, tensor in [*head.named_parameters(recurse=False),
                                 *head.named_buffers(recurse=False)]:  # absent tokens
                if name.startswith("absent_"):
                    with torch.no_grad():
                        tensor.zero_()

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Make every dropout of the heads draw from ``generator``."""
        for module in self.modules():
            if isinstance(module, SeededDropout):
                module.generator = generator
