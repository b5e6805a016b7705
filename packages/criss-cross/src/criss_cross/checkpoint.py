"""Reading and writing encoder weights.

- Foreign checkpoints (the authors' CBraMod ``.pth`` files, or a state dict already in memory)
  go through :func:`load_cbramod_checkpoint`: ``torch.load(weights_only=True)`` (no arbitrary
  pickle), :func:`criss_cross.encoder.checkpoint_filter_fn`, then a strict load that names
  every missing and unexpected key.
- Our own checkpoints are two files: ``NAME.safetensors`` (the tensors) and ``NAME.json``
  (the :class:`EncoderConfig` and whatever ``extra`` the caller adds: step, loss, data...).
  No pickle anywhere: :func:`save_checkpoint` / :func:`load_checkpoint`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from criss_cross import __version__
from criss_cross.config import EncoderConfig
from criss_cross.encoder import CrissCrossEncoder, checkpoint_filter_fn

__all__ = [
    "CheckpointError",
    "checkpoint_filter_fn",
    "load_cbramod_checkpoint",
    "load_checkpoint",
    "load_state_dict_strict",
    "read_checkpoint_meta",
    "save_checkpoint",
]

_FORMAT = "criss-cross-checkpoint"
_FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model (names the keys) or cannot be read."""


def _natural(key: str) -> list:
    """Sort key that puts encoder.layers.2 before encoder.layers.10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def _n_layers(keys) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def _format_keys(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_dict_strict(model: torch.nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` with an error that names the keys.

    Raises
    ------
    CheckpointError
        Listing the missing keys, the unexpected keys and the shape mismatches by name.
    """
    own = model.state_dict()
    missing = sorted((k for k in own if k not in state_dict), key=_natural)
    unexpected = sorted((k for k in state_dict if k not in own), key=_natural)
    mismatched = sorted(
        f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_format_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_format_keys(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {_format_keys(mismatched)}")
    n_ckpt, n_model = _n_layers(state_dict), _n_layers(own)
    if n_ckpt != n_model:
        problems.append(f"the checkpoint has {n_ckpt} layers, the model {n_model} (n_layers)")
    if problems:
        raise CheckpointError("checkpoint does not fit the model; " + "; ".join(problems))
    result = model.load_state_dict(dict(state_dict), strict=True)
    assert not result.missing_keys and not result.unexpected_keys  # checked above


def _read_foreign(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return dict(load_file(str(path)))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle with code in it, or not a torch file at all
        raise CheckpointError(
            f"cannot read {path} with torch.load(weights_only=True): {err}"
        ) from err
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return dict(obj)


def load_cbramod_checkpoint(
    path_or_state_dict: str | Path | Mapping[str, Any],
    config: EncoderConfig | None = None,
) -> CrissCrossEncoder:
    """Build a :class:`CrissCrossEncoder` from the authors' CBraMod weights.

    Parameters
    ----------
    path_or_state_dict : str | Path | Mapping
        A ``.pth``/``.pt`` file (read with ``torch.load(weights_only=True)``), a
        ``.safetensors`` file, or a state dict. ``{"model": ...}`` / ``{"state_dict": ...}``
        wrappers and a ``module.`` prefix (DataParallel/DDP) are handled.
    config : EncoderConfig, optional
        Defaults to CBraMod's configuration with the reconstruction head. With
        ``proj_out=False`` the checkpoint's ``proj_out.*`` is dropped.

    Returns
    -------
    CrissCrossEncoder
        In eval mode, on CPU, with the weights loaded strictly.

    Raises
    ------
    CheckpointError
        Missing / unexpected keys or shape mismatches, by name.
    """
    if isinstance(path_or_state_dict, (str, Path)):
        raw = _read_foreign(Path(path_or_state_dict))
    elif isinstance(path_or_state_dict, Mapping):
        raw = dict(path_or_state_dict)
    else:
        raise TypeError(
            "path_or_state_dict must be a path or a state dict, got "
            f"{type(path_or_state_dict).__name__}"
        )
    model = CrissCrossEncoder(config)
    try:
        state_dict = checkpoint_filter_fn(raw, model)
    except KeyError as err:
        raise CheckpointError(str(err.args[0])) from err
    load_state_dict_strict(model, state_dict)
    return model.eval()


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_checkpoint(
    model: CrissCrossEncoder, path: str | Path, extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``PATH.safetensors`` (weights) and ``PATH.json`` (config + ``extra``).

    ``path`` may be given with or without the ``.safetensors`` suffix. ``extra`` must be
    JSON-serialisable (step, epoch, losses, data description...). Returns both paths.
    """
    weights, meta = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(weights), metadata={"format": _FORMAT})
    doc = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "criss_cross_version": __version__,
        "config": model.config.model_dump(mode="json"),
        "extra": extra or {},
    }
    meta.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return weights, meta


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The JSON document beside a checkpoint (config, extra, versions)."""
    _, meta = _paths(path)
    if not meta.is_file():
        raise FileNotFoundError(f"checkpoint config {meta} does not exist")
    doc = json.loads(meta.read_text())
    if doc.get("format") != _FORMAT:
        raise CheckpointError(f"{meta} is not a criss-cross checkpoint config")
    return doc


def load_checkpoint(path: str | Path) -> CrissCrossEncoder:
    """Load a checkpoint written by :func:`save_checkpoint` (strict, eval mode, CPU)."""
    weights, _ = _paths(path)
    doc = read_checkpoint_meta(path)
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint weights {weights} do not exist")
    model = CrissCrossEncoder(EncoderConfig.model_validate(doc["config"]))
    load_state_dict_strict(model, load_file(str(weights)))
    return model.eval()
