"""Guards that run before anything is embedded or trained: leakage and preprocessing.

**Leakage.** An encoder's pretraining data has an *identity*: for every record of every store
it was trained on, ``[source, record id, patient id or None, PTB-XL ecg_id or None]``
(:func:`data_identity`, from :mod:`criss_cross.pretraining_data`; ``criss-cross export``
writes it as ``pretraining_data.json`` into the Hub folder, a run folder names its stores in
``config.json``). :func:`find_overlap`
matches test records against it by record id (same source), by patient (same source, where
the metadata has ``patient_id``) and by PTB-XL ``ecg_id`` across datasets (a Challenge
``HR00001`` record *is* PTB-XL ``ecg_id`` 1; the id comes from the metadata's
``ptbxl_ecg_id``/``ecg_id`` or from the ``HR#####`` name).

**Preprocessing.** :func:`declared_input` is what an encoder says it takes (modality, sampling
rates, units, band-pass, notch, lead order, ``input_scale``: from a Hub ``config.json``'s
``input`` block, a run's training stores, or the registry spec); :func:`store_input` is what a
store's stream holds; :func:`preprocessing_mismatches` compares the fields both sides state and
returns one line per mismatch naming both values.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from criss_cross.pretraining_data import (
    IDENTITY_NAME,
    _notch_text,
    applied_notch,
    data_identity,
    record_keys,
)

__all__ = ["IDENTITY_NAME", "applied_notch", "check_stream_input", "data_identity", "declared_input", "find_overlap",
           "identity_of_weights", "preprocessing_mismatches", "record_keys", "store_input"]

def identity_of_weights(weights: str | None) -> tuple[dict[str, Any] | None, str]:
    """The pretraining identity of ``weights`` and where it came from.

    None (random init): an empty identity. A Hub folder: its ``pretraining_data.json``. A run
    directory (or a checkpoint inside one): the stores in the run's ``config.json``. Anything
    else (a ``.pth``, a repo id without the file): ``(None, reason)``, i.e. unknown.
    """
    if weights is None:
        return {"schema": 1, "stores": []}, "random init (saw no data)"
    path = Path(weights)
    if path.is_dir() and (path / IDENTITY_NAME).is_file():
        return json.loads((path / IDENTITY_NAME).read_text()), f"{path / IDENTITY_NAME}"
    for run in (path, *path.parents[:3]) if path.exists() else ():
        cfg = run / "config.json"
        if run.is_dir() and cfg.is_file() and (run / "checkpoints").is_dir():
            doc = json.loads(cfg.read_text())
            return data_identity(list(doc.get("stores") or []),
                                 list(doc.get("streams") or [])), f"run config {cfg}"
    return None, f"{weights} does not record its pretraining data"


def find_overlap(identity: dict[str, Any], test: list[list[Any]]) -> dict[str, Any]:
    """Test records (``record_keys`` rows) the identity saw: ``{"n", "by_source", "examples"}``
    where ``by_source`` counts overlapping test records per source and how they matched."""
    seen_rec, seen_pat, seen_ptbxl = set(), set(), set()
    for st in identity.get("stores", []):
        for source, rid, pid, ptbxl in st.get("records", []):
            seen_rec.add((source, rid))
            if pid is not None:
                seen_pat.add((source, pid))
            if ptbxl is not None:
                seen_ptbxl.add(int(ptbxl))
    by: Counter[str] = Counter()
    examples: list[str] = []
    for source, rid, pid, ptbxl in test:
        how = ("record id" if (source, rid) in seen_rec else
               "PTB-XL ecg_id" if ptbxl is not None and int(ptbxl) in seen_ptbxl else
               "patient" if pid is not None and (source, pid) in seen_pat else None)
        if how:
            by[f"{source} (by {how})"] += 1
            if len(examples) < 5:
                examples.append(rid)
    return {"n": sum(by.values()), "by_source": dict(by), "examples": examples}


# ---- preprocessing ------------------------------------------------------------------------

def _norm_units(u: Any) -> str | None:
    return None if u is None else str(u).replace("µ", "u").replace("μ", "u").strip().lower()


def store_input(store, stream) -> dict[str, Any]:
    """What ``stream`` of ``store`` holds, in :func:`declared_input`'s fields; ``notch`` is the
    notch actually applied (:func:`applied_notch`), ``notch_is_auto`` whether it is what the
    ``"auto"`` setting gives."""
    cfg = store.config.get(stream.modality) or {}
    band = (cfg.get("l_freq"), cfg.get("h_freq")) if cfg else (None, None)
    notch, is_auto = applied_notch(store, stream.modality) if cfg else (None, False)
    return {"modality": stream.modality, "rates_hz": [int(stream.fs)], "units": stream.units,
            "band_pass_hz": list(band) if None not in band else None,
            "notch": notch, "notch_is_auto": is_auto,
            "channels": list(stream.channels)}


def declared_input(weights: str | None, model_name: str, model=None) -> tuple[dict[str, Any], str]:
    """What the encoder at ``weights`` (None: the registry's ``model_name``) says it takes,
    and where that came from."""
    from criss_cross.registry import get_model_spec

    hub = getattr(model, "hub_config", None) if model is not None else None
    if weights is not None and Path(weights).is_dir() and not hub:
        cfg_path = Path(weights) / "config.json"
        if cfg_path.is_file():
            doc = json.loads(cfg_path.read_text())
            if doc.get("model_type") == "criss-cross-encoder":
                hub = doc
            elif doc.get("stores") and doc.get("streams"):
                from biosig_prep import open_store

                try:
                    store = open_store(doc["stores"][0])
                    out = store_input(store, store.stream(doc["streams"][0]))
                    out["rates_hz"] = sorted({int(s.split("@")[1]) for s in doc["streams"]})
                    return out, f"the run's training store {doc['stores'][0]}"
                except (OSError, KeyError, ValueError):
                    pass
    if hub:
        inp = dict(hub.get("input") or {})
        return inp, "the model's config.json"
    spec = get_model_spec(model_name)
    out = spec.input_spec()
    out.update({k: v for k, v in spec.extra.items() if k in ("band_pass_hz", "notch")})
    return out, f"the registry spec of {model_name!r}"


def preprocessing_mismatches(declared: dict[str, Any], actual: dict[str, Any],
                             input_scale: float | None = None) -> list[str]:
    """One line per field both sides state and they disagree on (empty: they agree)."""
    out = []
    if declared.get("modality") and declared["modality"] != actual["modality"]:
        out.append(f"modality: the encoder takes {declared['modality']}, the stream holds "
                   f"{actual['modality']}")
    rates = declared.get("rates_hz")
    if rates and actual["rates_hz"][0] not in [int(r) for r in rates]:
        out.append(f"sampling rate: the encoder was trained at {'/'.join(map(str, rates))} Hz, "
                   f"the stream is at {actual['rates_hz'][0]} Hz")
    du, au = _norm_units(declared.get("units")), _norm_units(actual.get("units"))
    if du and au and du != au:
        out.append(f"units: the encoder takes {declared['units']}, the stream is in "
                   f"{actual['units']}")
    db, ab = declared.get("band_pass_hz"), actual.get("band_pass_hz")
    if db and ab and any(abs(float(a) - float(b)) > 1e-6 for a, b in zip(db, ab, strict=True)):
        out.append(f"band-pass: the encoder's data were filtered {db[0]:g}-{db[1]:g} Hz, the "
                   f"stream's {ab[0]:g}-{ab[1]:g} Hz")
    dn, an = declared.get("notch"), actual.get("notch")
    if dn is not None and an is not None and _notch_differs(str(dn), str(an),
                                                            actual.get("notch_is_auto")):
        out.append(f"notch: the encoder's data used {dn}, the stream's {an}")
    dc, ac = declared.get("channels"), actual.get("channels")
    if dc and ac and list(dc) != list(ac):
        what = "lead order" if sorted(dc) == sorted(ac) else "leads"
        out.append(f"{what}: the encoder takes {','.join(dc)}, the stream holds {','.join(ac)}")
    ds = declared.get("input_scale")
    if ds is not None and input_scale is not None and abs(float(ds) - float(input_scale)) > 1e-12:
        out.append(f"input_scale: the model card declares {ds}, the loaded encoder uses "
                   f"{input_scale}")
    return out


def _notch_differs(declared: str, actual: str, actual_is_auto: bool | None) -> bool:
    """A declared ``"auto"`` (a registry spec: the mains of whatever data) agrees with a store
    whose applied notch is what auto gives it; otherwise the applied frequencies compare."""
    if declared == "auto":
        return actual != "auto" and actual_is_auto is False
    if actual == "auto":  # a store that does not record what it applied: cannot tell
        return False
    try:
        return {_notch_text(float(x)) if x != "off" else x for x in declared.split("/")} != \
            {_notch_text(float(x)) if x != "off" else x for x in actual.split("/")}
    except ValueError:
        return declared != actual


def check_stream_input(weights: str, store_url: str, stream_name: str,
                       model_name: str = "ecg-base") -> str | None:
    """One line naming every preprocessing mismatch between the encoder at ``weights`` (a Hub
    folder or a run; anything else is checked against ``model_name``'s registry spec only if
    it has no card) and ``stream_name`` of ``store_url``; None when they agree."""
    from biosig_prep import open_store

    store = open_store(store_url)
    stream = store.stream(stream_name)
    declared, where = declared_input(weights, model_name)
    if where.startswith("the registry spec"):
        return None  # a bare checkpoint declares nothing; its architecture is not a registry name
    bad = preprocessing_mismatches(declared, store_input(store, stream))
    if not bad:
        return None
    return f"preprocessing mismatch between {where} and {store_url} {stream_name}: {'; '.join(bad)}"
