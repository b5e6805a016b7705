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

A v5 file's variables may be zlib-compressed (``miCOMPRESSED``), and ``loadmat`` decompresses
each whole: a few MB can declare, or hold, GB. :func:`check_v5_bounds` walks the file's
top-level elements first, reads each compressed one's declared size from the first 8
decompressed bytes (its ``miMATRIX`` tag), refuses a total above a bound, and stream-decompresses
it in 1 MiB steps (``zlib.decompressobj`` with ``max_length``; output counted, not kept) to
refuse one that decompresses to more than it declares. Memory stays at one step; the bound
comes from what the caller knows (a WFDB header's signals x samples, or a ratio to the file's
size and the memory available).

Whatever the type, the values are the header's *digital* values: physical = (value -
baseline) / gain, as for int16.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from biosig_prep.errors import ReadError

__all__ = ["read_mat_matrix", "mat_version", "check_v5_bounds", "v5_declared_bytes",
           "v5_variable_names",
           "memory_available", "MAX_COMPRESSION_RATIO"]

_MI_MATRIX, _MI_COMPRESSED = 14, 15
_STEP = 1 << 20
# real signals stored as doubles compress ~1-10x; a larger ratio is a damaged or crafted file
MAX_COMPRESSION_RATIO = 50
_SLACK = 1 << 20  # bytes of names, headers and padding over the numbers themselves


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def memory_available() -> int | None:
    """Bytes this process may still allocate: the smallest of the kernel's ``MemAvailable``,
    the address-space limit (``ulimit -v``) and the cgroup's ``memory.max`` headroom; None
    when none is known."""
    limits: list[int] = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            with open("/proc/self/statm") as fh:
                used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limits.append(max(0, soft - used))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            top = fh.read().strip()
        if top != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                limits.append(max(0, int(top) - int(fh.read().strip())))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def v5_declared_bytes(path: Path, limit: int) -> int:
    """Total bytes the top-level variables of a MATLAB v5 file declare once decompressed.

    Every compressed variable is decompressed as a stream and counted (never kept); raises
    :class:`ReadError` naming the file when the declared total exceeds ``limit`` (before any
    large decompression) or a variable decompresses to more than it declares.
    """
    total = 0
    with open(path, "rb") as fh:
        head = fh.read(128)
        if len(head) < 128:
            raise ReadError(path, f"truncated MATLAB v5 file ({len(head)} bytes)")
        order = ">" if head[126:128] == b"MI" else "<"
        for mtype, nbytes in _v5_elements(fh, order):
            if mtype == _MI_COMPRESSED:
                total += _count_compressed(fh, nbytes, order, limit - total, path)
            elif mtype == _MI_MATRIX:
                total += 8 + nbytes
                if total > limit:
                    raise ReadError(path, f"MATLAB v5 variables declare {_gb(total)}, more "
                                          f"than the {_gb(limit)} this file may hold")
    return total


def _v5_elements(fh, order: str):
    """The top-level data elements of an open MATLAB v5 file past its 128-byte header, as
    ``(type, nbytes)`` with ``fh`` at the element's data; whatever the caller reads of it, the
    next element is read from the right place (compressed elements are not padded, others to
    8 bytes). Small data elements (data inside the tag) are passed over."""
    while True:
        tag = fh.read(8)
        if len(tag) < 8:
            return
        mtype, nbytes = (int(v) for v in np.frombuffer(tag, f"{order}u4"))
        if mtype >> 16:
            continue
        start = fh.tell()
        yield mtype, nbytes
        fh.seek(start + nbytes + (0 if mtype == _MI_COMPRESSED else -nbytes % 8))


def _matrix_name(buf: bytes, order: str) -> str | None:
    """The name of a ``miMATRIX`` element from its first bytes (tag, array flags, dimensions,
    name), or None when they are too short or malformed."""
    pos = 8
    data = b""
    for _ in range(3):  # array flags, dimensions, name
        if pos + 8 > len(buf):
            return None
        t, n = (int(v) for v in np.frombuffer(buf[pos:pos + 8], f"{order}u4"))
        if t >> 16:  # small data element: size in the upper half, data in the tag
            data = buf[pos + 4: pos + 4 + (t >> 16)]
            pos += 8
        else:
            data = buf[pos + 8: pos + 8 + n]
            pos += 8 + n + (-n % 8)
    return data.decode("latin-1") if pos <= len(buf) else None


def v5_variable_names(path: Path) -> list[str]:
    """The names of a MATLAB v5 file's top-level variables, decompressing only the first bytes
    of each (``scipy.io.whosmat`` decompresses every compressed variable whole to check it).
    Raises :class:`ReadError` for a file that is not v5 or is damaged."""
    names = []
    with open(path, "rb") as fh:
        head = fh.read(128)
        if len(head) < 128 or mat_version(head) != "v5":
            raise ReadError(path, "not a MATLAB v5 file")
        order = ">" if head[126:128] == b"MI" else "<"
        for mtype, nbytes in _v5_elements(fh, order):
            first = fh.read(min(nbytes, 1 << 16))
            if mtype == _MI_COMPRESSED:
                try:
                    first = zlib.decompressobj().decompress(first, 4096)
                except zlib.error as exc:
                    raise ReadError(path, f"damaged compressed MATLAB variable: {exc}") from None
            if mtype in (_MI_COMPRESSED, _MI_MATRIX):
                name = _matrix_name(first, order)
                if name is None:
                    raise ReadError(path, "damaged MATLAB variable header")
                names.append(name)
    return names


def _count_compressed(fh, nbytes: int, order: str, room: int, path: Path) -> int:
    """Decompress one ``miCOMPRESSED`` element of ``nbytes`` from ``fh`` as a stream, at most
    1 MiB of output at a time; return the bytes it declares (its inner tag + data) after
    checking it holds no more than that."""
    d = zlib.decompressobj()
    left, head, declared, produced = nbytes, b"", -1, 0

    def count(out: bytes) -> None:
        nonlocal head, declared, produced
        produced += len(out)
        if declared < 0:
            head += out[:8]
            if len(head) >= 8:
                _, n = (int(v) for v in np.frombuffer(head[:8], f"{order}u4"))
                declared = 8 + n
                if declared > room:
                    raise ReadError(path, f"a compressed MATLAB variable declares "
                                          f"{_gb(declared)} decompressed from {_gb(nbytes)}, "
                                          f"more than the {_gb(max(room, 0))} this file may hold")
        if 0 <= declared < produced:
            raise ReadError(path, f"a compressed MATLAB variable decompresses to more than the "
                                  f"{_gb(declared)} it declares (damaged or crafted file)")

    try:
        while left > 0 and not d.eof:
            data = fh.read(min(left, _STEP))
            if not data:
                raise ReadError(path, "truncated MATLAB v5 file (a compressed variable ends "
                                      "early)")
            left -= len(data)
            while data and not d.eof:
                count(d.decompress(data, _STEP))
                data = d.unconsumed_tail
        count(d.flush())
    except zlib.error as exc:
        raise ReadError(path, f"damaged compressed MATLAB variable: {exc}") from None
    if left > 0:
        fh.seek(left, os.SEEK_CUR)
    return max(declared, 0)


def check_v5_bounds(path: Path, expected: int | None = None, *, what: str = "") -> int:
    """Refuse a MATLAB v5 file whose variables declare or decompress to more than a bound,
    before ``loadmat`` allocates anything. Returns the declared decompressed bytes.

    expected : the bytes the caller's own metadata allows (a WFDB header: signals x samples x
        8, plus slack); None: at most :data:`MAX_COMPRESSION_RATIO` x the file's size. Either
        way at most :func:`memory_available`. what : the source of ``expected``, for the
        message.
    """
    size = os.path.getsize(path)
    limit = expected if expected is not None else MAX_COMPRESSION_RATIO * size + _SLACK
    memory = memory_available()
    try:
        total = v5_declared_bytes(path, limit)
    except ReadError as exc:
        hint = (f" ({what})" if what and expected is not None else
                f" (at most {MAX_COMPRESSION_RATIO}x the {_gb(size)} file)")
        raise ReadError(path, exc.reason + hint) from None
    if memory is not None and total > memory:
        raise ReadError(path, f"MATLAB variables need {_gb(total)} decompressed, more than the "
                              f"{_gb(memory)} of memory available")
    return total

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


def _v5(path: Path, expected: int | None = None) -> np.ndarray:
    from scipy.io import loadmat

    check_v5_bounds(path, expected, what="the size the record's header declares")
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


def read_mat_matrix(path: Path, buf: bytes, n_sig: int, sig_len: int | None = None
                    ) -> np.ndarray:
    """The (n_sig, n_samples) digital samples of a record's ``.mat`` file ``buf``.

    sig_len : samples per signal the header declares; bounds what a compressed v5 file may
    decompress to (n_sig x sig_len doubles, plus slack; see :func:`check_v5_bounds`).

    Returns the matrix in the file's own dtype (int16 for Challenge files, float64, ...), rows
    = signals. Raises :class:`ReadError` naming the file, the format and the problem.
    """
    version = mat_version(buf)
    if version == "v7.3":
        raise ReadError(path, "MATLAB v7.3 (HDF5) .mat files are not supported; save the "
                              "record with -v7 or -v4")
    expected = None if sig_len is None else n_sig * sig_len * 8 + _SLACK
    matrix = _v5(path, expected) if version == "v5" else _v4(buf, path)
    if matrix.shape[0] != n_sig:
        raise ReadError(path, f".mat ({version}) holds {matrix.shape[0]} rows but the header "
                              f"declares {n_sig} signals")
    return matrix
