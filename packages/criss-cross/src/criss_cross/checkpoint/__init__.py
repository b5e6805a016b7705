"""Every checkpoint format of criss-cross, and the one rule for finding a checkpoint.

- :mod:`.model`: encoder weights: the authors' CBraMod state dicts
  (:func:`load_cbramod_checkpoint`) and our own safetensors + JSON files
  (:func:`save_checkpoint` / :func:`load_checkpoint`).
- :mod:`.training`: the folders a pretraining run writes (weights, optimizer, RNG, trainer
  state), atomically.
- :mod:`.find`: :func:`find_checkpoint` (run folder, checkpoint folder or file -> weights
  file) and :func:`latest_checkpoint` (newest intact checkpoint of a run).
- :mod:`.safetensors_file`: the header check every read goes through first.
- :mod:`.guard`: :func:`build_encoder`, the one door into an encoder (config -> size ceiling
  -> weights' header against the config -> build and strict load), which every route uses.
- :mod:`.size` (parameter count, tensor shapes and the ceilings, from the config alone) and
  :mod:`.strict` (the strict load that names every key): the plain functions below
  :mod:`.guard` and :mod:`.model`, which re-export them.
"""

from criss_cross.checkpoint.find import checkpoint_problem, find_checkpoint, latest_checkpoint
from criss_cross.checkpoint.guard import (
    DEFAULT_MAX_MEMORY_GB,
    DEFAULT_MAX_PARAMS,
    ModelSizeError,
    build_encoder,
    check_model_size,
    count_parameters,
)
from criss_cross.checkpoint.model import (
    FORMAT,
    check_config_fits,
    load_cbramod_checkpoint,
    load_checkpoint,
    load_state_dict_strict,
    read_checkpoint_meta,
    save_checkpoint,
)
from criss_cross.checkpoint.safetensors_file import CheckpointError, read_header
from criss_cross.checkpoint.training import load_training_checkpoint, save_training_checkpoint
from criss_cross.encoder import checkpoint_filter_fn

__all__ = [
    "DEFAULT_MAX_MEMORY_GB",
    "DEFAULT_MAX_PARAMS",
    "FORMAT",
    "CheckpointError",
    "ModelSizeError",
    "build_encoder",
    "check_model_size",
    "count_parameters",
    "check_config_fits",
    "checkpoint_filter_fn",
    "checkpoint_problem",
    "find_checkpoint",
    "latest_checkpoint",
    "load_cbramod_checkpoint",
    "load_checkpoint",
    "load_state_dict_strict",
    "load_training_checkpoint",
    "read_checkpoint_meta",
    "read_header",
    "save_checkpoint",
    "save_training_checkpoint",
]
