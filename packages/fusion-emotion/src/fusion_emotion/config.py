"""The fusion recipe as one pydantic model, loadable from YAML or JSON.

Defaults follow the paper (Ghallab et al., arXiv 2512.15250): Adam lr 1e-3, batch 8, 10 epochs,
StepLR(step 4, gamma 0.1), dropout 0.2, BCE, full fine-tuning of both encoders, High = rating >= 3,
subject-independent 3:1:1 splits. Everything else (separate backbone lr, frozen encoders with cached
embeddings, pooling over patches, modalities, folds, seeds) is an option.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from biosig_prep.util import atomic_write_text, read_mapping, validation_lines

__all__ = [
    "DIMENSIONS",
    "MODALITIES",
    "FUSIONS",
    "DEFAULT_SCALE",
    "FusionConfig",
    "fusion_row",
    "row_fusion",
    "format_validation_error",
    "read_mapping",
]

#: The three DREAMER rating scales, in the order of the model's output columns.
DIMENSIONS: tuple[str, ...] = ("valence", "arousal", "dominance")
#: Modalities in the order their embeddings are concatenated.
MODALITIES: tuple[str, ...] = ("eeg", "ecg")
#: Fusion strategies (:mod:`fusion_emotion.strategies`), in the order of the report's rows.
FUSIONS: tuple[str, ...] = ("concat", "late", "gated", "cross-attention", "hep")
#: Store units -> encoder input where neither the config nor the checkpoint says: CBraMod's
#: EEG weights expect µV / 100; the ECG encoder is pretrained on mV as stored.
DEFAULT_SCALE: dict[str, float] = {"eeg": 0.01, "ecg": 1.0}


def fusion_row(strategy: str) -> str:
    """The row name of a fusion strategy: "fusion" for concat (the paper's), else "fusion-NAME"."""
    return "fusion" if strategy == "concat" else f"fusion-{strategy}"


def row_fusion(row: str) -> str | None:
    """The strategy of a fusion row, None for a single-modality or baseline row."""
    if row == "fusion":
        return "concat"
    return row[len("fusion-"):] if row.startswith("fusion-") else None


def _default_modalities() -> list[Literal["eeg", "ecg"]]:
    return ["eeg", "ecg"]


def _default_fusion() -> list[Literal["concat", "late", "gated", "cross-attention", "hep"]]:
    return ["concat"]


class FusionConfig(BaseModel):
    """Everything that decides a fusion run (weights paths are given to ``train`` separately).

    Modalities and rows
        ``modalities`` picks the encoders of the main model ("fusion" when both). With both,
        ``ablations`` also trains the EEG-only and ECG-only models in the same run, and
        ``baselines`` adds the majority-class and per-clip-majority rows.
    Input scaling
        The store holds physical units (EEG µV, ECG mV); an encoder sees ``x * scale``. With
        ``eeg_scale`` / ``ecg_scale`` left at None the scale is the ``input_scale`` of our own
        checkpoint's config, or else the modality's default (:data:`DEFAULT_SCALE`: EEG 0.01,
        CBraMod's µV/100; ECG 1.0, mV as pretrained). A number overrides both.
    Fusion
        ``fusion`` names the strategies of the fusion rows (:data:`FUSIONS`; "all" = every one,
        each its own row beside the single-modality rows and the baselines). Rows: "fusion"
        (concat) and "fusion-late", "fusion-gated", "fusion-cross-attention", "fusion-hep" (EEG
        averaged around the ECG's R peaks: sub-second timing, :mod:`fusion_emotion.hep`).
    Encoders
        ``freeze_encoders=False`` (paper) fine-tunes both encoders with the heads
        (``backbone_lr`` defaults to ``lr``). ``freeze_encoders=True`` embeds every window once
        per encoder, caches the embeddings in the run folder and trains only the heads: the
        CPU-friendly mode. ``eeg_encoder`` / ``ecg_encoder`` are :class:`criss_cross.EncoderConfig`
        fields used only when no weights are given (random init, ``init_seed``). ``precision``
        "bf16" also autocasts on the CPU (the frozen mode's embedding runs ~1.5x faster on CPUs
        with AVX512-BF16, at ~1 % relative error in the embeddings).
    Evaluation
        ``folds`` rotations of a subject-independent split, or ``"loso"`` (leave one subject
        out; see :mod:`fusion_emotion.splits`), repeated for every seed in ``seeds``; best epoch by validation loss or validation AUC.
    """

    model_config = ConfigDict(extra="forbid")

    # data
    eeg_stream: str = "eeg@200"
    ecg_stream: str = "ecg@200"
    eeg_scale: float | None = Field(None, gt=0, description="EEG µV -> model input")
    ecg_scale: float | None = Field(None, gt=0, description="ECG mV -> model input")
    threshold: int = Field(3, description="High = rating >= threshold")

    # model
    modalities: list[Literal["eeg", "ecg"]] = Field(default_factory=_default_modalities)
    pool: Literal["flatten", "mean"] = "flatten"
    fusion: list[Literal["concat", "late", "gated", "cross-attention", "hep"]] = Field(
        default_factory=_default_fusion, description='strategies, or "all"'
    )
    head_hidden: int = Field(200, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    max_params: int | None = Field(
        None, ge=1, description="ceiling on the parameters of each encoder and of the heads "
        "(default criss_cross.checkpoint.DEFAULT_MAX_PARAMS, 1e9)")
    eeg_encoder: dict[str, Any] = Field(default_factory=dict)
    ecg_encoder: dict[str, Any] = Field(default_factory=dict)
    init_seed: int = 0

    # recipe
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    backbone_lr: float | None = Field(None, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    step_size: int = Field(4, ge=1)
    gamma: float = Field(0.1, gt=0)
    freeze_encoders: bool = False
    select_by: Literal["loss", "auc"] = "loss"

    # protocol
    folds: int | Literal["loso"] = Field(5, description='subject folds (>= 3) or "loso"')
    level: Literal["window", "clip", "both"] = Field(
        "both", description="report metrics per window, per clip (mean of its windows' probabilities) or both"
    )
    seeds: list[int] = Field(default_factory=lambda: [0])
    ablations: bool = True
    baselines: bool = True
    modality_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="fusion rows: chance a training window loses one modality (masked)"
    )

    # execution
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="encoders: auto = bf16 autocast on CUDA, fp32 on CPU"
    )
    eval_batch_size: int = Field(64, ge=1)
    embed_batch_size: int = Field(32, ge=1)
    save_encoders: bool = False
    jobs: int | None = Field(None, ge=1, description="frozen mode: heads trained side by side")

    @field_validator("eeg_encoder", "ecg_encoder")
    @classmethod
    def _encoder_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        from criss_cross.checkpoint import CheckpointError
        from criss_cross.checkpoint.guard import validate_encoder_config

        try:
            validate_encoder_config({**value, "proj_out": False}, "encoder")
        except CheckpointError as err:
            raise ValueError(str(err).removeprefix("encoder: ")) from None
        return value

    @model_validator(mode="after")
    def _model_size(self) -> FusionConfig:
        """Refuse encoders or heads above ``max_params`` before anything is built."""
        from criss_cross.checkpoint import DEFAULT_MAX_PARAMS, check_model_size
        from criss_cross.config import EncoderConfig

        dims = 0
        for modality in self.modalities:
            cfg = EncoderConfig(**{**self.encoder_overrides(modality), "proj_out": False})
            check_model_size(cfg, self.max_params, f"{modality}_encoder")
            dims += cfg.d_model
        # each of the three heads: Linear(in, hidden) -> Linear(hidden, 1) at least, with
        # ``in`` at least the pooled width of one patch of every modality
        heads = 3 * (dims * self.head_hidden + 2 * self.head_hidden + 1)
        limit = DEFAULT_MAX_PARAMS if self.max_params is None else self.max_params
        if heads > limit:
            raise ValueError(
                f"head_hidden {self.head_hidden} gives heads of at least {heads:.3g} parameters, "
                f"above the ceiling of {limit:.3g}; lower head_hidden or raise max_params "
                "(--max-params)")
        return self

    @field_validator("modalities")
    @classmethod
    def _modalities(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one modality is needed (eeg, ecg or both)")
        if len(set(value)) != len(value):
            raise ValueError(f"modalities repeat: {value}")
        return [m for m in MODALITIES if m in value]  # canonical order: eeg then ecg

    @field_validator("fusion", mode="before")
    @classmethod
    def _fusion_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and "all" in value:
            return list(FUSIONS)
        return value

    @field_validator("fusion")
    @classmethod
    def _fusion(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one fusion strategy is needed")
        return [f for f in FUSIONS if f in value]  # canonical order, no repeats

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("at least one seed is needed")
        if len(set(value)) != len(value):
            raise ValueError(f"seeds repeat: {value}")
        return value

    @field_validator("folds", mode="before")
    @classmethod
    def _folds(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "loso":
            return "loso"
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value < 3:
            raise ValueError(f'folds ({value}) must be at least 3 (train, validation, test) or "loso"')
        return value

    @model_validator(mode="after")
    def _threshold(self) -> FusionConfig:
        if not 2 <= self.threshold <= 5:
            raise ValueError(f"threshold ({self.threshold}) must be in 2..5 for ratings 1..5")
        return self

    # ---- derived ---------------------------------------------------------------------------
    @property
    def variants(self) -> list[str]:
        """The model rows this config trains: the fusion rows (one per strategy), then "eeg",
        "ecg" (single-modality rows always use concat: there is nothing to fuse)."""
        if len(self.modalities) == 1:
            return list(self.modalities)
        fused = [fusion_row(f) for f in self.fusion]
        return [*fused, "eeg", "ecg"] if self.ablations else fused

    def variant_modalities(self, variant: str) -> list[str]:
        return list(self.modalities) if row_fusion(variant) else [variant]

    def variant_fusion(self, variant: str) -> str:
        return row_fusion(variant) or "concat"

    def autocast(self, device_type: str) -> bool:
        """Whether the encoders run under bf16 autocast on a device of this type."""
        return self.precision == "bf16" or (self.precision == "auto" and device_type == "cuda")

    def stream(self, modality: str) -> str:
        return {"eeg": self.eeg_stream, "ecg": self.ecg_stream}[modality]

    def scale(self, modality: str) -> float | None:
        """The explicit input scale of ``modality``, or None (decided by the encoder)."""
        return {"eeg": self.eeg_scale, "ecg": self.ecg_scale}[modality]

    def encoder_overrides(self, modality: str) -> dict[str, Any]:
        return {"eeg": self.eeg_encoder, "ecg": self.ecg_encoder}[modality]

    # ---- files -----------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> FusionConfig:
        """Read a YAML (``.yaml``/``.yml``) or JSON file; unknown keys are an error."""
        return cls.model_validate(read_mapping(path))

    def to_file(self, path: str | Path) -> None:
        path = Path(path)
        data = self.model_dump(mode="json")
        if path.suffix in (".yaml", ".yml"):
            atomic_write_text(path, yaml.safe_dump(data, sort_keys=False), durable=False)
        else:
            atomic_write_text(path, json.dumps(data, indent=2) + "\n", durable=False)


def format_validation_error(err: Exception) -> str:
    """A pydantic ``ValidationError`` as ``loc: msg`` lines (:func:`biosig_prep.util.validation_lines`)."""
    return "\n".join(validation_lines(err))
