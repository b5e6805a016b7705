"""Criss-cross transformer encoder, weight-compatible with CBraMod.

CBraMod: "A Criss-Cross Brain Foundation Model for EEG Decoding", Wang et al., ICLR 2025,
arXiv 2412.07236. Official implementation: https://github.com/wjq-learning/CBraMod
(``models/cbramod.py``, ``models/criss_cross_transformer.py``).

The module names reproduce the official state-dict keys (``patch_embedding.*``,
``encoder.layers.N.self_attn_s.in_proj_weight``, ``proj_out.0.weight``, ...), so the authors'
weights load strictly (see :mod:`criss_cross.checkpoint`) and give the same outputs. What
differs is how the work is done:

- each layer projects q, k and v of each half straight from the layer norm's output (strided
  views, no slicing copies) into a head-major layout from which the spatial (across channels)
  and temporal (across patches) attention inputs are plain strided views;
- attention runs through :func:`torch.nn.functional.scaled_dot_product_attention` on those
  views, whose output already has the (B, C, P, features) layout: no transposes, no
  ``.contiguous()`` copies (the kernels and their dispatch live in :mod:`criss_cross.layers`,
  with a switch to turn the fused kernels off). On CPU, training with attention dropout (where SDPA has no fused
  kernel) and sequences of up to 32 tokens (where the fused kernel is slower) use
  :func:`attention_math`, whose matmuls copy q, k and v once;
- dropout on CPU thresholds 16-bit random integers (four per int64 draw) instead of
  PyTorch's Bernoulli path, and the residual branches fuse ``x + dropout(y)`` into one
  ``addcmul``;
- masked patches are replaced with :func:`torch.where`, not boolean-indexed assignment, so the
  forward pass traces and compiles (``torch.compile``) and runs under ``torch.autocast``.

Shapes: the input ``x`` is (batch, n_chans, n_patches, patch_size); ``B, C, P, S`` below.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from criss_cross.encoder_config import EncoderConfig
from criss_cross.layers import (
    CPU_MATH_MAX_LEN,
    Dropout,
    attention,
    attention_math,
    dropout,
    padded_sdpa,
    residual_dropout,
)
from criss_cross.layers.dropout import fast_dropout_applies, keep_mask
from criss_cross.pooling import masked_mean

__all__ = [
    "CPU_MATH_MAX_LEN",
    "AxialAttention",
    "CrissCrossEncoder",
    "Dropout",
    "Encoder",
    "EncoderLayer",
    "PatchEmbedding",
    "attention",
    "attention_math",
    "checkpoint_filter_fn",
    "dropout",
    "init_weights",
    "padded_sdpa",
    "residual_dropout",
]

# Channels of the patch embedding's convolutions, and its first convolution's geometry.
_CONV_CHANNELS = 25
_CONV_GROUPS = 5
_CONV1_KERNEL, _CONV1_STRIDE, _CONV1_PADDING = 49, 25, 24
# Depthwise convolution over the (channel, patch) grid that encodes position.
_POS_KERNEL, _POS_PADDING = (19, 7), (9, 3)


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


class PatchEmbedding(nn.Module):
    """Embed every patch of ``patch_size`` samples into ``d_model`` features.

    Two branches see the (masked) input and are summed: a time-domain branch of three
    convolutions (Conv2d(1, 25, (1, 49), stride (1, 25)) then twice Conv2d(25, 25, (1, 3)),
    each followed by GroupNorm(5, 25) and GELU) whose 25 maps of ``S / 25`` samples are
    flattened with the map index varying slowest; and a spectral branch,
    ``|rfft(patch, norm="forward")|`` over ``S // 2 + 1`` bins, then Linear and Dropout. A
    depthwise convolution over the (channel, patch) grid is added as a positional encoding.

    GroupNorm pools its statistics over all channels and patches of a sample, so the embedding
    of one patch depends on the whole input, as in the official model.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        d, s = config.d_model, config.patch_size
        self.d_model = d
        self.patch_size = s
        # Non-trainable, but part of the state dict (the official checkpoints carry it).
        self.mask_encoding = nn.Parameter(torch.zeros(s), requires_grad=False)
        self.proj_in = nn.Sequential(
            nn.Conv2d(1, _CONV_CHANNELS, (1, _CONV1_KERNEL), (1, _CONV1_STRIDE), (0, _CONV1_PADDING)),
            nn.GroupNorm(_CONV_GROUPS, _CONV_CHANNELS),
            nn.GELU(),
            nn.Conv2d(_CONV_CHANNELS, _CONV_CHANNELS, (1, 3), (1, 1), (0, 1)),
            nn.GroupNorm(_CONV_GROUPS, _CONV_CHANNELS),
            nn.GELU(),
            nn.Conv2d(_CONV_CHANNELS, _CONV_CHANNELS, (1, 3), (1, 1), (0, 1)),
            nn.GroupNorm(_CONV_GROUPS, _CONV_CHANNELS),
            nn.GELU(),
        )
        self.spectral_proj = nn.Sequential(
            nn.Linear(config.n_freq_bins, d),
            Dropout(config.dropout),
        )
        self.positional_encoding = nn.Sequential(
            nn.Conv2d(d, d, _POS_KERNEL, (1, 1), _POS_PADDING, groups=d),
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Embed ``x`` (B, C, P, S); ``mask`` (B, C, P) bool, True = masked. -> (B, C, P, d)."""
        b, c, p, s = x.shape
        if mask is not None:
            x = torch.where(mask.unsqueeze(-1), self.mask_encoding.to(x.dtype), x)

        # Time-domain branch: every patch is a row of one single-channel image per sample.
        emb = self.proj_in(x.reshape(b, 1, c * p, s))  # (B, 25, C*P, S/25)
        emb = emb.permute(0, 2, 1, 3).reshape(b, c, p, self.d_model)

        # Spectral branch (half-precision input is lifted to float32: FFTs of low-precision
        # tensors are limited; float64 stays float64).
        xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
        spectrum = torch.fft.rfft(xf, dim=-1, norm="forward").abs().to(emb.dtype)
        emb = emb + self.spectral_proj(spectrum)

        # Positional encoding: (B, C, P, d) seen as a channels-last (B, d, C, P) image.
        pos = self.positional_encoding(emb.permute(0, 3, 1, 2))
        return emb + pos.permute(0, 2, 3, 1)


class AxialAttention(nn.Module):
    """Multi-head self-attention along one axis of a (B, C, P, E) grid of tokens.

    ``axis=1`` attends across channels (CBraMod's spatial attention, ``self_attn_s``),
    ``axis=2`` across patches (temporal attention, ``self_attn_t``). The parameters carry the
    names and layout of :class:`torch.nn.MultiheadAttention` (``in_proj_weight`` (3E, E) with
    the q, k, v rows stacked, ``in_proj_bias``, ``out_proj``), so official weights load
    unchanged. :class:`EncoderLayer` projects its half of the features with
    :meth:`head_major_in_proj`; :meth:`attend` maps the projected q/k/v to attention and the
    output projection.
    """

    def __init__(self, dim: int, n_heads: int, axis: Literal[1, 2], dropout: float):
        super().__init__()
        if axis not in (1, 2):
            raise ValueError(f"axis must be 1 (channels) or 2 (patches), got {axis}")
        self.dim = dim
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.axis = axis
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        # as nn.MultiheadAttention does: a layer built on its own never holds uninitialised
        # memory (torch.empty can hold NaN; the model's init_weights draws it again)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def head_major_in_proj(self) -> tuple[Tensor, Tensor]:
        """``in_proj`` weight and bias with rows reordered from (3, H, D) to (H, 3, D).

        With that order, the projected tokens (…, H, 3, D) give q, k and v as views in which
        the token axis not attended over can be merged with the head axis, so SDPA gets 4-D
        strided views and no copy is made.
        """
        h, d, e = self.n_heads, self.head_dim, self.dim
        weight = self.in_proj_weight.view(3, h, d, e).transpose(0, 1).reshape(3 * e, e)
        bias = self.in_proj_bias.view(3, h, d).transpose(0, 1).reshape(3 * e)
        return weight, bias

    def attend(self, qkv: Tensor) -> Tensor:
        """Attention from projected tokens ``qkv`` (B, C, P, 3E) in (H, 3, D) order -> (B, C, P, E).

        ``qkv`` must be contiguous in its last dimension and have a row stride of 3E.
        """
        b, c, p, _ = qkv.shape
        h, d = self.n_heads, self.head_dim
        q, k, v = qkv.view(b, c, p, h, 3, d).unbind(4)  # each (B, C, P, H, D), strided views
        if self.axis == 1:
            # Sequences run over channels; batch = B, "heads" = (P, H) merged (still a view).
            q, k, v = (t.permute(0, 2, 3, 1, 4).flatten(1, 2) for t in (q, k, v))
        else:
            # Sequences run over patches; batch = (B, C) merged, heads = H.
            q, k, v = (t.flatten(0, 1).transpose(1, 2) for t in (q, k, v))
        out = attention(q, k, v, self.dropout if self.training else 0.0)
        # out: (batch, heads, seq, D); back to (B, C, P, H * D), a view when SDPA wrote its
        # output sequence-major (the fused CPU/CUDA kernels do).
        if self.axis == 1:
            out = out.unflatten(1, (p, h)).permute(0, 3, 1, 2, 4)
        else:
            out = out.transpose(1, 2).unflatten(0, (b, c))
        return self.out_proj(out.reshape(b, c, p, h * d))


class EncoderLayer(nn.Module):
    """One pre-norm criss-cross transformer layer.

    ``x + Dropout(CrissCross(LN1(x)))`` then ``x + FFN(LN2(x))``, where the criss-cross
    attention sends the first ``d_model // 2`` features through :class:`AxialAttention` across
    channels (``self_attn_s``) and the last ``d_model // 2`` across patches (``self_attn_t``),
    and concatenates the two outputs; FFN is Linear -> GELU -> Dropout -> Linear -> Dropout.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        d, half, heads = config.d_model, config.d_model // 2, config.n_heads // 2
        self.half = half  # type: ignore[method-assign, assignment]  # shadows nn.Module.half
        self.self_attn_s = AxialAttention(half, heads, axis=1, dropout=config.dropout)
        self.self_attn_t = AxialAttention(half, heads, axis=2, dropout=config.dropout)
        self.linear1 = nn.Linear(d, config.dim_feedforward)
        self.dropout = Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout1 = Dropout(config.dropout)
        self.dropout2 = Dropout(config.dropout)

    def criss_cross_attention(self, x: Tensor) -> Tensor:
        """Spatial attention on the first half of the features, temporal on the second."""
        half = self.half
        # Each half is read in place (a strided view with a row stride of d): no slicing copy.
        spatial = self.self_attn_s.attend(F.linear(x[..., :half], *self.self_attn_s.head_major_in_proj()))
        temporal = self.self_attn_t.attend(F.linear(x[..., half:], *self.self_attn_t.head_major_in_proj()))
        return torch.cat((spatial, temporal), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, P, d) -> (B, C, P, d)."""
        # dropout1 / dropout2 are applied fused with the residual additions.
        training = self.training
        x = residual_dropout(x, self.criss_cross_attention(self.norm1(x)), self.dropout1.p, training)
        hidden = F.gelu(self.linear1(self.norm2(x)))
        if training and self.dropout.p > 0.0 and fast_dropout_applies(hidden, self.dropout.p):
            # In place: GELU's backward needs its input, not its output.
            hidden = hidden.mul_(keep_mask(hidden, self.dropout.p))
        else:
            hidden = self.dropout(hidden)
        return residual_dropout(x, self.linear2(hidden), self.dropout2.p, training)


class Encoder(nn.Module):
    """A stack of :class:`EncoderLayer` (no final norm, as in CBraMod)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

Pool = Literal["none", "channels", "all"]


class CrissCrossEncoder(nn.Module):
    """CBraMod's criss-cross transformer: patch embedding, 12 layers, reconstruction head.

    Parameters
    ----------
    config : EncoderConfig | None
        Hyper-parameters; the defaults are CBraMod's.

    Input ``x`` is (B, C, P, patch_size) for any number of channels C >= 1 and patches
    P >= 1. ``model(x)`` returns (B, C, P, patch_size) reconstructed patches with
    ``config.proj_out`` (CBraMod's pretraining head), (B, C, P, d_model) embeddings without.
    ``forward_features`` always returns the embeddings, ``embed`` pools them.

    Notes
    -----
    Input scaling is not done here: feed ``x * config.input_scale`` (see
    :class:`EncoderConfig`).
    """

    def __init__(self, config: EncoderConfig | None = None):
        super().__init__()
        self.config = config if config is not None else EncoderConfig()
        self.patch_embedding = PatchEmbedding(self.config)
        self.encoder = Encoder(self.config)
        self.proj_out: nn.Module = nn.Identity()
        self.reset_head(self.config.patch_size if self.config.proj_out else None)
        self.apply(init_weights)

    @property
    def d_model(self) -> int:
        return self.config.d_model

    def reset_head(self, out_dim: int | None) -> None:
        """Replace the head: ``Linear(d_model, out_dim)`` (named ``proj_out.0``) or identity."""
        if out_dim:
            self.proj_out = nn.Sequential(nn.Linear(self.config.d_model, out_dim))
            self.proj_out.apply(init_weights)
        else:
            self.proj_out = nn.Identity()

    def _check_input(self, x: Tensor, mask: Tensor | None) -> Tensor | None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(
                "expected x of shape (batch, n_chans, n_patches, patch_size), got a "
                f"{x.dim()}-D tensor of shape {tuple(x.shape)}"
            )
        if x.shape[-1] != self.config.patch_size:
            raise ValueError(
                f"expected patch_size {self.config.patch_size}, got {x.shape[-1]} "
                f"(x has shape {tuple(x.shape)}); cut the signal into patches of "
                f"{self.config.patch_size} samples"
            )
        if 0 in x.shape:
            raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or infinite values; clean or mask the input first")
        if mask is None:
            return None
        if mask.shape != x.shape[:3]:
            raise ValueError(
                f"mask must have shape (batch, n_chans, n_patches) = {tuple(x.shape[:3])}, "
                f"got {tuple(mask.shape)}"
            )
        return mask if mask.dtype == torch.bool else mask != 0

    def forward_features(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Embeddings (B, C, P, d_model) of ``x`` (B, C, P, S).

        ``mask`` (B, C, P), bool (True = masked) or 0/1 integers (1 = masked): masked patches
        are replaced by ``patch_embedding.mask_encoding`` before embedding.
        """
        mask = self._check_input(x, mask)
        return self.encoder(self.patch_embedding(x, mask))

    def forward_head(self, features: Tensor) -> Tensor:
        """Apply the head (``proj_out``) to embeddings (B, C, P, d_model)."""
        return self.proj_out(features)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, C, P, S) -> (B, C, P, S) reconstruction, or embeddings when the head is off."""
        return self.forward_head(self.forward_features(x, mask))

    def embed(
        self,
        x: Tensor,
        pool: Pool = "none",
        valid_channels: Tensor | None = None,
        valid_patches: Tensor | None = None,
    ) -> Tensor:
        """Embeddings of ``x`` (B, C, P, S), per patch or pooled.

        Parameters
        ----------
        pool : "none" | "channels" | "all"
            "none": (B, C, P, d_model); "channels": mean over channels, (B, P, d_model);
            "all": mean over channels and patches, (B, d_model).
        valid_channels : Tensor, shape (B, C), bool, optional
            Channels to average over (False for zero-filled leads); all channels when None.
        valid_patches : Tensor, shape (B, P), bool, optional
            Patches that hold real samples (False for the zero padding of a record's last
            partial window); "all" averages over these only. All patches when None. "none"
            and "channels" keep every patch (the caller has the mask).

        The head is never applied; the module's train/eval mode and grad mode are the
        caller's.
        """
        if pool not in ("none", "channels", "all"):
            raise ValueError(f"pool must be 'none', 'channels' or 'all', got {pool!r}")
        feats = self.forward_features(x)
        if pool == "none":
            return feats
        if valid_channels is not None and valid_channels.shape != feats.shape[:2]:
            raise ValueError(
                f"valid_channels must have shape (batch, n_chans) = {tuple(feats.shape[:2])}, "
                f"got {tuple(valid_channels.shape)}"
            )
        pooled = masked_mean(feats, valid_channels, dim=1)
        if pool == "channels":
            return pooled
        if valid_patches is not None and tuple(valid_patches.shape) != tuple(pooled.shape[:2]):
            raise ValueError(
                f"valid_patches must have shape (batch, n_patches) = {tuple(pooled.shape[:2])}, "
                f"got {tuple(valid_patches.shape)}"
            )
        return masked_mean(pooled, valid_patches, dim=1)


# --------------------------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------------------------


def init_weights(module: nn.Module) -> None:
    """CBraMod's initialisation: kaiming-normal (fan_out, relu) on every Linear.

    Attention input projections follow :class:`torch.nn.MultiheadAttention` (xavier-uniform
    weight, zero bias) and the output projections' biases start at zero, as there. Convolutions
    and norms keep PyTorch's defaults. Use with ``model.apply(init_weights)``.
    """
    if isinstance(module, nn.Linear):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, AxialAttention):
        nn.init.xavier_uniform_(module.in_proj_weight)
        nn.init.zeros_(module.in_proj_bias)
        nn.init.zeros_(module.out_proj.bias)


# --------------------------------------------------------------------------------------------
# Foreign checkpoints
# --------------------------------------------------------------------------------------------

# A key only CBraMod's state dicts carry; recognises the format.
_CBRAMOD_SENTINEL = "patch_embedding.spectral_proj.0.weight"
_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.")


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: CrissCrossEncoder) -> dict[str, Tensor]:
    """Turn a foreign checkpoint into a state dict for ``model``.

    Unwraps ``{"model": ...}`` / ``{"state_dict": ...}`` containers, strips the prefixes of
    ``DataParallel``/DDP (``module.``), ``torch.compile`` (``_orig_mod.``) and common wrappers
    (``model.``, ``backbone.``), recognises CBraMod's format by the key
    ``patch_embedding.spectral_proj.0.weight``, and drops the official ``proj_out.*`` head when
    ``model`` has none. Everything else is returned unchanged, for a strict load to judge.
    """
    for container in ("model", "state_dict"):
        inner = state_dict.get(container)
        if isinstance(inner, dict):
            state_dict = inner
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix) :], True
        out[key] = value
    if _CBRAMOD_SENTINEL not in out:
        raise KeyError(
            f"not a CBraMod state dict: no key {_CBRAMOD_SENTINEL!r} "
            f"(first keys: {', '.join(list(out)[:5])})"
        )
    if isinstance(model.proj_out, nn.Identity):
        out = {k: v for k, v in out.items() if not k.startswith("proj_out.")}
    return out

