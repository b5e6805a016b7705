"""Hugging Face Hub format for encoders: ``save_pretrained`` / ``from_pretrained`` / ``export_run``.

A folder in the layout the Hub uses for PyTorch models::

    config.json         {"model_type": "criss-cross-encoder", "encoder": EncoderConfig,
                         "input": channels / rates / units / window geometry, "name": ...}
    model.safetensors   the state dict, written by ``huggingface_hub.save_torch_model``; key
                        names are the authors' CBraMod names (``patch_embedding.*``,
                        ``encoder.layers.N.*``, ``proj_out.0.*``), so the file also loads
                        strictly into the authors' code and into braindecode's ``CBraMod``
    README.md           a model card (``huggingface_hub.ModelCard``): training data,
                        preprocessing, rates, metrics, provenance
    pretraining_data.json  (export_run) every pretraining record: source, id, patient id,
                        PTB-XL ecg_id; the bench's leakage guard reads it

``from_pretrained(x)`` takes a local folder or a Hub repo id. A repo id goes through
``huggingface_hub.hf_hub_download``, which honours ``HF_HUB_OFFLINE=1`` and the cache
(``HF_HUB_CACHE``); both routes end in the same strict load. ``export_run(run, out)`` (the
``criss-cross export`` command) turns a pretraining run directory into such a folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from criss_cross.checkpoint.find import resolve_checkpoint
from criss_cross.encoder import CrissCrossEncoder
from criss_cross.pretraining_data import IDENTITY_NAME, applied_notch, data_identity

__all__ = [
    "CARD_NAME",
    "CONFIG_NAME",
    "INT8_NAME",
    "MODEL_TYPE",
    "ONNX_META_NAME",
    "ONNX_NAME",
    "WEIGHTS_NAME",
    "export_run",
    "from_pretrained",
    "is_hub_folder",
    "read_hub_config",
    "render_model_card",
    "resolve_hub_files",
    "save_pretrained",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
# written from the weights by criss_cross.onnx_export.add_onnx (which takes these names from
# here): an export with overwrite removes them, so no graph outlives the weights it came from
ONNX_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
ONNX_META_NAME = "onnx.json"
MODEL_TYPE = "criss-cross-encoder"
FORMAT_VERSION = 1


def is_hub_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder with ``config.json`` and ``model.safetensors``."""
    p = Path(path)
    return (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def resolve_hub_files(
    model_id: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
    local_files_only: bool = False, token: str | bool | None = None,
) -> tuple[Path, Path]:
    """Local paths of ``config.json`` and ``model.safetensors`` of a folder or a repo id.

    A repo id (``owner/name``) is fetched with ``huggingface_hub.hf_hub_download`` (from the
    cache when ``HF_HUB_OFFLINE=1`` or ``local_files_only``).
    """
    path = Path(model_id)
    if path.is_dir():
        missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if not (path / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{path} is not a Hub-format model folder: {', '.join(missing)} missing "
                "(write one with criss_cross.save_pretrained or `criss-cross export`)"
            )
        return path / CONFIG_NAME, path / WEIGHTS_NAME
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    from criss_cross import __version__

    kw: dict[str, Any] = dict(revision=revision, cache_dir=cache_dir,
                              local_files_only=local_files_only, token=token,
                              library_name="criss-cross", library_version=__version__)
    try:
        files = [Path(hf_hub_download(str(model_id), name, **kw))
                 for name in (CONFIG_NAME, WEIGHTS_NAME)]
    except HFValidationError as err:
        raise FileNotFoundError(
            f"{model_id} is neither a local folder nor a Hub repo id ({err})"
        ) from err
    except LocalEntryNotFoundError as err:
        raise FileNotFoundError(
            f"{model_id}: not in the Hub cache and the Hub cannot be reached (offline?): {err}"
        ) from err
    except (RepositoryNotFoundError, EntryNotFoundError) as err:
        raise FileNotFoundError(
            f"{model_id} is neither a local folder nor a Hub model repo with {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}: {str(err).splitlines()[0]}"
        ) from err
    return files[0], files[1]


def read_hub_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` document of a Hub-format folder, checked: JSON, an object, our
    ``model_type``, an ``encoder`` block that is a mapping. One-line
    :class:`~criss_cross.checkpoint.CheckpointError` naming the file otherwise."""
    from criss_cross.checkpoint import CheckpointError

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{path} cannot be read as JSON: "
                              f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                              ) from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: a JSON {type(doc).__name__}, not a model config object")
    if doc.get("model_type") != MODEL_TYPE:
        raise CheckpointError(
            f"{path}: model_type is {doc.get('model_type')!r}, expected {MODEL_TYPE!r}"
        )
    if not isinstance(doc.get("encoder"), dict):
        raise CheckpointError(f"{path}: no 'encoder' object (the EncoderConfig fields); "
                              "re-export the model with `criss-cross export`")
    return doc


def from_pretrained(
    model_id: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
    local_files_only: bool = False, token: str | bool | None = None,
    max_params: int | None = None,
) -> CrissCrossEncoder:
    """Load an encoder from a Hub-format folder or a Hub repo id (strict; eval mode, CPU).

    The config's ``input`` block (channels, rates, units...) and ``name`` are kept on the
    model as ``model.hub_config``. The config is validated, the model's size checked against
    ``max_params`` and the weights' header compared with the config before anything is built
    (:func:`criss_cross.checkpoint.guard.build_encoder`, the door every route goes through).
    """
    from criss_cross.checkpoint.guard import build_encoder

    config_path, weights_path = resolve_hub_files(
        model_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
        token=token)
    doc = read_hub_config(config_path)
    model = build_encoder(doc["encoder"], weights_path, source=str(config_path),
                          max_params=max_params)
    # nn.Module's stubs type every undeclared attribute as Tensor | Module
    model.hub_config = doc  # type: ignore[assignment]
    return model.eval()


def _card_yaml(card: dict[str, Any]) -> str:
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        library_name="criss-cross",
        license=card.get("license"),
        pipeline_tag="feature-extraction",
        tags=["biosignals", card.get("modality", "ecg"), "cbramod", "criss-cross-transformer",
              "self-supervised"],
        datasets=card.get("datasets"),
    )
    return data.to_yaml().rstrip("\n") + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value, sort_keys=True) + "`"
    return str(value)


def render_model_card(config_doc: dict[str, Any], card: dict[str, Any] | None = None) -> str:
    """The README.md of a Hub folder (YAML metadata + Markdown), as text.

    ``card`` keys, all optional: ``title``, ``description``, ``training_data``,
    ``preprocessing`` (dict or text), ``metrics`` (dict), ``provenance`` (text),
    ``paper``, ``license``, ``datasets``, ``modality``.
    """
    from huggingface_hub import ModelCard

    card = dict(card or {})
    card.setdefault("modality", config_doc.get("input", {}).get("modality", "ecg"))
    enc, inp = config_doc["encoder"], config_doc.get("input") or {}
    title = card.get("title") or config_doc.get("name") or "criss-cross encoder"
    lines = [f"# {title}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    lines += [
        "A CBraMod criss-cross transformer encoder (`criss_cross.CrissCrossEncoder`). The state "
        "dict keeps the authors' key names, so `model.safetensors` also loads strictly into the "
        "official CBraMod code and braindecode's `CBraMod`.", "",
        "```python", "import criss_cross",
        'model = criss_cross.from_pretrained("THIS_FOLDER_OR_REPO_ID")',
        "emb = model.embed(x * model.config.input_scale, pool=\"all\")  # x: (B, C, P, "
        f"{enc.get('patch_size', 200)})", "```", "",
        "## Input", "",
        "| field | value |", "|---|---|",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in inp.items()]
    lines += ["", "## Architecture", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in enc.items()]
    for heading, key in (("Training data", "training_data"), ("Preprocessing", "preprocessing"),
                         ("Metrics", "metrics"), ("Provenance", "provenance"), ("Paper", "paper")):
        value = card.get(key)
        if not value:
            continue
        lines += ["", f"## {heading}", ""]
        if isinstance(value, dict):
            lines += ["| field | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in value.items()]
        else:
            lines.append(str(value))
    content = "---\n" + _card_yaml(card) + "---\n\n" + "\n".join(lines) + "\n"
    return str(ModelCard(content))


def _file_mode() -> int:
    """0o666 minus the process umask: the mode ``open()`` gives any file the user writes."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def save_pretrained(
    model: CrissCrossEncoder, save_directory: str | Path, *, name: str | None = None,
    input_spec: dict[str, Any] | None = None, card: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a Hub-format folder (config.json, model.safetensors, README.md).

    ``input_spec`` describes the expected input (see :meth:`ModelSpec.input_spec`); by default
    it is taken from ``model.hub_config`` or, failing that, only ``input_scale`` and
    ``patch_size`` are recorded. Every file is written beside its final name and renamed into
    place, so a reader never sees half a file. Returns the folder.
    """
    from huggingface_hub import save_torch_model

    from biosig_prep.util import atomic_write_json, atomic_write_text, fsync_dir
    from criss_cross import __version__

    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    previous = getattr(model, "hub_config", None) or {}
    inp = dict(input_spec or previous.get("input") or {})
    inp.setdefault("input_scale", model.config.input_scale)
    inp.setdefault("patch_size", model.config.patch_size)
    doc = {
        "model_type": MODEL_TYPE,
        "format_version": FORMAT_VERSION,
        "architecture": "CrissCrossEncoder",
        "criss_cross_version": __version__,
        "name": name or previous.get("name"),
        "encoder": model.config.model_dump(mode="json"),
        "input": inp,
    }
    with tempfile.TemporaryDirectory(dir=out, prefix=".tmp-weights-") as tmp:
        save_torch_model(model, tmp, metadata={"format": "pt", "model_type": MODEL_TYPE})
        os.chmod(Path(tmp) / WEIGHTS_NAME, _file_mode())  # a user's file, not a private temp
        os.replace(Path(tmp) / WEIGHTS_NAME, out / WEIGHTS_NAME)
    atomic_write_json(out / CONFIG_NAME, doc, sort_keys=True)
    atomic_write_text(out / CARD_NAME, render_model_card(doc, card))
    fsync_dir(out)
    return out


# ---- export of a pretraining run ------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _last_metrics(run: Path) -> dict[str, Any]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return {}
    last: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        try:
            last = json.loads(line)
        except ValueError:
            continue
    keep = ("step", "loss", "zero_mse", "loss_patch", "loss_channel", "samples_per_s")
    return {k: last[k] for k in keep if k in last}


def _store_facts(stores: list[str], streams: list[str]) -> tuple[dict[str, Any], str]:
    """Preprocessing settings and a data description from the run's stores (where readable)."""
    from biosig_prep import open_store

    prep: dict[str, Any] = {}
    described = []
    for url in stores:
        try:
            store = open_store(url)
        except Exception as err:  # noqa: BLE001 - the store may live elsewhere; say so
            described.append(f"{url} (not readable here: {str(err).splitlines()[0]})")
            continue
        cfg = store.config
        for key in ("ecg", "eeg", "rates", "n_patches", "patch_size", "leads", "eeg_channels"):
            if key in cfg and key not in prep:
                prep[key] = cfg[key]  # ecg/eeg: band-pass (l_freq, h_freq, order) and notch
        summary = store.summary
        counts = {s: len(store.stream(s)) for s in streams if s in store.stream_names}
        records = summary.get("records_ok")
        if records is None:  # a summary without the count: count the ok rows of records/
            records = int((store.records()["status"] == "ok").sum())
        described.append(f"{url}: {records} records, windows {counts}")
    return prep, "; ".join(described)


def export_run(run_dir: str | Path, out_dir: str | Path, *, name: str | None = None,
               overwrite: bool = False, max_params: int | None = None) -> Path:
    """Turn a pretraining run (its newest checkpoint) into a Hub-format folder.

    The model card records the run's stores and streams (the training data), the stores'
    preprocessing settings, the sampling rates, the final logged loss beside ``zero_mse``,
    the step and the source checkpoint. Raises FileExistsError if ``out_dir`` holds a model
    and ``overwrite`` is False; ModelSizeError (one line) for an encoder above ``max_params``
    (default :data:`criss_cross.checkpoint.size.DEFAULT_MAX_PARAMS`).
    """
    from criss_cross.checkpoint import load_checkpoint, read_checkpoint_meta

    run, out = Path(run_dir), Path(out_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory {run} does not exist")
    if is_hub_folder(out) and not overwrite:
        raise FileExistsError(f"{out} already holds a model; pass overwrite=True (--overwrite)")
    stem = resolve_checkpoint(run)
    model = load_checkpoint(stem, max_params=max_params)
    meta = read_checkpoint_meta(stem)
    run_cfg = _read_json(run / "config.json") or meta.get("extra", {}).get("pretrain") or {}
    stores, streams = list(run_cfg.get("stores") or []), list(run_cfg.get("streams") or [])
    rates = sorted({int(s.split("@")[1]) for s in streams if "@" in s})
    modality = streams[0].split("@")[0] if streams else "ecg"
    prep, data = _store_facts(stores, streams)
    metrics = _last_metrics(run)
    step = meta.get("extra", {}).get("step")
    inp = {"modality": modality, "streams": streams, "rates_hz": rates,
           "units": "mV" if modality == "ecg" else "uV",
           "input_scale": model.config.input_scale, "patch_size": model.config.patch_size,
           "n_patches": prep.get("n_patches"),
           # the stores' preprocessing, which criss_cross.stream applies at inference
           "preprocessing": prep or None}
    band = prep.get(modality) or {}
    if band.get("l_freq") is not None and band.get("h_freq") is not None:
        inp["band_pass_hz"] = [band["l_freq"], band["h_freq"]]
        inp["notch"] = str(band.get("notch"))
    if prep.get("leads" if modality == "ecg" else "eeg_channels"):
        inp["channels"] = list(prep["leads" if modality == "ecg" else "eeg_channels"])
    identity = _pretraining_identity(stores, streams)
    recipe = {k: run_cfg[k] for k in ("mask_ratio", "channel_mask_proportion", "batch_size",
                                      "lr", "seed") if k in run_cfg}
    if "notch" in inp:  # the notch the records were filtered with ("auto" resolved per source)
        inp["notch"] = _applied_notch(stores, modality, str(inp["notch"]))
    card = {
        "title": name or f"criss-cross {modality} encoder ({run.name})",
        "description": f"Pretrained with dual masking (criss-cross pretrain) for {step} steps.",
        "training_data": data or "not recorded in the run",
        "preprocessing": prep or "not readable (the run's stores are not reachable here)",
        "metrics": {**{f"final_{k}": v for k, v in metrics.items()}, **recipe},
        "provenance": f"exported by `criss-cross export` from {stem.parent} (step {step})",
        "modality": modality,
    }
    if out.exists() and overwrite:
        for n in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, ONNX_NAME, INT8_NAME, ONNX_META_NAME):
            (out / n).unlink(missing_ok=True)
    saved = save_pretrained(model, out, name=name or run.name, input_spec=inp, card=card)
    from biosig_prep.util import atomic_write_json

    if identity is not None:
        atomic_write_json(saved / IDENTITY_NAME, identity, sort_keys=True)
    else:
        (saved / IDENTITY_NAME).unlink(missing_ok=True)
    return saved


def _pretraining_identity(stores: list[str], streams: list[str]) -> dict[str, Any] | None:
    """The records the run trained on (:func:`criss_cross.pretraining_data.data_identity`), or None
    where a store cannot be read here (the bench then says leakage was not checked)."""
    try:
        return data_identity(stores, streams) if stores else None
    except Exception:  # noqa: BLE001 - an unreadable store leaves the identity unknown
        return None


def _applied_notch(stores: list[str], modality: str, setting: str) -> str:
    """The notch the run's stores applied (:func:`criss_cross.pretraining_data.applied_notch`),
    ``"50/60"`` where they differ; ``setting`` where no store says."""
    from biosig_prep import open_store

    seen: set[str] = set()
    for url in stores:
        try:
            notch = applied_notch(open_store(url), modality)[0]
        except Exception:  # noqa: BLE001 - an unreadable store leaves the setting as written
            return setting
        if notch is not None:
            seen.update(notch.split("/"))
    return "/".join(sorted(seen)) if seen else setting
