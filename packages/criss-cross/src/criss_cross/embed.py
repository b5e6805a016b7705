"""Embeddings of every window of a store's stream, written as a Zarr v3 group.

``embed_store(checkpoint, store, stream, out)`` runs a pretrained encoder (head off) over the
windows of one stream, in storage order, and writes::

    out/embeddings      float32, (N, C, P, D) with pool="none", (N, P, D) with "channels",
                        (N, D) with "all"; chunks of ``batch_size`` windows
    out/record, out/start, out/channel_mask   copied from the stream, aligned with embeddings
    out/patch_mask      copied too, where the stream has one (store schema 2)
    attrs               schema, complete (True only once everything is written), checkpoint,
                        store, stream, pool, input_scale, encoder (EncoderConfig dump)

Pooling over channels averages only the valid channels (``channel_mask`` True): a zero-filled
lead does not dilute the mean; pooling over patches ("all") averages only the valid patches
(``patch_mask`` True), never a padded tail. Input is scaled by the encoder config's ``input_scale``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from criss_cross.checkpoint.find import resolve_checkpoint
from criss_cross.runtime import resolve_device

__all__ = ["embed_store", "read_embeddings", "resolve_checkpoint", "EMBEDDINGS_SCHEMA"]

EMBEDDINGS_SCHEMA = 1


def embed_store(
    checkpoint: str | Path | torch.nn.Module,
    store: str,
    stream: str,
    out: str | Path,
    *,
    batch_size: int = 256,
    pool: Literal["none", "channels", "all"] = "none",
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
    max_params: int | None = None,
) -> Path:
    """Write the embeddings of every window of ``stream`` in ``store`` to ``out``; see module doc.

    checkpoint : a Hub-format folder (``config.json`` + ``model.safetensors``, read by
        :func:`criss_cross.from_pretrained`), a run directory, checkpoint directory or file
        (:func:`resolve_checkpoint`), or an already loaded :class:`criss_cross.CrissCrossEncoder`.
    max_params : ceiling on the encoder's parameter count (checked before it is built).
    report : where a note goes when a damaged checkpoint of a run is passed over.
    """
    import zarr

    from biosig_prep import open_store

    if pool not in ("none", "channels", "all"):
        raise ValueError(f"pool must be 'none', 'channels' or 'all', got {pool!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size ({batch_size}) must be at least 1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} is a file, not a folder: choose another --out")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    dev = resolve_device(device)
    from criss_cross.hub import is_hub_folder

    if isinstance(checkpoint, torch.nn.Module):
        model, ck_name = checkpoint, type(checkpoint).__name__
    elif is_hub_folder(checkpoint) and not Path(checkpoint, "model.json").is_file():
        from criss_cross.hub import from_pretrained

        model, ck_name = from_pretrained(checkpoint, max_params=max_params), str(checkpoint)
    else:
        from criss_cross.checkpoint import load_checkpoint

        stem = resolve_checkpoint(checkpoint, report)
        model, ck_name = load_checkpoint(stem, max_params=max_params), str(stem)
    model = model.to(dev).eval()
    scale = float(model.config.input_scale)

    src = open_store(str(store)).stream(stream)
    n = len(src)
    c, p, _ = (int(d) for d in src.windows.shape[1:])
    d = int(model.config.d_model)
    shape = {"none": (n, c, p, d), "channels": (n, p, d), "all": (n, d)}[pool]

    root = zarr.open_group(str(out), mode="w", zarr_format=3)
    root.attrs.update(
        schema=EMBEDDINGS_SCHEMA,
        complete=False,
        checkpoint=ck_name,
        store=str(store),
        stream=stream,
        pool=pool,
        input_scale=scale,
        encoder=model.config.model_dump(mode="json"),
    )
    rows = max(1, min(batch_size, n))
    emb = root.create_array("embeddings", shape=shape, chunks=(rows, *shape[1:]),
                            dtype="float32")
    for key in ("record", "start", "channel_mask"):
        a = np.asarray(getattr(src, key)[:])
        arr = root.create_array(key, shape=a.shape, chunks=(max(1, len(a)), *a.shape[1:]),
                                dtype=a.dtype)
        arr[:] = a
    masks = np.asarray(src.channel_mask[:], dtype=bool)
    patch_masks = src.patch_masks()
    if getattr(src, "patch_mask", None) is not None:
        arr = root.create_array("patch_mask", shape=patch_masks.shape,
                                chunks=(max(1, n), p), dtype=bool)
        arr[:] = patch_masks

    reader = src.reader()  # the store's own reader: manifest and generation checks
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress()
        task = bar.add_task(f"embed {stream}", total=n)
        bar.start()
    try:
        with torch.inference_mode():
            for lo in range(0, n, rows):
                hi = min(lo + rows, n)
                x = torch.from_numpy(reader.read(lo, hi)).to(dev)
                if scale != 1.0:
                    x = x * scale
                valid = torch.from_numpy(masks[lo:hi]).to(dev)
                e = model.embed(x, pool=pool, valid_channels=None if pool == "none" else valid,
                                valid_patches=torch.from_numpy(patch_masks[lo:hi]).to(dev))
                emb[lo:hi] = e.float().cpu().numpy()
                if bar is not None:
                    bar.update(task, completed=hi)
    finally:
        if bar is not None:
            bar.stop()
    root.attrs["complete"] = True
    return out


def read_embeddings(path: str | Path) -> dict[str, Any]:
    """Embeddings and aligned arrays of an ``embed_store`` output as numpy (small stores)."""
    import zarr

    root = zarr.open_group(str(path), mode="r")
    if not root.attrs.get("complete", False):
        raise ValueError(f"{path} is incomplete (embedding was interrupted); run embed again")
    out: dict[str, Any] = {k: np.asarray(root[k][:]) for k in
                           ("embeddings", "record", "start", "channel_mask")}
    if "patch_mask" in root:
        out["patch_mask"] = np.asarray(root["patch_mask"][:])
    out["attrs"] = json.loads(json.dumps(dict(root.attrs)))
    return out
