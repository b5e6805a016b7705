"""What every fusion strategy shares: the interface, the head MLP, indexing prepared inputs.

A strategy is one dimension's head (valence, arousal or dominance each get their own instance):

- ``prepare(tokens, patch_mask, pool)`` (a class method, no parameters): from the channel-pooled
  per-patch tokens of each modality, ``{modality: (B, P, D)}``, and the valid-patch mask (B, P)
  (None = all valid), whatever the strategy reads. It runs once per window set in the frozen
  mode (cached embeddings), once per batch in fine-tuning.
- ``forward(prepared) -> (B, 1)``: the logit of High.
- ``blank(prepared, absent)``: the same inputs with a modality marked absent for some windows
  (``absent``: {modality: (B,) bool}): that modality's tokens are replaced by a learned *absent
  token* of the strategy (``absent_<modality>``, (D,), starting at 0), pooled like real tokens.
  The head therefore sees a value that means "missing", not a zero it cannot tell from a quiet
  signal; modality dropout (``--modality-dropout``) trains it.

Every strategy trains the same way in both modes (see :mod:`fusion_emotion.protocol`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["Strategy", "SeededDropout", "Dropout", "mlp", "take", "Tokens", "draw_absent"]

#: channel-pooled per-patch tokens of each modality, (B, P, D)
Tokens = Mapping[str, torch.Tensor]


class SeededDropout(nn.Module):
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


#: the name this class had before (``fusion_emotion.model.Dropout``)
Dropout = SeededDropout


def mlp(in_features: int, hidden: int, dropout: float, out: int = 1) -> nn.Sequential:
    """The paper's head: ``Linear(F, hidden) -> ELU -> SeededDropout -> Linear(hidden, out)``."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ELU(), SeededDropout(dropout), nn.Linear(hidden, out))


def take(prepared: Any, idx: torch.Tensor) -> Any:
    """The rows ``idx`` of every tensor in ``prepared`` (a tensor, dict, tuple or None)."""
    if prepared is None:
        return None
    if isinstance(prepared, torch.Tensor):
        return prepared[idx]
    if isinstance(prepared, Mapping):
        return {k: take(v, idx) for k, v in prepared.items()}
    if isinstance(prepared, tuple):
        return tuple(take(v, idx) for v in prepared)
    raise TypeError(f"cannot index prepared inputs of type {type(prepared).__name__}")


class Strategy(nn.Module):
    """Base class of one dimension's fusion head (see the module docstring).

    modalities : the inputs, in order (EEG first).
    d_model : token width D of each modality.
    n_patches : P.
    pool, hidden, dropout : patch pooling ("flatten" | "mean"), hidden width, dropout of the head.
    """

    name: ClassVar[str] = ""
    #: what ``prepare`` gives: strategies with the same value share it in the frozen mode
    inputs: ClassVar[str] = ""

    def __init__(self, modalities: Sequence[str], d_model: Mapping[str, int], n_patches: int, *,
                 pool: str = "flatten", hidden: int = 200, dropout: float = 0.2):
        super().__init__()
        self.modalities = list(modalities)
        self.d_model = dict(d_model)
        self.n_patches = int(n_patches)
        self.pool = pool
        if len(self.modalities) > 1:  # plain parameters, not modules: concat iterates its children
            for m in self.modalities:
                self.register_parameter(f"absent_{m}", nn.Parameter(torch.zeros(self.d_model[m])))

    def fix_absent_tokens(self) -> None:
        """Keep the absent tokens at their value as buffers, not parameters (same state-dict
        keys): a head trained without modality dropout never sees a blanked window, so its
        tokens would be parameters that never get a gradient."""
        for name in [n for n in self._parameters if n.startswith("absent_")]:
            value = self._parameters.pop(name)
            assert value is not None
            self.register_buffer(name, value.detach().clone())

    def absent_token(self, modality: str) -> torch.Tensor:
        """The learned (D,) token that stands for ``modality`` when it is missing."""
        return getattr(self, f"absent_{modality}")

    def _absent_vector(self, m: str) -> torch.Tensor:
        """The absent token pooled over patches as :func:`pool_patches` pools real tokens."""
        t = self.absent_token(m)
        return t.repeat(self.n_patches) if self.pool == "flatten" else t

    def blank(self, prepared: Any, absent: Mapping[str, torch.Tensor]) -> Any:
        """``prepared`` with the modalities of ``absent`` ({m: (B,) bool}) replaced by their
        absent token where True (see the module docstring)."""
        from fusion_emotion.pooling import feature_dim

        if self.inputs in ("concatenated", "hep"):  # hep: the content part, see HepFusion.blank
            parts, start = [], 0
            for m in self.modalities:
                width = feature_dim(self.n_patches, self.d_model[m], self.pool)
                part = prepared[:, start : start + width]
                if m in absent:
                    part = torch.where(absent[m][:, None], self._absent_vector(m).to(part.dtype)[None], part)
                parts.append(part)
                start += width
            return torch.cat(parts, dim=1)
        if self.inputs == "pooled":
            return {m: (torch.where(absent[m][:, None], self._absent_vector(m).to(v.dtype)[None], v)
                        if m in absent else v) for m, v in prepared.items()}
        if self.inputs == "tokens":
            tokens, mask = prepared
            return ({m: (torch.where(absent[m][:, None, None], self.absent_token(m).to(z.dtype), z)
                         if m in absent else z) for m, z in tokens.items()}, mask)
        raise NotImplementedError(f"{type(self).__name__} does not support absent modalities")

    @classmethod
    def prepare(cls, tokens: Tokens, patch_mask: torch.Tensor | None, pool: str) -> Any:
        raise NotImplementedError

    def reset_extra(self) -> None:
        """Re-initialise the parameters that are not Linear or LayerNorm (none by default)."""


def draw_absent(n: int, modalities: Sequence[str], p: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Modality dropout for a batch of ``n`` windows: with probability ``p`` a window loses one
    modality, chosen uniformly; ``{modality: (n,) bool}`` (True = absent)."""
    drop = torch.rand(n, generator=generator) < p
    which = torch.randint(len(modalities), (n,), generator=generator)
    return {m: drop & (which == i) for i, m in enumerate(modalities)}
