"""The one door into an encoder: every route checks the same things, in the same order.

:func:`build_encoder` is what ``from_pretrained`` (Hub folders and repo ids), ``load_checkpoint``
(run folders, checkpoint files), ``load_cbramod_checkpoint`` (``.pth``/``.safetensors`` with the
authors' key names), ``create_model`` (registry names), fusion-emotion's encoders, the probe and
``embed`` go through:

1. **validate the config** (:func:`validate_encoder_config`): a pydantic error becomes one line
   ``SOURCE: invalid encoder config: field: message``;
2. **estimate the size and refuse above the ceiling** (:func:`check_model_size`): the parameter
   count follows from the config alone (:func:`count_parameters`, no tensor allocated), refused
   above ``max_params`` (default :data:`DEFAULT_MAX_PARAMS`, raised by ``--max-params`` /
   the ``max_params`` config fields);
3. **check the weights against the config before reading them** (:func:`check_weights_fit`):
   the safetensors header (layout, offsets and file size already checked by
   :func:`~criss_cross.checkpoint.safetensors_file.read_header`) must hold exactly the tensor
   names and shapes the config implies (:func:`expected_shapes`), in a floating dtype;
4. only then **build and load** strictly, and refuse weights that are not finite.

So a ``config.json`` edited to ``n_layers: 100000`` is refused in milliseconds with the memory of
a normal load, whichever route it arrives by; a lying, short or garbage ``model.safetensors`` is
one line naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from criss_cross.checkpoint.safetensors_file import CheckpointError, SafetensorsHeader, read_header
from criss_cross.config import EncoderConfig

if TYPE_CHECKING:
    from criss_cross.encoder import CrissCrossEncoder

__all__ = [
    "DEFAULT_MAX_MEMORY_GB",
    "DEFAULT_MAX_PARAMS",
    "ModelSizeError",
    "build_encoder",
    "check_finite",
    "check_model_size",
    "check_training_memory",
    "check_weights_fit",
    "count_parameters",
    "expected_shapes",
    "training_memory_bytes",
    "validate_encoder_config",
]

#: Ceiling on an encoder's parameter count (1e9 = 4 GB of float32 weights, 200x CBraMod's
#: 4.9 M). Raise it with ``max_params=`` / ``--max-params``.
DEFAULT_MAX_PARAMS = 1_000_000_000
#: Ceiling on the estimated memory of a pretraining step (weights, gradients, AdamW moments and
#: the activations of one batch), in GiB. Raise it with ``--max-memory-gb``.
DEFAULT_MAX_MEMORY_GB = 64.0

_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
_CONV, _K1, _POS = 25, 49, (19, 7)  # the patch embedding's fixed geometry (criss_cross.encoder)


class ModelSizeError(CheckpointError):
    """A model larger than the ceiling (parameters or training memory), refused before building."""


def validate_encoder_config(data: EncoderConfig | Mapping[str, Any] | None,
                            source: str = "encoder config") -> EncoderConfig:
    """An :class:`EncoderConfig` from ``data`` (None: CBraMod's defaults), or a one-line
    :class:`CheckpointError` ``SOURCE: invalid encoder config: field: message; ...``."""
    if isinstance(data, EncoderConfig):
        return data
    if data is None:
        return EncoderConfig()
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{source}: the encoder config is a {type(data).__name__}, "
                              "not a mapping of EncoderConfig fields")
    from pydantic import ValidationError

    try:
        return EncoderConfig.model_validate(dict(data))
    except ValidationError as err:
        from biosig_prep.util import validation_lines

        raise CheckpointError(f"{source}: invalid encoder config: "
                              + "; ".join(validation_lines(err))) from None


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


def check_weights_fit(config: EncoderConfig, tensors: Mapping[str, tuple[str, tuple[int, ...]]],
                      source: str) -> None:
    """Refuse weights (``name -> (dtype, shape)``, e.g. a safetensors header) that are not
    exactly the tensors ``config`` implies: missing, unexpected, misshapen or non-floating
    tensors are named in one line. Call :func:`check_model_size` first."""
    from criss_cross.checkpoint.model import _format_keys, _n_layers, _natural

    want = expected_shapes(config)
    missing = sorted((k for k in want if k not in tensors), key=_natural)
    unexpected = sorted((k for k in tensors if k not in want), key=_natural)
    misshapen = [f"{k} (checkpoint {tuple(tensors[k][1])}, model {want[k]})"
                 for k in sorted(want, key=_natural)
                 if k in tensors and tuple(tensors[k][1]) != want[k]]
    dtypes = [f"{k} ({tensors[k][0]})" for k in sorted(tensors, key=_natural)
              if k in want and str(tensors[k][0]).upper().replace("TORCH.", "")
              not in _FLOAT_DTYPES | {"FLOAT16", "BFLOAT16", "FLOAT32", "FLOAT64"}]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_format_keys(missing, 8)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_format_keys(unexpected, 8)}")
    if misshapen:
        problems.append(f"shape mismatches ({len(misshapen)}): {_format_keys(misshapen, 8)}")
    if dtypes:
        problems.append(f"not floating point ({len(dtypes)}): {_format_keys(dtypes, 8)}")
    n_weights = _n_layers(tensors)
    if n_weights != config.n_layers:
        problems.append(f"the checkpoint has {n_weights} layers, the model {config.n_layers} "
                        "(n_layers)")
    if problems:
        raise CheckpointError(f"{source}: the config does not match the weights: "
                              + "; ".join(problems))


def check_finite(model: torch.nn.Module, source: str) -> None:
    """A :class:`CheckpointError` naming the first tensor holding NaN or inf."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{source}: tensor {name} holds {bad} NaN/inf value(s); "
                                  "the weights are damaged (re-export or re-download them)")


def build_encoder(config: EncoderConfig | Mapping[str, Any] | None,
                  weights: str | Path | Mapping[str, torch.Tensor] | None = None, *,
                  source: str | None = None, max_params: int | None = None
                  ) -> CrissCrossEncoder:
    """The checked way to an encoder; see the module docstring for the order of the checks.

    config : an EncoderConfig, a mapping of its fields (a ``config.json``'s ``encoder``), or
        None (CBraMod's defaults).
    weights : None (random init, train mode), a ``.safetensors`` path whose tensor names are
        exactly the state dict's (checked from its header before anything is read), or a state
        dict already in memory (checked by shapes before the model is built).
    source : the file named in messages (default: ``weights``).

    Returns a :class:`criss_cross.CrissCrossEncoder`: with weights, strictly loaded, finite,
    in eval mode on CPU. Raises :class:`CheckpointError` (a ``ValueError``; one line) or
    :class:`ModelSizeError`.
    """
    from criss_cross.checkpoint.model import load_state_dict_strict
    from criss_cross.encoder import CrissCrossEncoder

    name = source or (str(weights) if isinstance(weights, (str, Path)) else "encoder config")
    cfg = validate_encoder_config(config, name)
    check_model_size(cfg, max_params, name)
    if weights is None:
        return CrissCrossEncoder(cfg)
    if isinstance(weights, (str, Path)):
        from safetensors.torch import load_file

        header: SafetensorsHeader = read_header(weights)
        check_weights_fit(cfg, header, name)
        state = load_file(str(weights))
    else:
        for key, value in weights.items():
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{name}: {key!r} holds a {type(value).__name__}, "
                                      "not a tensor")
        check_weights_fit(cfg, {k: (str(v.dtype), tuple(v.shape)) for k, v in weights.items()},
                          name)
        state = dict(weights)
    model = CrissCrossEncoder(cfg)
    try:
        load_state_dict_strict(model, state)
    except CheckpointError as err:
        raise CheckpointError(f"{name}: {err}") from None
    check_finite(model, name)
    return model.eval()
