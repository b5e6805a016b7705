"""How big an encoder a config implies, from the config alone, and the ceilings it must stay under.

:func:`count_parameters` and :func:`expected_shapes` follow from an :class:`EncoderConfig`
without allocating a tensor; :func:`check_model_size` and :func:`check_training_memory` refuse
a config above the ceilings (:data:`DEFAULT_MAX_PARAMS`, :data:`DEFAULT_MAX_MEMORY_GB`) with a
one-line :class:`ModelSizeError`. They sit below both the run configuration
(:class:`criss_cross.config.PretrainConfig` checks its encoder's size when validated) and the
door into an encoder (:mod:`criss_cross.checkpoint.guard`, which re-exports every name here).
"""

from __future__ import annotations

import math

from criss_cross.checkpoint.safetensors_file import CheckpointError
from criss_cross.encoder_config import EncoderConfig

__all__ = [
    "DEFAULT_MAX_MEMORY_GB",
    "DEFAULT_MAX_PARAMS",
    "ModelSizeError",
    "check_model_size",
    "check_training_memory",
    "count_parameters",
    "expected_shapes",
    "training_memory_bytes",
]

#: Ceiling on an encoder's parameter count (1e9 = 4 GB of float32 weights, 200x CBraMod's
#: 4.9 M). Raise it with ``max_params=`` / ``--max-params``.
DEFAULT_MAX_PARAMS = 1_000_000_000
#: Ceiling on the estimated memory of a pretraining step (weights, gradients, AdamW moments and
#: the activations of one batch), in GiB. Raise it with ``--max-memory-gb``.
DEFAULT_MAX_MEMORY_GB = 64.0

_CONV, _K1, _POS = 25, 49, (19, 7)  # the patch embedding's fixed geometry (criss_cross.encoder)


class ModelSizeError(CheckpointError):
    """A model larger than the ceiling (parameters or training memory), refused before building."""


def _base_shapes(c: EncoderConfig) -> dict[str, tuple[int, ...]]:
    d, s = c.d_model, c.patch_size
    pe = "patch_embedding."
    out: dict[str, tuple[int, ...]] = {f"{pe}mask_encoding": (s,),
                                       f"{pe}proj_in.0.weight": (_CONV, 1, 1, _K1),
                                       f"{pe}proj_in.0.bias": (_CONV,)}
    for i in (1, 4, 7):  # GroupNorms
        out[f"{pe}proj_in.{i}.weight"] = out[f"{pe}proj_in.{i}.bias"] = (_CONV,)
    for i in (3, 6):
        out[f"{pe}proj_in.{i}.weight"] = (_CONV, _CONV, 1, 3)
        out[f"{pe}proj_in.{i}.bias"] = (_CONV,)
    out[f"{pe}spectral_proj.0.weight"] = (d, c.n_freq_bins)
    out[f"{pe}spectral_proj.0.bias"] = (d,)
    out[f"{pe}positional_encoding.0.weight"] = (d, 1, *_POS)
    out[f"{pe}positional_encoding.0.bias"] = (d,)
    if c.proj_out:
        out["proj_out.0.weight"] = (s, d)
        out["proj_out.0.bias"] = (s,)
    return out


def _layer_shapes(c: EncoderConfig, i: int) -> dict[str, tuple[int, ...]]:
    d, h, ff = c.d_model, c.d_model // 2, c.dim_feedforward
    p = f"encoder.layers.{i}."
    out: dict[str, tuple[int, ...]] = {}
    for a in ("self_attn_s", "self_attn_t"):
        out[f"{p}{a}.in_proj_weight"] = (3 * h, h)
        out[f"{p}{a}.in_proj_bias"] = (3 * h,)
        out[f"{p}{a}.out_proj.weight"] = (h, h)
        out[f"{p}{a}.out_proj.bias"] = (h,)
    out[f"{p}linear1.weight"], out[f"{p}linear1.bias"] = (ff, d), (ff,)
    out[f"{p}linear2.weight"], out[f"{p}linear2.bias"] = (d, ff), (d,)
    for n in ("norm1", "norm2"):
        out[f"{p}{n}.weight"] = out[f"{p}{n}.bias"] = (d,)
    return out


def count_parameters(config: EncoderConfig) -> int:
    """The parameter count of ``CrissCrossEncoder(config)``, from the config alone (exact;
    ``mask_encoding`` included, as in the state dict)."""
    base = sum(math.prod(s) for s in _base_shapes(config).values())
    layer = sum(math.prod(s) for s in _layer_shapes(config, 0).values())
    return base + config.n_layers * layer


def expected_shapes(config: EncoderConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of ``CrissCrossEncoder(config).state_dict()``, without
    building it. Check :func:`check_model_size` first: the table has 16 entries per layer."""
    out = _base_shapes(config)
    for i in range(config.n_layers):
        out.update(_layer_shapes(config, i))
    return out


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f}"


def check_model_size(config: EncoderConfig, max_params: int | None = None,
                     source: str = "encoder config") -> int:
    """The parameter count of ``config``; a :class:`ModelSizeError` (one line naming the
    fields that decide it and the flag that raises the ceiling) above ``max_params``."""
    limit = DEFAULT_MAX_PARAMS if max_params is None else int(max_params)
    n = count_parameters(config)
    if n > limit:
        raise ModelSizeError(
            f"{source}: the encoder would have {_human(n)} parameters ({4 * n / 2**30:.3g} GiB "
            f"as float32; n_layers {config.n_layers}, d_model {config.d_model}, "
            f"dim_feedforward {config.dim_feedforward}), above the ceiling of {_human(limit)}; "
            "fix the config, or raise the ceiling with --max-params (max_params)")
    return n


def training_memory_bytes(config: EncoderConfig, batch: int, channels: int, patches: int) -> int:
    """Estimated bytes of one pretraining step: weights, gradients and AdamW's two moments
    (16 bytes a parameter) plus the float32 activations kept for the backward pass of a batch
    of ``batch`` windows of ``channels`` x ``patches`` patches.

    Per token and layer: about 12 feature vectors of ``d_model`` (norms, q/k/v, attention
    outputs, residuals) and 3 of ``dim_feedforward`` (linear1, GELU, dropout); per layer the
    attention weights of both axes (``n_heads / 2`` heads each); the patch embedding keeps about
    8 maps of ``patch_size``. An estimate to refuse absurd requests, not a budget."""
    tokens = batch * channels * patches
    heads = config.n_heads // 2
    per_layer = (tokens * (12 * config.d_model + 3 * config.dim_feedforward)
                 + batch * heads * (patches * channels**2 + channels * patches**2))
    acts = 4 * (config.n_layers * per_layer + tokens * 8 * config.patch_size)
    return 16 * count_parameters(config) + acts


def check_training_memory(config: EncoderConfig, batch: int, channels: int, patches: int,
                          max_memory_gb: float | None = None, source: str = "pretrain") -> int:
    """:func:`training_memory_bytes`, or a :class:`ModelSizeError` above ``max_memory_gb``."""
    limit = DEFAULT_MAX_MEMORY_GB if max_memory_gb is None else float(max_memory_gb)
    need = training_memory_bytes(config, batch, channels, patches)
    if need > limit * 2**30:
        raise ModelSizeError(
            f"{source}: a training step would need about {need / 2**30:.3g} GiB (batch {batch} "
            f"of {channels} channels x {patches} patches, {config.n_layers} layers, "
            f"{_human(count_parameters(config))} parameters), above the ceiling of {limit:g} GiB; "
            "lower batch_size or the model size, or raise the ceiling with --max-memory-gb "
            "(max_memory_gb)")
    return need
