"""The identity of an encoder's pretraining data: which records of which stores it saw.

For every record of every store a run trained on, ``[source, record id, patient id or None,
PTB-XL ecg_id or None]`` (:func:`record_keys`, :func:`data_identity`). ``criss-cross export``
(:func:`criss_cross.hub.export_run`) writes it as :data:`IDENTITY_NAME` into the Hub folder;
the bench's leakage guard (:mod:`criss_cross.bench.guards`, which re-exports these names)
matches test records against it. It sits below both, so that neither imports the other.
:func:`applied_notch` is the notch a store's records were actually filtered with (the card's
``input.notch`` and the bench's preprocessing guard compare it).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["IDENTITY_NAME", "applied_notch", "data_identity", "record_keys"]

IDENTITY_NAME = "pretraining_data.json"
_HR = re.compile(r"^HR(\d{5})$")


def _ptbxl_id(record_id: str, meta: dict[str, Any], source: str) -> int | None:
    for key in ("ptbxl_ecg_id",):
        if meta.get(key) is not None:
            return int(meta[key])
    if meta.get("ecg_id") is not None and "ptb" in source.lower():
        return int(meta["ecg_id"])
    m = _HR.match(record_id)
    return int(m.group(1)) if m else None


def record_keys(store) -> list[list[Any]]:
    """``[source, id, patient_id or None, ptbxl_ecg_id or None]`` of every record of a store."""
    rec = store.records()
    out = []
    for rid, source, meta_text in zip(rec["id"], rec["source"], rec["metadata"], strict=True):
        meta = json.loads(meta_text) if meta_text else {}
        pid = meta.get("patient_id")
        out.append([str(source), str(rid), None if pid is None else str(pid),
                    _ptbxl_id(str(rid), meta, str(source))])
    return out


def data_identity(stores: list[str], streams: list[str]) -> dict[str, Any]:
    """The identity of pretraining data: ``{"stores": [{"url", "streams", "records"}]}``."""
    from biosig_prep import open_store

    out = []
    for url in stores:
        store = open_store(url)
        out.append({"url": str(url), "streams": [s for s in streams if s in store.stream_names],
                    "records": record_keys(store)})
    return {"schema": 1, "stores": out}


def _notch_text(hz: Any) -> str:
    return "off" if hz is None else f"{float(hz):g}"


def applied_notch(store, modality: str) -> tuple[str | None, bool]:
    """The notch ``store``'s ``modality`` records were actually filtered with, as text
    (``"50"``, ``"off"``, ``"50/60"`` where records differ; None where nothing says), and
    whether that is what ``"auto"`` gives for every record (the setting's own resolution,
    :func:`biosig_prep.dsp.filters.resolve_notch`, by source and record name).

    Each record's metadata holds the resolved value (``notch_hz``, or ``<modality>_notch_hz``
    in multimodal stores); a store without it is resolved from its configured setting.
    """
    from biosig_prep.dsp.filters import resolve_notch

    setting = (store.config.get(modality) or {}).get("notch")
    rec = store.records()
    applied: set[str] = set()
    is_auto = True
    for source, rid, status, fs, text in zip(rec["source"], rec["id"], rec["status"], rec["fs"],
                                             rec["metadata"], strict=True):
        if str(status) != "ok":
            continue
        meta = json.loads(text) if text else {}
        line, fs = meta.get("line_freq"), float(fs)
        auto = resolve_notch("auto", str(source), str(rid), line)
        auto = None if auto is not None and fs > 0 and auto >= fs / 2.0 else auto
        for key in ("notch_hz", f"{modality}_notch_hz"):
            if key in meta:
                hz = meta[key]
                break
        else:
            if setting is None:
                continue
            hz = auto if setting == "auto" else resolve_notch(setting, str(source), str(rid), line)
        applied.add(_notch_text(hz))
        is_auto = is_auto and _notch_text(hz) == _notch_text(auto)
    if not applied:
        return (None if setting is None else str(setting)), setting == "auto"
    return "/".join(sorted(applied)), is_auto
