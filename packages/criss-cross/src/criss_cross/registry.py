"""Named encoders: ``list_models()`` and ``create_model(name, pretrained=None, **overrides)``.

A small registry in the manner of timm's: each entry is a :class:`ModelSpec` holding the
:class:`EncoderConfig`, the input the weights expect (modality, channels, sampling rates,
units, window geometry) and where weights come from, if any exist.

>>> import criss_cross
>>> criss_cross.list_models()
['cbramod', 'ecg-base', 'ecg-small']
>>> model = criss_cross.create_model("ecg-small")                      # random init
>>> model = criss_cross.create_model("cbramod", pretrained="pretrained_weights.pth")
>>> model = criss_cross.create_model("ecg-base", pretrained="runs/ecg-export")  # Hub folder

``pretrained`` may be a Hub-format folder or repo id (:func:`criss_cross.hub.from_pretrained`'s
layout), a pretraining run directory or checkpoint, or a foreign ``.pth``/``.pt``/
``.safetensors`` file with the authors' key names. Every route ends in the same strict load
(:func:`criss_cross.checkpoint.load_cbramod_checkpoint`): a missing, unexpected or misshapen
key is an error that names it, never a silently half-loaded model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from criss_cross.checkpoint.find import resolve_checkpoint
from criss_cross.config import EncoderConfig
from criss_cross.encoder import CrissCrossEncoder

__all__ = ["ModelSpec", "MODELS", "create_model", "get_model_spec", "list_models"]

#: The clinical 12-lead order biosig-prep writes ECG streams in.
ECG_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_CBRAMOD_REPO = "https://github.com/wjq-learning/CBraMod"


@dataclass(frozen=True)
class ModelSpec:
    """One named encoder: its configuration, the input it expects, its weights' provenance.

    Parameters
    ----------
    name : str
        Registry name (``create_model(name)``).
    description : str
        One line a person reads in ``list_models(verbose=True)`` and the docs.
    config : dict
        :class:`EncoderConfig` fields; ``create_model``'s overrides are applied on top.
    modality : str
        ``"ecg"`` or ``"eeg"``: the store streams it reads (``ecg@500``...).
    channels : tuple of str or None
        Channel names in the order the weights expect; None where any montage works
        (the criss-cross attention takes any channel count).
    rates : tuple of int
        Sampling rates (Hz) the weights were trained on; a patch of ``patch_size`` samples
        lasts ``patch_size / rate`` seconds.
    units : str
        Physical units of the store (``mV``, ``uV``); the model multiplies by
        ``config["input_scale"]``.
    n_patches : int
        Patches per window in training (any count works at inference).
    weights : str
        Where weights come from, in words (paper, repository, file, licence) or how to make
        them.
    weights_source : str or None
        What ``create_model(name, pretrained=True)`` loads (a Hub repo id or a URL of the
        file to download); None where no weights are published.
    paper : str
        The reference to cite.
    """

    name: str
    description: str
    config: dict[str, Any]
    modality: str
    channels: tuple[str, ...] | None
    rates: tuple[int, ...]
    units: str
    n_patches: int
    weights: str
    weights_source: str | None = None
    paper: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig.model_validate(self.config)

    @property
    def patch_size(self) -> int:
        return self.encoder_config.patch_size

    def input_spec(self) -> dict[str, Any]:
        """The expected input as a JSON-able dict (written into exported ``config.json``)."""
        return {
            "modality": self.modality,
            "channels": list(self.channels) if self.channels is not None else None,
            "n_chans": len(self.channels) if self.channels is not None else None,
            "rates_hz": list(self.rates),
            "units": self.units,
            "input_scale": self.encoder_config.input_scale,
            "n_patches": self.n_patches,
            "patch_size": self.patch_size,
        }

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input"] = self.input_spec()
        return out


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="cbramod",
            description="CBraMod, the authors' EEG encoder: 12 layers, 8 heads, d_model 200; "
            "input in uV scaled by 0.01 as in their pretraining",
            config={"input_scale": 0.01},
            modality="eeg",
            channels=None,
            rates=(200,),
            units="uV",
            n_patches=30,
            weights="official CBraMod weights (pretrained_weights/pretrained_weights.pth in "
            f"{_CBRAMOD_REPO}, MIT), pretrained on the TUH EEG corpus (TUEG) at 200 Hz, "
            "0.3-75 Hz band-pass, 60 Hz notch, 30 s windows of 1 s patches; download the file "
            "and pass its path as pretrained= (the authors also host it on the Hub as weighting666/CBraMod, braindecode as braindecode/cbramod-pretrained)",
            weights_source=None,
            paper="Wang et al., CBraMod: A Criss-Cross Brain Foundation Model for EEG "
            "Decoding, ICLR 2025, arXiv 2412.07236",
            extra={"band_pass_hz": [0.3, 75.0], "notch": "60"},
        ),
        ModelSpec(
            name="ecg-base",
            description="the paper's ECG encoder: CBraMod's architecture (12 layers) pretrained "
            "on 12-lead ECG with dual masking; input in mV",
            config={},
            modality="ecg",
            channels=ECG_LEADS,
            rates=(100, 200, 500, 1000),
            units="mV",
            n_patches=10,
            weights="none published; make them with `criss-cross pretrain --store challenge.zarr "
            "--stream ecg@100 --stream ecg@200 --stream ecg@500 --stream ecg@1000 --out RUN` on "
            "the PhysioNet/CinC Challenge 2021 corpus, then `criss-cross export RUN OUT`",
            paper="Ghallab et al., Leveraging Foundational Models and Simple Fusion for "
            "Multi-modal Physiological Signal Analysis, arXiv 2512.15250",
            extra={"band_pass_hz": [0.5, 40.0], "notch": "auto"},
        ),
        ModelSpec(
            name="ecg-small",
            description="the demo's small ECG encoder (`criss-cross pretrain --small`): 2 layers "
            "of CBraMod's width (d_model 200, 8 heads); input in mV",
            config={"n_layers": 2},
            modality="ecg",
            channels=ECG_LEADS,
            rates=(100, 200, 500, 1000),
            units="mV",
            n_patches=10,
            weights="none published; `make demo` pretrains one (demo-out/pretrain), "
            "`criss-cross export demo-out/pretrain OUT` turns it into a Hub folder",
            paper="Ghallab et al., arXiv 2512.15250 (architecture reduced for CPUs)",
            extra={"band_pass_hz": [0.5, 40.0], "notch": "auto"},
        ),
    )
}


def list_models(verbose: bool = False) -> list[str] | list[dict[str, Any]]:
    """Registry names, sorted; with ``verbose=True`` each spec as a dict."""
    names = sorted(MODELS)
    return [MODELS[n].as_dict() for n in names] if verbose else names


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; an unknown name lists the known ones."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def _weights_file(source: str | Path) -> Path:
    """The weights file at ``source`` (read by ``load_cbramod_checkpoint``, header first): a
    file, a run/checkpoint directory's newest model, a Hub folder's or repo id's
    ``model.safetensors``."""
    from criss_cross.hub import WEIGHTS_NAME, is_hub_folder, resolve_hub_files

    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        if is_hub_folder(path):
            return path / WEIGHTS_NAME
        return resolve_checkpoint(path).with_suffix(".safetensors")
    if path.suffix in (".pth", ".pt", ".safetensors", ".bin") or path.is_absolute():
        raise FileNotFoundError(f"pretrained weights {source} do not exist")
    _, weights = resolve_hub_files(str(source))  # a repo id: the Hub's download (or cache)
    return weights


def create_model(
    name: str, pretrained: bool | str | Path | None = None, *, max_params: int | None = None,
    **overrides: Any
) -> CrissCrossEncoder:
    """Build the registry's encoder ``name``, optionally with weights, strictly loaded.

    Parameters
    ----------
    name : str
        A name of :func:`list_models`.
    pretrained : None | False | True | str | Path
        None/False: random initialisation (train mode). True: the spec's published
        ``weights_source`` (an error naming the alternatives where none is published).
        A path or repo id: weights from a Hub folder / repo id, a pretraining run or
        checkpoint directory, or a ``.pth``/``.pt``/``.safetensors`` file with the authors'
        key names (``module.`` prefixes and ``{"model": ...}`` wrappers are handled).
    **overrides
        :class:`EncoderConfig` fields replacing the spec's (``proj_out=False`` drops the
        reconstruction head, also from loaded weights; ``dropout=0.0``...). Architecture
        fields must match the weights, or the strict load names the mismatch.
    max_params : int, optional
        Ceiling on the parameter count (default
        :data:`criss_cross.checkpoint.guard.DEFAULT_MAX_PARAMS`); a larger config is refused
        before anything is allocated.

    Returns
    -------
    CrissCrossEncoder
        With weights: in eval mode, on CPU.
    """
    from criss_cross.checkpoint.guard import (
        build_encoder,
        check_model_size,
        validate_encoder_config,
    )

    spec = get_model_spec(name)
    config = validate_encoder_config({**spec.config, **overrides}, f"model {name!r}")
    check_model_size(config, max_params, f"model {name!r}")
    if pretrained is None or pretrained is False:
        return build_encoder(config, max_params=max_params)
    if pretrained is True:
        if spec.weights_source is None:
            raise ValueError(
                f"model {name!r} has no published weights ({spec.weights}); pass pretrained= "
                "a Hub folder or repo id, a run directory, or a .pth/.safetensors file"
            )
        pretrained = spec.weights_source
    from criss_cross.checkpoint import load_cbramod_checkpoint

    return load_cbramod_checkpoint(_weights_file(pretrained), config, max_params=max_params)
