"""What a probe reads from a store: record labels and groups, and pooled window embeddings.

- :func:`record_table` parses the ``records/`` metadata JSON of a store into label codes per
  record (``dx`` by default: the Challenge's SNOMED CT codes) and a group per record (the
  record itself, a ``records/`` column such as ``source``, or a metadata field such as
  ``sex`` or ``subject``) for splits.
- :func:`pooled_embeddings` runs an encoder over windows and averages its features over the
  valid channels (``channel_mask``) and the valid patches (``patch_mask``, when the store has
  it; a padded patch never enters the mean).
- :func:`embed_stream` does that for a whole stream, once: the result is cached in an ``.npz``
  keyed by the model's weights, the store and its generation, and the stream
  (:func:`cache_key`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["RecordTable", "cache_key", "embed_stream", "model_digest", "pooled_embeddings",
           "record_table"]


@dataclass
class RecordTable:
    """Per-record labels and groups of a store (rows of ``records/``)."""

    ids: np.ndarray           # (R,) str
    codes: list[list[str]]    # label codes per record
    groups: np.ndarray        # (R,) str, the split unit
    ok: np.ndarray            # (R,) bool, status == "ok"


def _as_codes(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    if isinstance(value, (list, tuple)):
        return [str(c).strip() for c in value if str(c).strip()]
    return [str(value)]


def record_table(store, labels: str = "dx", split_by: str = "record") -> RecordTable:
    """Labels (metadata field ``labels``) and split groups of every record of ``store``.

    split_by : ``"record"`` (each record its own group), a ``records/`` column (``source``),
        or a metadata field (``sex``, ``subject``...). A field missing from every record is an
        error naming the fields there are.
    """
    rec = store.records()
    metas = [json.loads(m) if m else {} for m in rec["metadata"]]
    if not any(labels in m for m in metas):
        fields = sorted({k for m in metas for k in m})
        raise KeyError(f"{store.url}: no record has the label field {labels!r} in its metadata "
                       f"(fields there: {', '.join(fields) or 'none'})")
    ids = np.asarray(rec["id"]).astype(str)
    if split_by == "record":
        groups = ids.copy()
    elif split_by in rec and split_by not in ("metadata",):
        groups = np.asarray(rec[split_by]).astype(str)
    elif any(split_by in m for m in metas):
        groups = np.array([str(m.get(split_by, "?")) for m in metas])
    else:
        fields = sorted({k for m in metas for k in m} | {c for c in rec if c != "metadata"})
        raise KeyError(f"{store.url}: cannot split by {split_by!r}: it is neither 'record', a "
                       f"records/ column nor a metadata field ({', '.join(fields)})")
    return RecordTable(ids=ids, codes=[_as_codes(m.get(labels)) for m in metas], groups=groups,
                       ok=np.asarray(rec["status"]).astype(str) == "ok")


def pooled_embeddings(model: torch.nn.Module, windows: torch.Tensor,
                      channel_mask: torch.Tensor | None = None,
                      patch_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Encoder features of ``windows`` (B, C, P, S) averaged over valid channels and patches.

    channel_mask : (B, C) bool, False for zero-filled leads; patch_mask : (B, P) bool, False
    for the zero padding of a record's last window. None means all valid. Returns (B, D) in
    the features' dtype. The input is used as given (scale it by ``input_scale`` first).
    """
    return model.embed(windows, pool="all", valid_channels=channel_mask,
                       valid_patches=patch_mask)


def model_digest(model: torch.nn.Module) -> str:
    """sha256 of the config and every tensor of the state dict (the cache key's model part)."""
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None:
        h.update(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(model: torch.nn.Module, store_url: str, stream: str, n_windows: int,
              bf16: bool, generation: str = "") -> str:
    """The cache file's key: weights, store (URL and generation: a store converted again at the
    same URL is a new one), stream, window count, precision and pooling."""
    doc = {"model": model_digest(model), "store": str(store_url), "stream": stream,
           "n": int(n_windows), "bf16": bool(bf16), "pool": "valid-channels-and-patches",
           "generation": str(generation)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:20]


def embed_stream(model: torch.nn.Module, stream, *, store_url: str, cache_dir: str | Path | None,
                 batch_size: int = 64, device: torch.device | str = "cpu",
                 bf16: bool = False) -> tuple[dict[str, np.ndarray], bool]:
    """Pooled embeddings (N, D) of every window of ``stream`` with their ``record`` rows.

    Returns ``({"embeddings", "record"}, cached)``; ``cached`` is True when the result came
    from ``cache_dir`` (same weights, store and its generation, stream and precision) and no
    window was embedded.
    """
    from biosig_prep.util import atomic_write_bytes

    n = len(stream)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"embeddings-{cache_key(model, store_url, stream.name, n, bf16, stream.generation)}.npz"
        if path.is_file():
            with np.load(path) as z:
                return {"embeddings": z["embeddings"], "record": z["record"]}, True
    dev = torch.device(device)
    model = model.to(dev).eval()
    scale = float(model.config.input_scale)
    out = np.zeros((n, int(model.config.d_model)), dtype=np.float32)
    records = np.zeros(n, dtype=np.int64)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        for lo in range(0, n, batch_size):
            batch = stream.read(lo, min(n, lo + batch_size))
            x = torch.from_numpy(np.asarray(batch["windows"], dtype=np.float32)).to(dev) * scale
            cm = torch.from_numpy(np.asarray(batch["channel_mask"], dtype=bool)).to(dev)
            pm = batch.get("patch_mask")
            pm = None if pm is None else torch.from_numpy(np.asarray(pm, dtype=bool)).to(dev)
            out[lo:lo + len(x)] = pooled_embeddings(model, x, cm, pm).float().cpu().numpy()
            records[lo:lo + len(x)] = np.asarray(batch["record"], dtype=np.int64)
    result = {"embeddings": out, "record": records}
    if path is not None:
        import io

        buf = io.BytesIO()
        np.savez(buf, **result)
        atomic_write_bytes(path, buf.getvalue(), durable=False)
    return result, False
