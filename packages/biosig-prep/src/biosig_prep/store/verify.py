"""Integrity: every chunk and shard object against the store's own record of what was written.

The convert driver writes ``_meta/manifest.json`` (``key -> [nbytes, crc32c]`` of every object
its block tasks wrote). :func:`verify_store` reads each object back and names what is missing,
has another size or another checksum, by stream (or table) and shard/chunk index.
"""

from __future__ import annotations

import json
import os
from typing import Any

from biosig_prep.store.io import RawIO, open_raw_store
from biosig_prep.store.layout import MANIFEST
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
    """Check every object the conversion wrote.

    Returns ``{"checked": n, "bytes": total, "problems": [one line each]}``; an empty
    ``problems`` means every object is there with its size and CRC32C. Raises
    :class:`StoreError` if the store has no manifest (written before this check existed).
    """
    import google_crc32c

    text = os.fspath(url)
    store = open_store(text, allow_incomplete=allow_incomplete, storage_options=storage_options)
    raw = RawIO(open_raw_store(text, storage_options, read_only=True), url=text,
                storage_options=storage_options)
    data = raw.get(MANIFEST)
    if data is None:
        raise StoreError(f"{text}: no record of the objects written ({MANIFEST} is missing); "
                         "it was converted before `verify` existed: re-run `biosig-prep convert` "
                         "to get one")
    manifest: dict[str, list[int]] = json.loads(data)
    problems: list[str] = []
    total = 0
    for key in sorted(manifest):
        nbytes, crc = manifest[key]
        blob = raw.get(key)
        if blob is None:
            problems.append(f"{_name(key)}: missing ({key})")
            continue
        total += len(blob)
        if len(blob) != nbytes:
            problems.append(f"{_name(key)}: {len(blob)} bytes, {nbytes} written ({key})")
        elif google_crc32c.value(blob) != crc:
            problems.append(f"{_name(key)}: checksum mismatch, the content changed ({key})")
    for name in store.stream_names:  # every window the arrays claim has a shard on record
        s = store.stream(name)
        n_shards = -(-len(s) // s.shard_size)
        listed = {k for k in manifest if k.startswith(f"{name}/windows/c/")}
        if len(listed) != n_shards:
            problems.append(f"{name} windows: {len(listed)} shards on record, {n_shards} needed "
                            f"for {len(s)} windows")
    return {"checked": len(manifest), "bytes": total, "problems": problems}
