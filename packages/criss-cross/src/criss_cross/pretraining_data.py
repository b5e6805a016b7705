"""The identity of an encoder's pretraining data: which records of which stores it saw.

For every record of every store a run trained on, ``[source, record id, patient id or None,
PTB-XL ecg_id or None]`` (:func:`record_keys`, :func:`data_identity`). ``criss-cross export``
(:func:`criss_cross.hub.export_run`) writes it as :data:`IDENTITY_NAME` into the Hub folder;
the bench's leakage guard (:mod:`criss_cross.bench.guards`, which re-exports these names)
matches test records against it. It sits below both, so that neither imports the other.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["IDENTITY_NAME", "data_identity", "record_keys"]

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
