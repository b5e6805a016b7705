"""Configuration of criss-cross: the encoder, a pretraining run, and the presets.

:class:`EncoderConfig` and :class:`PretrainConfig` are pydantic models, so they round-trip
through JSON (an EncoderConfig is stored beside every checkpoint written by
:func:`criss_cross.save_checkpoint`, a PretrainConfig in every run folder) and load from the
YAML/JSON files of ``--config`` (:meth:`PretrainConfig.from_file`, through
:func:`biosig_prep.util.read_mapping`: ``yaml.safe_load``, one-line errors). The encoder
defaults are CBraMod's: 12 layers, 8 heads, d_model 200, feed-forward 800, patches of 200
samples. :data:`SMALL_PRESET` is the CPU demo (``--small``); :func:`apply_preset` lays a preset
under explicit values. :class:`EncoderConfig` is defined in :mod:`criss_cross.encoder_config`
(below everything that builds or sizes an encoder) and importable from here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from criss_cross.checkpoint.size import check_model_size
from criss_cross.encoder_config import EncoderConfig

__all__ = ["EncoderConfig", "PretrainConfig", "RESUMABLE_CHANGES", "SMALL_PRESET",
           "apply_preset"]


# --------------------------------------------------------------------------------------------
# Pretraining
# --------------------------------------------------------------------------------------------

# Fields that may change when a run is resumed; the others fix the data order and the model.
RESUMABLE_CHANGES = frozenset(
    {"steps", "epochs", "checkpoint_every", "keep_checkpoints", "log_every", "prefetch_factor",
     "device", "threads", "loader_workers", "max_params", "max_memory_gb"}
)

# ``--small``: what changes for a CPU demo. d_model/heads/patch stay CBraMod's, so the layer
# structure (criss-cross attention, patch embedding, positional conv) is the real one.
SMALL_PRESET: dict[str, Any] = {
    "encoder": {"n_layers": 2},
    "batch_size": 32,
    "steps": 300,
    "warmup_steps": 20,
    "checkpoint_every": 100,
    "log_every": 10,
}


class PretrainConfig(BaseModel):
    """Everything a pretraining run needs; loads from YAML/JSON (:meth:`from_file`).

    ``batch_size`` is the global batch over all DDP ranks. ``steps`` (optimizer steps) wins
    over ``epochs`` (passes over all windows of all streams, rounded up to whole batches).
    ``warmup_steps`` None means 5 % of the steps. ``mask_ratio`` is r (Bernoulli per patch),
    ``channel_mask_proportion`` r_c (round(r_c * C) whole channels per window).
    ``num_workers`` readers (threads, or processes with ``loader_workers="process"``) read
    ahead of the training step; the data order depends on their number, not on their kind.
    ``threads`` sets torch's intra-op CPU threads for the run (None: torch's default); on a
    shared CPU, fewer threads than cores avoids OpenMP oversubscription, which can cost 10x.
    ``head_init`` is the initialisation of the reconstruction head ``proj_out`` of a fresh run:
    "zero" (default; the run starts at the zero predictor's loss, see
    :mod:`criss_cross.pretrain`) or "cbramod" (kaiming-normal fan_out, as every other Linear).
    ``max_params`` / ``max_memory_gb`` raise the ceilings on the encoder's parameter count and
    on the estimated memory of a training step (:mod:`criss_cross.checkpoint.guard`; defaults
    1e9 parameters and 64 GiB); a config above them is refused before anything is built.
    """

    model_config = ConfigDict(extra="forbid")

    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    stores: list[str] = Field(default_factory=list)
    streams: list[str] = Field(default_factory=lambda: ["ecg@500"])
    steps: int | None = Field(None, ge=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(5e-4, gt=0)
    min_lr: float = Field(1e-5, ge=0)
    warmup_steps: int | None = Field(None, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = Field(1.0, gt=0)
    mask_ratio: float = Field(0.5, ge=0, le=1)
    channel_mask_proportion: float = Field(0.25, ge=0, le=1)
    seed: int = Field(0, ge=0)
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    num_workers: int = Field(2, ge=0)
    loader_workers: Literal["thread", "process"] = "thread"
    prefetch_factor: int = Field(4, ge=1)
    shuffle_windows: int = Field(1024, ge=1)
    mix_streams: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True
    threads: int | None = Field(None, ge=1)
    head_init: Literal["zero", "cbramod"] = "zero"
    max_params: int | None = Field(None, ge=1)
    max_memory_gb: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> PretrainConfig:
        check_model_size(self.encoder, self.max_params, "encoder")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if not self.streams:
            raise ValueError("streams must name at least one stream, e.g. ecg@500")
        for s in self.streams:
            mod, _, fs = s.partition("@")
            if not mod or not fs.isdigit():
                raise ValueError(f"stream {s!r} is not of the form MODALITY@RATE, e.g. ecg@500")
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> PretrainConfig:
        """Read a YAML (.yaml/.yml) or JSON file (:func:`biosig_prep.util.read_mapping`)."""
        from biosig_prep.util import read_mapping

        return cls.model_validate(read_mapping(path))

    def total_steps(self, total_windows: int) -> int:
        """``steps``, or ``epochs`` passes over ``total_windows`` in whole global batches."""
        if self.steps is not None:
            return self.steps
        return self.epochs * max(1, math.ceil(total_windows / self.batch_size))

    def warmup(self, total_steps: int) -> int:
        if self.warmup_steps is not None:
            return min(self.warmup_steps, total_steps)
        return max(1, round(0.05 * total_steps))


def apply_preset(data: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """``preset`` under ``data``: explicit values win, nested dicts merge."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in preset.items()}
    for k, v in data.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    return merged
