"""What a store's reader checks before it trusts a byte: the store's own record of what was written.

Three records, written once when a conversion completes (:func:`seal`) and checked on read:

* ``_meta/manifest.json``: ``key -> [nbytes, crc32c, digest]`` of every chunk and shard object
  (:func:`object_record`). Readers compare every object they fetch against it (size and digest;
  a shard's digest covers its chunks' CRC32Cs and its index, and each chunk decoded is checked
  against its CRC32C), so flipped bytes, a truncated object, two shards swapped, a missing
  object or one that was never written are errors naming the stream and shard.
* the root attribute ``integrity``: ``{"format": 1, "metadata": {zarr.json key -> digest},
  "root": digest, "manifest": [nbytes, crc32c]}``. The digest (SHA-256 of the canonical JSON) of
  every group's and array's ``zarr.json`` covers what decides the decoded values (shape, data
  type, codecs and their scale, fill value, chunk grid) and the stream attributes (channels,
  rate, units); ``root`` covers the root attributes but ``integrity``, ``complete``,
  ``conversion`` and ``generation``; ``manifest`` makes a lost or edited manifest an error too.
* every chunk's own CRC32C (zarr's ``crc32c`` codec), which any Zarr reader checks.

Stores written before these records existed (no ``integrity`` attribute) are read as before:
per-chunk CRC32Cs where their codecs have them, the manifest where there is one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from biosig_prep.store.io import RawIO
from biosig_prep.store.layout import EMPTY_CHUNK, MANIFEST, META, RECORDS, STAGING

__all__ = ["INTEGRITY_FORMAT", "IntegrityError", "seal", "metadata_problems", "load_manifest",
           "object_problem", "object_record", "shard_fingerprint", "fully_checked",
           "canonical_digest", "UNSEALED_ROOT_KEYS"]

INTEGRITY_FORMAT = 1
# root attributes that change after the seal (or are the seal itself); ``generation`` names
# the conversion for caches (a reader's StoreChangedError check), it decides no value
UNSEALED_ROOT_KEYS = ("integrity", "complete", "conversion", "generation")


class IntegrityError(ValueError):
    """Store metadata that differs from what its conversion wrote (one line, names the file)."""


def canonical_digest(obj: Any) -> str:
    """SHA-256 (hex, 32 characters) of ``obj`` as sorted, compact JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def parse_json(blob: bytes | None, where: str, key: str) -> Any:
    """``blob`` parsed, or :class:`IntegrityError` naming the object (missing or not JSON)."""
    if blob is None:
        raise IntegrityError(f"{where}: {key} is missing")
    try:
        return json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{where}: {key} is not valid JSON ({exc})") from None


def _node_keys(raw: RawIO) -> list[str]:
    """Every ``zarr.json`` below the root (not the store's own ``_meta`` or staging groups)."""
    return [k for k in raw.list("") if k.endswith("/zarr.json")
            and k.split("/")[0] not in (META, STAGING)]


def _root_digest(attrs: dict[str, Any]) -> str:
    return canonical_digest({k: v for k, v in attrs.items() if k not in UNSEALED_ROOT_KEYS})


def seal(raw: RawIO, root_attrs: dict[str, Any]) -> dict[str, Any]:
    """Complete the manifest with the ``records/`` chunks (written through zarr) and return the
    ``integrity`` attribute for ``root_attrs`` (call after every other write but ``complete``)."""
    import google_crc32c

    data = raw.get(MANIFEST)
    manifest: dict[str, list] = json.loads(data) if data else {}
    manifest = {k: v for k, v in manifest.items() if not k.startswith(f"{RECORDS}/")}
    for key in raw.list(f"{RECORDS}/"):
        if "/c/" in key:
            blob = raw.get(key)
            if blob is not None:
                manifest[key] = object_record(blob)
    text = json.dumps(manifest, sort_keys=True).encode()
    raw.put(MANIFEST, text)
    metadata = {}
    for key in _node_keys(raw):
        metadata[key] = canonical_digest(parse_json(raw.get(key), raw_name(raw), key))
    return {"format": INTEGRITY_FORMAT, "metadata": metadata, "root": _root_digest(root_attrs),
            "manifest": [len(text), int(google_crc32c.value(text))]}


def raw_name(raw: RawIO) -> str:
    root = raw.local_root
    return str(root) if root is not None else "store"


def metadata_problems(raw: RawIO, attrs: dict[str, Any], where: str) -> list[str]:
    """One line per ``zarr.json`` that is missing, unparseable, changed or unexpected, and for
    changed root attributes ([] when all match the seal)."""
    integrity = attrs["integrity"]
    if not isinstance(integrity, dict) or integrity.get("format") != INTEGRITY_FORMAT:
        return [f"{where}: the root attribute 'integrity' is not one this version reads "
                f"(format {integrity.get('format') if isinstance(integrity, dict) else '?'!r})"]
    problems = []
    if _root_digest(attrs) != integrity.get("root"):
        problems.append(f"{where}: zarr.json: the root attributes (config, summary, schema) "
                        "differ from what the conversion wrote")
    expected: dict[str, str] = dict(integrity.get("metadata") or {})
    keys = sorted(expected)
    for key, blob in zip(keys, raw.get_many(keys), strict=True):
        try:
            meta = parse_json(blob, where, key)
        except IntegrityError as exc:
            problems.append(str(exc))
            continue
        if canonical_digest(meta) != expected[key]:
            problems.append(f"{where}: {key} differs from what the conversion wrote (its shape, "
                            "data type, codecs or attributes were edited)")
    return problems


def unexpected_nodes(raw: RawIO, attrs: dict[str, Any], where: str) -> list[str]:
    """Lines for arrays or groups the conversion did not write (a full listing: verify only)."""
    expected = set((attrs.get("integrity") or {}).get("metadata") or {})
    return [f"{where}: {key} was not written by the conversion" for key in _node_keys(raw)
            if key not in expected]


def load_manifest(raw: RawIO, attrs: dict[str, Any], where: str) -> dict[str, list]:
    """The manifest, checked against the seal when the store has one ({} when an unsealed store
    has none). Raises :class:`IntegrityError` naming the file if it is missing, not JSON, or
    differs from what the conversion wrote."""
    import google_crc32c

    data = raw.get(MANIFEST)
    integrity = attrs.get("integrity")
    if isinstance(integrity, dict):
        if data is None:
            raise IntegrityError(f"{where}: {MANIFEST} is missing (the record of every object the "
                                 "conversion wrote, which every read is checked against); "
                                 "re-run `biosig-prep convert` to rewrite the store")
        if [len(data), int(google_crc32c.value(data))] != list(integrity.get("manifest") or []):
            raise IntegrityError(f"{where}: {MANIFEST} differs from what the conversion wrote; "
                                 "re-run `biosig-prep convert` to rewrite the store")
    elif data is None:
        return {}
    manifest = parse_json(data, where, MANIFEST)
    if not isinstance(manifest, dict) or not all(
            isinstance(v, list) and len(v) in (2, 3) for v in manifest.values()):
        raise IntegrityError(f"{where}: {MANIFEST} is not a manifest (expected an object of "
                             "key -> [nbytes, crc32c, sha256])")
    return manifest


def object_record(pieces: Any) -> list:
    """``[nbytes, crc32c, digest]``: the manifest entry of an object given as bytes (a chunk) or
    as the list of pieces :meth:`~biosig_prep.store.codec.WindowCodec.shard` returns (a shard:
    its chunks, each ending with its CRC32C, then the index and the index's CRC32C).

    The digest of a chunk is the SHA-256 of its bytes. That of a shard, ``"k<slots>:<sha>"``, is
    the SHA-256 of its chunks' CRC32Cs and its index (:func:`shard_fingerprint`): a few bytes per
    window, so checking it costs nothing, while every chunk a reader decodes is checked against
    its own CRC32C. The whole object's CRC32C cannot do this job: a chunk followed by its CRC
    is a CRC codeword, so a shard's CRC32C depends on its chunk lengths only (two shards of equal
    chunk lengths swapped, or a chunk rewritten with a valid CRC, leave it unchanged). ``verify``
    checks CRC32C and digest; readers the digest, plus the CRC32C of each chunk they decode."""
    import google_crc32c

    parts = [bytes(p) if isinstance(p, memoryview) else p
             for p in (pieces if isinstance(pieces, (list, tuple)) else [pieces])]
    crc, n = 0, 0
    for part in parts:
        crc = google_crc32c.extend(crc, part)
        n += len(part)
    if len(parts) > 1:  # a shard
        index = parts[-1][:-4]
        digest = hashlib.sha256(b"".join(p[-4:] for p in parts[:-1]) + index).hexdigest()[:32]
        return [n, int(crc), f"k{len(index) // 16}:{digest}"]
    return [n, int(crc), hashlib.sha256(parts[0]).hexdigest()[:32]]


def shard_fingerprint(blob: bytes, n_slots: int) -> str | None:
    """The digest :func:`object_record` gives the shard ``blob`` of ``n_slots`` chunks (index at
    the end, with its CRC32C), or None if its index does not describe the object."""
    raw = np.frombuffer(blob, dtype=np.uint8)
    size = 16 * n_slots + 4
    if len(raw) < size:
        return None
    index = raw[len(raw) - size:len(raw) - 4]
    table = index.view("<u8").reshape(n_slots, 2)
    used = table[:, 0] != np.uint64(EMPTY_CHUNK)
    ends = table[used, 0] + table[used, 1]
    if used.any() and (int(ends.max()) > len(raw) - size or int(table[used, 1].min()) < 4):
        return None
    trailers = raw[(ends[:, None].astype(np.int64) - 4 + np.arange(4)).ravel()]
    digest = hashlib.sha256(trailers.tobytes() + index.tobytes()).hexdigest()[:32]
    return f"k{n_slots}:{digest}"


def object_problem(key: str, blob: bytes | None, manifest: dict[str, list],
                   strict: bool) -> str | None:
    """Why the object ``key`` (``blob``, None if absent) is not what was written, or None.

    strict : the manifest is complete (a sealed store), so an object it does not list must not
        exist either."""
    import google_crc32c

    entry = manifest.get(key)
    if entry is None:
        if strict and blob is not None:
            return "the object was not written by the conversion"
        return None
    if blob is None:
        return "the object is missing"
    if len(blob) != entry[0]:
        return f"{len(blob)} bytes, {entry[0]} written"
    if len(entry) > 2 and str(entry[2]).startswith("k"):  # a shard: its chunks' CRCs + index
        slots = int(str(entry[2])[1:].split(":")[0])
        if shard_fingerprint(blob, slots) != entry[2]:
            return "checksum mismatch, the content changed"
    elif len(entry) > 2:  # a chunk: SHA-256 of its bytes
        if hashlib.sha256(blob).hexdigest()[:32] != entry[2]:
            return "checksum mismatch, the content changed"
    elif google_crc32c.value(blob) != entry[1]:  # a manifest written before the digest
        return "checksum mismatch, the content changed"
    return None


def fully_checked(entry: list | None) -> bool:
    """Whether :func:`object_problem` saw every byte of the object (then the per-chunk CRC32Cs
    need not be computed again): not for a shard's digest, which covers its chunks' CRCs."""
    return entry is not None and not (len(entry) > 2 and str(entry[2]).startswith("k"))
