"""Encoder weights: the authors' state dicts and our own safetensors + JSON checkpoints.

- Foreign checkpoints (the authors' CBraMod ``.pth`` files, or a state dict already in memory)
  go through :func:`load_cbramod_checkpoint`: ``torch.load(weights_only=True)`` (no arbitrary
  pickle), :func:`criss_cross.encoder.checkpoint_filter_fn`, then a strict load that names
  every missing and unexpected key.
- Our own checkpoints are two files: ``NAME.safetensors`` (the tensors) and ``NAME.json``
  (the :class:`EncoderConfig` and whatever ``extra`` the caller adds: step, loss, data...).
  No pickle anywhere: :func:`save_checkpoint` / :func:`load_checkpoint`.

Nothing is built from a file before it is checked: the safetensors header is read first
(:func:`criss_cross.checkpoint.safetensors_file.read_header`) and the JSON config is compared
with the weights' shapes, so a config edited to ``n_layers: 100000`` is refused in
milliseconds instead of allocating a huge model. Every problem is a :class:`CheckpointError`
whose message is one line naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from criss_cross.checkpoint.guard import (
    build_encoder,
    check_model_size,
    check_weights_fit,
    validate_encoder_config,
)
from criss_cross.checkpoint.safetensors_file import CheckpointError, SafetensorsHeader, read_header
from criss_cross.checkpoint.strict import load_state_dict_strict
from criss_cross.encoder import CrissCrossEncoder, checkpoint_filter_fn
from criss_cross.encoder_config import EncoderConfig
from criss_cross.version import __version__

__all__ = [
    "CheckpointError",
    "check_config_fits",
    "checkpoint_filter_fn",
    "load_cbramod_checkpoint",
    "load_checkpoint",
    "load_state_dict_strict",
    "read_checkpoint_meta",
    "save_checkpoint",
]

FORMAT = "criss-cross-checkpoint"
_FORMAT_VERSION = 1

def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0].strip() if text else type(err).__name__


def _read_foreign(path: Path, config: EncoderConfig, source: str) -> dict[str, Any]:
    """The tensors of a foreign file; a ``.safetensors`` is checked against ``config`` from its
    header (names after the usual prefixes are stripped) before a byte of data is read."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        header = read_header(path)
        check_weights_fit(config, _filtered(header, config, source), source)
        return dict(load_file(str(path)))
    import warnings
    import zipfile

    try:  # the zip format is memory-mapped: a big file is not read whole before it is checked
        with warnings.catch_warnings():  # torch's notes on pickle protocols: not the user's
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True,
                             mmap=zipfile.is_zipfile(path))
    except Exception as err:  # pickle with code in it, or not a torch file at all
        raise CheckpointError(
            f"cannot read {path} with torch.load(weights_only=True): {_torch_load_reason(err)}"
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return dict(obj)


def _torch_load_reason(err: BaseException) -> str:
    """torch's refusal in one line: the unpickler's reason, not its advice to disable the check."""
    text = str(err)
    if "Weights only load failed" not in text:
        return _one_line(err)
    reason = next((ln.strip() for ln in text.splitlines()
                   if ln.strip().startswith(("Unsupported", "Trying to", "Unsupported global"))),
                  None)
    return ("it is not a plain state dict of tensors" + (f" ({reason})" if reason else "")
            + "; nothing in it was run. Save the weights as a state dict or safetensors")


def _filtered(state_dict: Mapping[str, Any], config: EncoderConfig, source: str) -> dict[str, Any]:
    """:func:`checkpoint_filter_fn` for a model of ``config`` that is not built yet."""
    from types import SimpleNamespace

    stand_in = SimpleNamespace(proj_out=None if config.proj_out else torch.nn.Identity())
    try:
        return checkpoint_filter_fn(dict(state_dict), stand_in)  # type: ignore[arg-type]
    except KeyError as err:
        raise CheckpointError(f"{source}: {err.args[0]}") from None


def _check_tensors(state_dict: Mapping[str, Any], source: str) -> None:
    """Every value a tensor, or a CheckpointError naming ``source`` and the first key that is not."""
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{source}: {key!r} holds a {type(value).__name__}, not a tensor"
            )


def load_cbramod_checkpoint(
    path_or_state_dict: str | Path | Mapping[str, Any],
    config: EncoderConfig | None = None,
    *,
    max_params: int | None = None,
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
    max_params : int, optional
        Ceiling on the parameter count (:data:`criss_cross.checkpoint.guard.DEFAULT_MAX_PARAMS`).

    The checks of :func:`criss_cross.checkpoint.guard.build_encoder` run in its order: config,
    size, the tensors' names/shapes/dtypes (from the header of a ``.safetensors``), then the
    strict load and a finiteness check.

    Returns
    -------
    CrissCrossEncoder
        In eval mode, on CPU, with the weights loaded strictly.

    Raises
    ------
    CheckpointError
        Missing / unexpected keys or shape mismatches, by name.
    """
    if not isinstance(path_or_state_dict, (str, Path, Mapping)):
        raise TypeError(
            "path_or_state_dict must be a path or a state dict, got "
            f"{type(path_or_state_dict).__name__}"
        )
    source = str(path_or_state_dict) if isinstance(path_or_state_dict, (str, Path)) else "state dict"
    cfg = validate_encoder_config(config, source)
    check_model_size(cfg, max_params, source)
    if isinstance(path_or_state_dict, (str, Path)):
        raw = _read_foreign(Path(path_or_state_dict), cfg, source)
    else:
        raw = dict(path_or_state_dict)
    state_dict = _filtered(raw, cfg, source)
    _check_tensors(state_dict, source)
    return build_encoder(cfg, state_dict, source=source, max_params=max_params)


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def _atomic_write(path: Path, data: bytes) -> None:
    from biosig_prep.util import atomic_write_bytes  # biosig-prep is heavy: only when saving

    atomic_write_bytes(path, data)


def save_checkpoint(
    model: CrissCrossEncoder,
    path: str | Path,
    extra: dict[str, Any] | None = None,
    *,
    writer: Callable[[Path, bytes], None] | None = None,
) -> tuple[Path, Path]:
    """Write ``PATH.safetensors`` (weights) and ``PATH.json`` (config + ``extra``).

    ``path`` may be given with or without the ``.safetensors`` suffix. ``extra`` must be
    JSON-serialisable (step, epoch, losses, data description...). Each file is written
    atomically (``writer``, default :func:`biosig_prep.util.atomic_write_bytes`). Returns both
    paths.
    """
    from safetensors.torch import save

    write = writer or _atomic_write
    weights, meta = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    write(weights, save(tensors, metadata={"format": FORMAT}))
    doc = {
        "format": FORMAT,
        "format_version": _FORMAT_VERSION,
        "criss_cross_version": __version__,
        "config": model.config.model_dump(mode="json"),
        "extra": extra or {},
    }
    write(meta, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return weights, meta


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The JSON document beside a checkpoint (config, extra, versions)."""
    _, meta = _paths(path)
    if not meta.is_file():
        raise FileNotFoundError(f"checkpoint config {meta} does not exist")
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{meta} cannot be read as JSON: {_one_line(err)}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{meta} is not a criss-cross checkpoint config")
    return doc


def check_config_fits(config: EncoderConfig, header: SafetensorsHeader, source: str,
                      max_params: int | None = None) -> None:
    """Refuse a config whose model would be too large or would not match the weights, before
    building it: :func:`~criss_cross.checkpoint.guard.check_model_size`, then every tensor's
    name, shape and dtype against the safetensors header
    (:func:`~criss_cross.checkpoint.guard.check_weights_fit`)."""
    check_model_size(config, max_params, source)
    check_weights_fit(config, header, source)


def load_checkpoint(path: str | Path, *, max_params: int | None = None) -> CrissCrossEncoder:
    """Load a checkpoint written by :func:`save_checkpoint` (strict, eval mode, CPU).

    Goes through :func:`criss_cross.checkpoint.guard.build_encoder`: the config is validated,
    its size checked against ``max_params``, the weights' header compared with it, and only then
    is the model built and loaded."""
    weights, meta = _paths(path)
    doc = read_checkpoint_meta(path)
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint weights {weights} do not exist")
    return build_encoder(doc.get("config"), weights, source=str(meta), max_params=max_params)
