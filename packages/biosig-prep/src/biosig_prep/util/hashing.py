"""Content hashes used for run fingerprints and file identities."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

__all__ = ["sha256_json", "file_sha256"]


def sha256_json(obj: Any) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys; non-JSON values through ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
