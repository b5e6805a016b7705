"""A strict state-dict load whose error names every key: the helpers both checkpoint routes use.

:func:`load_state_dict_strict` is ``model.load_state_dict(strict=True)`` with a one-line
:class:`CheckpointError` listing the missing, unexpected and misshapen keys;
:func:`criss_cross.checkpoint.guard.check_weights_fit` names keys the same way before a model
is built. Both :mod:`criss_cross.checkpoint.guard` and :mod:`criss_cross.checkpoint.model`
import from here (the latter re-exports :func:`load_state_dict_strict`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

from criss_cross.checkpoint.safetensors_file import CheckpointError

__all__ = ["count_layers", "fit_problems", "format_keys", "load_state_dict_strict", "natural_key"]


def natural_key(key: str) -> list:
    """Sort key that puts encoder.layers.2 before encoder.layers.10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def count_layers(keys) -> int:
    """The number of ``encoder.layers.N.`` blocks the keys name (highest N + 1; 0 if none)."""
    found = {int(m.group(1)) for k in keys if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def format_keys(keys: list[str], limit: int = 20) -> str:
    """The first ``limit`` keys, comma-separated, and how many more there are."""
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def fit_problems(model: Mapping[str, tuple[int, ...]], checkpoint: Mapping[str, tuple[int, ...]],
                 limit: int = 20) -> list[str]:
    """What keeps ``checkpoint`` (name -> shape) from being exactly ``model``'s tensors (name ->
    shape): the missing keys, the unexpected keys and the shape mismatches, each as one phrase
    naming up to ``limit`` keys in natural order (empty when they fit)."""
    missing = sorted((k for k in model if k not in checkpoint), key=natural_key)
    unexpected = sorted((k for k in checkpoint if k not in model), key=natural_key)
    mismatched = [f"{k} (checkpoint {tuple(checkpoint[k])}, model {tuple(model[k])})"
                  for k in sorted(model, key=natural_key)
                  if k in checkpoint and tuple(checkpoint[k]) != tuple(model[k])]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {format_keys(missing, limit)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {format_keys(unexpected, limit)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {format_keys(mismatched, limit)}")
    return problems


def load_state_dict_strict(model: torch.nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with an error that names the keys.

    Raises
    ------
    CheckpointError
        Listing the missing keys, the unexpected keys and the shape mismatches by name.
    """
    own = model.state_dict()
    problems = fit_problems({k: tuple(v.shape) for k, v in own.items()},
                            {k: tuple(v.shape) for k, v in state_dict.items()})
    n_ckpt, n_model = count_layers(state_dict), count_layers(own)
    if n_ckpt != n_model:
        problems.append(f"the checkpoint has {n_ckpt} layers, the model {n_model} (n_layers)")
    if problems:
        raise CheckpointError("checkpoint does not fit the model; " + "; ".join(problems))
    result = model.load_state_dict(dict(state_dict), strict=True)
    assert not result.missing_keys and not result.unexpected_keys  # checked above
