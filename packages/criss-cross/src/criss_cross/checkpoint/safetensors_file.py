"""Checking a ``.safetensors`` file before reading it: its header, read without the tensors.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
dtype, shape, byte offsets; optional ``__metadata__``), then the data. :func:`read_header`
checks every part of that layout against the file's size, so a truncated, fake or corrupt file
is a :class:`CheckpointError` naming the file and the problem, and the shapes can be compared
with a model's configuration before the model is built.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["CheckpointError", "SafetensorsHeader", "read_header"]

# Bytes per element of the dtypes safetensors writes.
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2,
             "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}
_MAX_HEADER = 100 << 20  # the format's own limit on the JSON header


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model (names the keys) or cannot be read."""


SafetensorsHeader = dict[str, tuple[str, tuple[int, ...]]]


def read_header(path: str | Path) -> SafetensorsHeader:
    """``{name: (dtype, shape)}`` of a ``.safetensors`` file, after checking its layout.

    Raises
    ------
    CheckpointError
        One line naming ``path`` and what is wrong: missing, too short, a header length past
        the end of the file, a header that is not JSON or not a tensor table, offsets that do
        not match the shapes, a data section of the wrong size (a truncated file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights {path} do not exist")
    size = path.stat().st_size

    def bad(problem: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid safetensors file: {problem}")

    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise bad(f"{size} bytes, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, _MAX_HEADER):
            raise bad(f"header length {n} is past the end of the file ({size} bytes)")
        raw = f.read(n)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise bad(f"the header is not JSON ({err})") from None
    if not isinstance(doc, dict):
        raise bad(f"the header is a JSON {type(doc).__name__}, not a table of tensors")
    tensors: SafetensorsHeader = {}
    spans: list[tuple[int, int, str]] = []
    end = 0
    for name, info in doc.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (lo, hi) = info["dtype"], info["shape"], info["data_offsets"]
            itemsize = _ITEMSIZE[dtype]
            if not all(isinstance(s, int) and s >= 0 for s in shape):
                raise ValueError
            if not (isinstance(lo, int) and isinstance(hi, int)):
                raise ValueError
        except (TypeError, KeyError, ValueError):
            raise bad(f"the entry of tensor {name!r} is malformed: {str(info)[:80]}") from None
        if not 0 <= lo <= hi or hi - lo != itemsize * math.prod(shape):
            raise bad(f"tensor {name!r} ({dtype} {shape}) has byte offsets [{lo}, {hi}]")
        end = max(end, hi)
        spans.append((lo, hi, name))
        tensors[name] = (dtype, tuple(shape))
    at = 0
    for lo, hi, name in sorted(spans):  # the format's rule: the data is tiled, in order
        if lo != at:
            raise bad(f"tensor {name!r} starts at byte {lo} of the data, expected {at} "
                      "(overlapping or gapped offsets)")
        at = hi
    if 8 + n + end != size:
        raise bad(f"the header describes {end} bytes of data, the file holds {size - 8 - n} "
                  "(truncated or padded)")
    return tensors
