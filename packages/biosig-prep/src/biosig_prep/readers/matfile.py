"""The signal matrix of a WFDB record's MATLAB ``.mat`` file, whatever MATLAB wrote.

The Challenge ships ``val`` as a MATLAB **v4** file of int16 (leads x samples). Files written
by other tools differ, and each is read as what it is, never as int16 at the header's offset:

* **v4** (a 20-byte header per variable: type ``MOPT``, rows, columns, imaginary flag, name
  length): any numeric type (``P``: 0 float64, 1 float32, 2 int32, 3 int16, 4 uint16,
  5 uint8), either byte order (``M``: 0 little-, 1 big-endian), read straight from the bytes.
  Complex, sparse and text matrices are refused.
* **v5** (MATLAB's default ``save``; 128-byte text header ``MATLAB 5.0 MAT-file``): read with
  :func:`scipy.io.loadmat`; the variable ``val``, else the file's only numeric matrix.
* **v7.3** (HDF5): refused with a message naming the format and the fix (save with ``-v7``).

Whatever the type, the values are the header's *digital* values: physical = (value -
baseline) / gain, as for int16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biosig_prep.errors import ReadError

__all__ = ["read_mat_matrix", "mat_version"]

_V4_TYPES = {0: "f8", 1: "f4", 2: "i4", 3: "i2", 4: "u2", 5: "u1"}


def mat_version(buf: bytes) -> str:
    """``"v4"``, ``"v5"`` or ``"v7.3"`` from the first bytes of a MATLAB file."""
    head = buf[:128]
    if head.startswith(b"MATLAB 7.3") or (len(buf) > 512 and buf[512:520] == b"\x89HDF\r\n\x1a\n"):
        return "v7.3"
    if head.startswith(b"MATLAB 5.0") or (len(head) == 128 and head[126:128] in (b"IM", b"MI")):
        return "v5"
    return "v4"


def _v4(buf: bytes, path: Path) -> np.ndarray:
    if len(buf) < 20:
        raise ReadError(path, f"truncated .mat file ({len(buf)} bytes)")
    for order in ("<", ">"):
        mtype, mrows, ncols, imagf, namelen = (int(v) for v in
                                               np.frombuffer(buf, f"{order}i4", count=5))
        if 0 <= mtype < 5000 and mtype // 1000 == (0 if order == "<" else 1):
            break
    else:
        raise ReadError(path, "not a MATLAB v4/v5 file (unrecognised matrix header)")
    m, o, p, t = mtype // 1000, (mtype // 100) % 10, (mtype // 10) % 10, mtype % 10
    if o != 0 or t != 0 or p not in _V4_TYPES or m > 1:
        what = {1: "a text matrix", 2: "a sparse matrix"}.get(t, f"matrix type {mtype}")
        raise ReadError(path, f"MATLAB v4 file holds {what}; expected a full numeric matrix")
    if imagf:
        raise ReadError(path, "MATLAB v4 file holds a complex matrix; expected real samples")
    if mrows < 0 or ncols < 0 or namelen < 1:
        raise ReadError(path, f"corrupt MATLAB v4 header ({mrows} x {ncols}, name length "
                              f"{namelen})")
    dtype = np.dtype(_V4_TYPES[p]).newbyteorder("<" if m == 0 else ">")
    start = 20 + namelen
    need = start + mrows * ncols * dtype.itemsize
    if len(buf) < need:
        raise ReadError(path, f"truncated .mat file: {len(buf)} bytes, its {mrows} x {ncols} "
                              f"{dtype.name} matrix needs {need}")
    flat = np.frombuffer(buf, dtype=dtype, count=mrows * ncols, offset=start)
    return flat.reshape(ncols, mrows).T  # column-major on disk


def _v5(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged v5 file
        raise ReadError(path, f"scipy could not read the MATLAB v5 file: {exc}") from exc
    numeric = {k: v for k, v in mat.items() if not k.startswith("__")
               and isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind in "iuf"}
    if "val" in numeric:
        return numeric["val"]
    if len(numeric) == 1:
        return next(iter(numeric.values()))
    names = sorted(k for k in mat if not k.startswith("__"))
    raise ReadError(path, f"MATLAB v5 file holds no 'val' matrix and not exactly one numeric "
                          f"matrix (variables: {names})")


def read_mat_matrix(path: Path, buf: bytes, n_sig: int) -> np.ndarray:
    """The (n_sig, n_samples) digital samples of a record's ``.mat`` file ``buf``.

    Returns the matrix in the file's own dtype (int16 for Challenge files, float64, ...), rows
    = signals. Raises :class:`ReadError` naming the file, the format and the problem.
    """
    version = mat_version(buf)
    if version == "v7.3":
        raise ReadError(path, "MATLAB v7.3 (HDF5) .mat files are not supported; save the "
                              "record with -v7 or -v4")
    matrix = _v5(path) if version == "v5" else _v4(buf, path)
    if matrix.shape[0] != n_sig:
        raise ReadError(path, f".mat ({version}) holds {matrix.shape[0]} rows but the header "
                              f"declares {n_sig} signals")
    return matrix
