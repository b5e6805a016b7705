"""Build the EEG and ECG encoders from weights files, and embed windows with a frozen encoder.

Weights, recognised by the file:

- ``*.pth`` / ``*.pt`` / ``*.bin`` / ``*.ckpt``: the authors' CBraMod state dict (e.g.
  ``pretrained_weights.pth``), through :func:`criss_cross.load_cbramod_checkpoint` (strict,
  ``torch.load(weights_only=True)``).
- ``NAME.safetensors`` with its ``NAME.json`` (or ``NAME`` alone): our own checkpoint written by
  :func:`criss_cross.save_checkpoint`, through :func:`criss_cross.load_checkpoint`. A
  ``.safetensors`` without our JSON is read as official CBraMod tensors.
- A Hugging Face Hub-format folder (``config.json`` + ``model.safetensors``, written by
  ``criss-cross export`` / :func:`criss_cross.save_pretrained`), or its ``model.safetensors``:
  through :func:`criss_cross.from_pretrained` (architecture and ``input_scale`` from its config).
- A directory, e.g. a ``criss-cross pretrain`` run folder: the checkpoint its
  ``checkpoints/latest`` names, else the newest checkpoint found inside.
- None: a randomly initialised encoder (seeded by ``init_seed``), with a loud warning that also
  goes into the report: its numbers say nothing about pretrained features.

Input scaling: see :class:`fusion_emotion.config.FusionConfig` (explicit value, else our
checkpoint's ``input_scale``, else EEG 0.01 = CBraMod's µV/100, ECG 1.0 = mV).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biosig_prep.util import file_sha256, sha256_json
from fusion_emotion.config import DEFAULT_SCALE, FusionConfig
from fusion_emotion.pooling import pool_channels

__all__ = ["LoadedEncoder", "load_encoder", "resolve_weights", "embed_windows", "file_sha256"]


_CBRAMOD_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


@dataclass
class LoadedEncoder:
    """An encoder and where it came from.

    source : "cbramod" (official ``.pth``), "checkpoint" (ours), "hub" (a Hub-format folder) or
        "random-init".
    fingerprint : sha256 of the weights file, or a description of the random init; the frozen
        mode's embedding cache is keyed by it.
    """

    modality: str
    model: nn.Module
    source: str
    path: str | None
    fingerprint: str
    input_scale: float
    config: dict[str, Any]
    warning: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def d_model(self) -> int:
        return int(self.config["d_model"])

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary for metrics.json and the report."""
        return {
            "modality": self.modality,
            "source": self.source,
            "path": self.path,
            "fingerprint": self.fingerprint,
            "input_scale": self.input_scale,
            "config": self.config,
            "warning": self.warning,
        }


def _is_own_checkpoint(weights: Path) -> bool:
    """A ``NAME.safetensors`` with the ``NAME.json`` that :func:`criss_cross.save_checkpoint` writes."""
    meta = weights.with_suffix(".json")
    if not (weights.is_file() and meta.is_file()):
        return False
    try:
        return json.loads(meta.read_text()).get("format") == "criss-cross-checkpoint"
    except ValueError:
        return False


def _checkpoint_in_dir(folder: Path) -> Path:
    """The newest encoder checkpoint of a folder (e.g. a ``criss-cross pretrain`` run)."""
    for ckdir in (folder / "checkpoints", folder):
        pointer = ckdir / "latest"  # written by criss-cross pretrain: {"checkpoint": "step_N"}
        if pointer.is_file():
            try:
                name = json.loads(pointer.read_text())["checkpoint"]
            except (ValueError, KeyError, TypeError):
                continue
            if _is_own_checkpoint(ckdir / name / "model.safetensors"):
                return ckdir / name / "model.safetensors"
    found = [q for q in folder.rglob("*.safetensors") if _is_own_checkpoint(q)]
    if found:
        return max(found, key=lambda q: (str(q.parent), q.stat().st_mtime))
    raise FileNotFoundError(
        f"no encoder checkpoint in directory {folder} (looked for checkpoints/latest and "
        "NAME.safetensors + NAME.json); pass the checkpoint file itself"
    )


def _is_hub_model(folder: Path) -> bool:
    """A criss-cross Hub-format folder: ``config.json`` of our ``model_type`` beside a
    ``model.safetensors`` that is not our own checkpoint (which has its ``model.json``)."""
    from criss_cross.hub import CONFIG_NAME, MODEL_TYPE, WEIGHTS_NAME

    config, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not (config.is_file() and weights.is_file()) or _is_own_checkpoint(weights):
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == MODEL_TYPE
    except (ValueError, OSError, AttributeError):
        return False


def resolve_weights(path: str | Path) -> tuple[str, Path]:
    """(kind, file) for a weights path: kind "cbramod", "hub" or "checkpoint" (see the module
    docstring)."""
    p = Path(path)
    if p.is_dir() and _is_hub_model(p):
        return "hub", p / "model.safetensors"
    if p.name == "model.safetensors" and p.is_file() and _is_hub_model(p.parent):
        return "hub", p  # without this it would be read as CBraMod's tensors at default size
    if p.is_dir():
        return "checkpoint", _checkpoint_in_dir(p)
    if p.suffix in _CBRAMOD_SUFFIXES:
        if not p.is_file():
            raise FileNotFoundError(f"weights file {p} does not exist")
        return "cbramod", p
    st = p.with_suffix(".safetensors") if p.suffix in (".safetensors", ".json") else p.with_name(p.name + ".safetensors")
    if _is_own_checkpoint(st):
        return "checkpoint", st
    if p.suffix == ".safetensors" and p.is_file():
        return "cbramod", p  # tensors without our JSON: the official key names, like a .pth
    raise FileNotFoundError(
        f"weights {p} not found: expected an official CBraMod state dict "
        f"({', '.join(_CBRAMOD_SUFFIXES)}), a criss-cross checkpoint (NAME.safetensors + "
        "NAME.json), a Hub-format folder (criss-cross export) or a folder holding one"
    )


def random_init_warning(modality: str) -> str:
    return (
        f"{modality.upper()} encoder has NO pretrained weights: randomly initialised "
        f"(pass --{modality}-weights). Its rows measure an untrained encoder, not the method."
    )


def load_encoder(modality: str, weights: str | Path | None, config: FusionConfig) -> LoadedEncoder:
    """The encoder of ``modality`` ("eeg" or "ecg") from ``weights`` (or random init)."""
    import criss_cross
    from criss_cross.checkpoint.guard import build_encoder, validate_encoder_config

    explicit = config.scale(modality)
    if weights is None:
        overrides = dict(config.encoder_overrides(modality))
        scale = explicit or overrides.pop("input_scale", None) or DEFAULT_SCALE[modality]
        enc_cfg = validate_encoder_config({**overrides, "proj_out": False, "input_scale": scale},
                                          f"{modality}_encoder")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.init_seed + (0 if modality == "eeg" else 1))
            model = build_encoder(enc_cfg, source=f"{modality}_encoder",
                                  max_params=config.max_params)
        cfg = enc_cfg.model_dump(mode="json")
        fingerprint = "random-init:" + sha256_json({"config": cfg, "seed": config.init_seed, "modality": modality})
        return LoadedEncoder(
            modality, model, "random-init", None, fingerprint, float(scale), cfg, random_init_warning(modality)
        )

    kind, file = resolve_weights(weights)
    if kind == "cbramod":
        # the official state dict carries no config: CBraMod's size, the modality's scale
        scale = explicit or DEFAULT_SCALE[modality]
        enc_cfg = criss_cross.EncoderConfig(proj_out=False, input_scale=scale)
        model = criss_cross.load_cbramod_checkpoint(str(file), enc_cfg,
                                                    max_params=config.max_params)
    else:
        model = (criss_cross.from_pretrained(file.parent, max_params=config.max_params)
                 if kind == "hub" else criss_cross.load_checkpoint(file, max_params=config.max_params))
        declared = ((getattr(model, "hub_config", None) or {}).get("input") or {}).get("modality")
        if declared and declared != modality:
            raise ValueError(f"{weights}: the model card declares a {declared.upper()} encoder, "
                             f"given as the {modality.upper()} encoder; swap --eeg-weights and "
                             "--ecg-weights")
        scale = explicit or model.config.input_scale
        # the reconstruction head is not used here; keep the config truthful about the scale
        model.reset_head(None)
        model.config = model.config.model_copy(update={"proj_out": False, "input_scale": float(scale)})
    cfg = model.config.model_dump(mode="json")
    return LoadedEncoder(modality, model, kind, str(file), file_sha256(file), float(scale), cfg)


@torch.inference_mode()
def embed_windows(
    encoder: nn.Module,
    chunks: Iterator[tuple[np.ndarray, np.ndarray | None]],
    n_windows: int,
    *,
    scale: float,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Channel-pooled embeddings (N, P, D) float32 of every window, each window embedded once.

    chunks : yields (windows (n, C, P, S) float32 in store units, channel_mask (n, C) bool or
        None) in order; their lengths must add up to ``n_windows``.
    bf16 : autocast the encoder to bfloat16 (on ``device``); the embeddings are stored float32.
    """
    was_training = encoder.training
    encoder.eval()
    out: np.ndarray | None = None
    pos = 0
    try:
        for windows, mask in chunks:
            for i in range(0, len(windows), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(windows[i : i + batch_size])).to(device)
                x = x * scale
                m = None if mask is None else torch.from_numpy(np.asarray(mask[i : i + batch_size])).to(device)
                with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
                    z = encoder.forward_features(x)
                z = pool_channels(z.float(), m).cpu().numpy()
                if out is None:
                    out = np.empty((n_windows, *z.shape[1:]), dtype=np.float32)
                out[pos : pos + len(z)] = z
                pos += len(z)
                if on_batch is not None:
                    on_batch(len(z))
    finally:
        encoder.train(was_training)
    if pos != n_windows:
        raise ValueError(f"embedded {pos} windows, expected {n_windows}")
    assert out is not None
    return out
