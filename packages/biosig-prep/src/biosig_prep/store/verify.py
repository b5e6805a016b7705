"""Integrity: every chunk and shard object against the store's own record of what was written.

The convert driver writes ``_meta/manifest.json`` (``key -> [nbytes, crc32c, sha256]`` of every
object written) and seals the store (:mod:`biosig_prep.store.integrity`). :func:`verify_store` reads each
object back and names what is missing, has another size or another checksum, or was not written,
by stream (or table) and shard/chunk index, and every ``zarr.json`` that differs from the seal.
"""

from __future__ import annotations

import os
from typing import Any

from biosig_prep.store.integrity import (
    IntegrityError,
    load_manifest,
    metadata_problems,
    object_problem,
    unexpected_nodes,
)
from biosig_prep.store.io import RawIO, open_raw_store
from biosig_prep.store.layout import LABELS, MANIFEST, RECORDS
from biosig_prep.store.reader import StoreError, open_store

__all__ = ["verify_store"]


def _name(key: str) -> str:
    """``ecg@500/windows/c/3/0/0/0`` -> ``ecg@500 windows shard 3``."""
    parts = key.split("/")
    if "c" in parts:
        i = parts.index("c")
        owner, array, index = "/".join(parts[:i - 1]), parts[i - 1], parts[i + 1]
        what = "shard" if array == "windows" else "chunk"
        return f"{owner} {array} {what} {index}"
    return key


def verify_store(url: str | os.PathLike, *, storage_options: dict | None = None,
                 allow_incomplete: bool = False) -> dict[str, Any]:
    """Check every object the conversion wrote, and (a sealed store) every ``zarr.json``.

    Returns ``{"checked": n, "bytes": total, "problems": [one line each], "sealed": bool}``; an
    empty ``problems`` means every object is there with its size and CRC32C (and, sealed, every
    metadata document and the root attributes are as written). Raises :class:`StoreError` (one
    line naming the file) if the store has no manifest (written before this check existed) or
    its manifest is missing from a sealed store, is not JSON, or was changed.
    """
    import google_crc32c

    text = os.fspath(url)
    store = open_store(text, allow_incomplete=allow_incomplete, storage_options=storage_options,
                       check=False)
    raw = RawIO(open_raw_store(text, storage_options, read_only=True), url=text,
                storage_options=storage_options)
    sealed = store.sealed
    problems: list[str] = []
    if sealed:
        problems += [p.removeprefix(f"{text}: ") for p in metadata_problems(raw, store.attrs, text)]
        problems += [p.removeprefix(f"{text}: ") for p in unexpected_nodes(raw, store.attrs, text)]
    try:
        manifest = load_manifest(raw, store.attrs, text)
    except IntegrityError as exc:
        raise StoreError(str(exc)) from None
    if not manifest and not sealed:
        raise StoreError(f"{text}: no record of the objects written ({MANIFEST} is missing); "
                         "it was converted before `verify` existed: re-run `biosig-prep convert` "
                         "to get one")
    total = 0
    for key in sorted(manifest):
        blob = raw.get(key)
        total += 0 if blob is None else len(blob)
        why = object_problem(key, blob, manifest, sealed)
        if why is None and blob is not None and google_crc32c.value(blob) != manifest[key][1]:
            why = "checksum mismatch, the content changed"  # both digests, where there are two
        if why is not None:
            why = "missing" if blob is None else why
            problems.append(f"{_name(key)}: {why} ({key})")
    if sealed:  # objects nobody wrote (a chunk that would shadow the fill value)
        for prefix in [f"{n}/" for n in store.stream_names] + [f"{LABELS}/", f"{RECORDS}/"]:
            for key in raw.list(prefix):
                if "/c/" in key and key not in manifest:
                    problems.append(f"{_name(key)}: the object was not written by the "
                                    f"conversion ({key})")
    for name in store.stream_names:  # every window the arrays claim has a shard on record
        try:
            s = store.stream(name)
        except Exception as exc:  # noqa: BLE001 - a damaged zarr.json, already named above
            if not problems:
                problems.append(f"{name}: cannot be opened ({type(exc).__name__}: {exc})")
            continue
        n_shards = -(-len(s) // s.shard_size)
        listed = {k for k in manifest if k.startswith(f"{name}/windows/c/")}
        if len(listed) != n_shards:
            problems.append(f"{name} windows: {len(listed)} shards on record, {n_shards} needed "
                            f"for {len(s)} windows")
    return {"checked": len(manifest), "bytes": total, "problems": problems, "sealed": sealed}
