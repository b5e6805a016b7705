"""``cross-attention``: each modality's per-patch tokens attend to the other's, then pooling.

The one strategy that sees time alignment. Tokens (B, P, D) of each modality are projected to
``width``; in one pre-norm block per modality, its tokens (queries) attend to the other
modality's tokens (keys, values), then a feed-forward layer works on each patch, so a patch can
combine what both signals did *in the same second* before anything is averaged. The outputs are
concatenated per patch, averaged over valid patches and read by the head MLP.

Attention carries a learned bias per head and time offset between query and key patch
(initialised as ALiBi, Press et al., arXiv 2108.12409: ``-slope_h * |offset|``, slopes 1, 1/2,
1/4, ...), so at the start a patch looks mostly at the same second of the other signal, and
training can widen or move that. Padded patches are never attended to and never averaged.
Cost: with P = 10, width 64 and 4 heads a block is ~50k parameters; on cached embeddings the
frozen mode trains it from the (N, P, D) tokens it already keeps for ``pool="flatten"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from criss_cross.pooling import masked_mean
from fusion_emotion.strategies.base import Strategy, Tokens, mlp

__all__ = ["CrossAttentionFusion", "CrossBlock"]


class CrossBlock(nn.Module):
    """Queries (B, P, W) attend to keys/values (B, K·P, W) of K other modalities; + FFN."""

    def __init__(self, width: int, heads: int, n_patches: int, n_other: int = 1):
        super().__init__()
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads})")
        self.heads, self.n_patches, self.n_other = heads, n_patches, n_other
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.o = nn.Linear(width, width)
        self.norm_ff = nn.LayerNorm(width)
        self.ff1 = nn.Linear(width, 2 * width)
        self.ff2 = nn.Linear(2 * width, width)
        # bias[h, offset + P - 1] for offset = key patch - query patch in -(P-1)..P-1
        self.offset_bias = nn.Parameter(torch.empty(heads, 2 * n_patches - 1))
        self.reset_extra()

    def reset_extra(self) -> None:
        slopes = torch.tensor([4.0 * 2.0 ** -h for h in range(self.heads)])
        offsets = torch.arange(-(self.n_patches - 1), self.n_patches).abs().float()
        with torch.no_grad():
            self.offset_bias.copy_(-slopes[:, None] * offsets[None, :])

    def attn_bias(self, key_mask: torch.Tensor | None, p_q: int, p_k: int) -> torch.Tensor:
        """(B or 1, H, P_q, K·P_k) additive bias: time offset, -inf on padded keys."""
        q = torch.arange(p_q)[:, None]
        k = torch.arange(p_k)[None, :]
        bias = self.offset_bias[:, (k - q + self.n_patches - 1).clamp(0, 2 * self.n_patches - 2)]
        bias = bias.repeat(1, 1, self.n_other)[None]  # (1, H, P_q, K·P_k)
        if key_mask is not None:
            bias = bias.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        return bias

    def forward(self, x: torch.Tensor, others: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        b, p, w = x.shape
        h, dh = self.heads, w // self.heads
        q = self.q(self.norm_q(x)).view(b, p, h, dh).transpose(1, 2)
        k, v = self.kv(self.norm_kv(others)).chunk(2, dim=-1)
        k = k.reshape(b, -1, h, dh).transpose(1, 2)
        v = v.reshape(b, -1, h, dh).transpose(1, 2)
        bias = self.attn_bias(key_mask, p, others.shape[1] // self.n_other).to(q.dtype)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.o(a.transpose(1, 2).reshape(b, p, w))
        return x + self.ff2(F.gelu(self.ff1(self.norm_ff(x))))


class CrossAttentionFusion(Strategy):
    name = "cross-attention"
    inputs = "tokens"

    def __init__(self, modalities, d_model, n_patches, *, pool="flatten", hidden=200, dropout=0.2,
                 width: int = 64, heads: int = 4):
        super().__init__(modalities, d_model, n_patches, pool=pool, hidden=hidden, dropout=dropout)
        if len(self.modalities) < 2:
            raise ValueError("cross-attention fusion needs at least two modalities")
        self.proj = nn.ModuleDict({m: nn.Linear(self.d_model[m], width) for m in self.modalities})
        k = len(self.modalities) - 1
        self.blocks = nn.ModuleDict({m: CrossBlock(width, heads, n_patches, k) for m in self.modalities})
        self.head = mlp(width * len(self.modalities), hidden, dropout)

    @classmethod
    def prepare(cls, tokens: Tokens, patch_mask: torch.Tensor | None, pool: str):
        """The tokens themselves (the strategy pools after fusing), and the patch mask."""
        return dict(tokens), patch_mask

    def forward(self, prepared) -> torch.Tensor:
        tokens, mask = prepared
        x = {m: self.proj[m](tokens[m]) for m in self.modalities}
        outs = []
        for m in self.modalities:
            others = torch.cat([x[o] for o in self.modalities if o != m], dim=1)
            key_mask = None if mask is None else mask.repeat(1, len(self.modalities) - 1)
            outs.append(self.blocks[m](x[m], others, key_mask))
        z = torch.cat(outs, dim=-1)  # (B, P, M·W): both signals, patch by patch
        return self.head(masked_mean(z, mask, dim=1))

    def reset_extra(self) -> None:
        for block in self.blocks.values():
            block.reset_extra()

