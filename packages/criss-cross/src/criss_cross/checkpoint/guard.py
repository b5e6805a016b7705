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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from criss_cross.checkpoint.safetensors_file import CheckpointError, SafetensorsHeader, read_header
from criss_cross.checkpoint.size import (
    DEFAULT_MAX_MEMORY_GB,
    DEFAULT_MAX_PARAMS,
    ModelSizeError,
    check_model_size,
    check_training_memory,
    count_parameters,
    expected_shapes,
    training_memory_bytes,
)
from criss_cross.checkpoint.strict import (
    count_layers,
    fit_problems,
    format_keys,
    load_state_dict_strict,
    natural_key,
)
from criss_cross.encoder import CrissCrossEncoder
from criss_cross.encoder_config import EncoderConfig

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

_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


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


def check_weights_fit(config: EncoderConfig, tensors: Mapping[str, tuple[str, tuple[int, ...]]],
                      source: str) -> None:
    """Refuse weights (``name -> (dtype, shape)``, e.g. a safetensors header) that are not
    exactly the tensors ``config`` implies: missing, unexpected, misshapen or non-floating
    tensors are named in one line. Call :func:`check_model_size` first."""
    want = expected_shapes(config)
    dtypes = [f"{k} ({tensors[k][0]})" for k in sorted(tensors, key=natural_key)
              if k in want and str(tensors[k][0]).upper().replace("TORCH.", "")
              not in _FLOAT_DTYPES | {"FLOAT16", "BFLOAT16", "FLOAT32", "FLOAT64"}]
    problems = fit_problems(want, {k: tuple(shape) for k, (_, shape) in tensors.items()}, 8)
    if dtypes:
        problems.append(f"not floating point ({len(dtypes)}): {format_keys(dtypes, 8)}")
    n_weights = count_layers(tensors)
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
