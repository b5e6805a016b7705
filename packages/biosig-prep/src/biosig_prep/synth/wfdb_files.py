"""The two files of a Challenge record, written as the real ones are laid out: the MATLAB v4
``.mat`` matrix and the WFDB ``.hea`` header text (both header styles found in the wild)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from biosig_prep.synth.record_spec import RecordSpec

__all__ = ["header_text", "wfdb_checksums", "write_mat_v4"]


def write_mat_v4(path: str | Path, val: np.ndarray, name: str = "val") -> int:
    """Write ``val`` (int16, shape (leads, samples)) as a MATLAB v4 file, as the Challenge did.

    Layout: five little-endian int32 (type 30 = little-endian int16 full matrix, mrows, ncols,
    imagf 0, namlen), the name with its NUL, then the data column-major. Returns bytes written.
    """
    val = np.asarray(val)
    if val.dtype != np.int16 or val.ndim != 2:
        raise ValueError(f"val must be a 2-D int16 array, got {val.dtype} {val.shape}")
    rows, cols = val.shape
    bname = name.encode("ascii") + b"\0"
    head = np.array([30, rows, cols, 0, len(bname)], dtype="<i4").tobytes() + bname
    data = np.ascontiguousarray(val.T).astype("<i2", copy=False).tobytes()
    Path(path).write_bytes(head + data)
    return len(head) + len(data)


def wfdb_checksums(d: np.ndarray) -> np.ndarray:
    """WFDB 16-bit checksums per lead (sum of samples modulo 2**16, as signed)."""
    s = d.astype(np.int64).sum(axis=1)
    return ((s + 32768) % 65536) - 32768


def header_text(spec: RecordSpec, digital: np.ndarray, *, mat_name: str,
                 record_field: str, units: str, lead_names: Sequence[str],
                 rng: np.random.Generator) -> str:
    """The ``.hea`` text of one record in ``spec.header_style``: the Challenge's original text
    (dated record line, ``16+24 1000/mV``, ``#Age: 74``) or the wfdb-rewritten one
    (``16x1+24 1000.0(0)/mV``, ``# Age: 74``)."""
    n_leads, n = digital.shape
    init = digital[:, 0] if n else np.zeros(n_leads, dtype=int)
    chk = wfdb_checksums(digital)
    g = spec.gain
    age = "NaN" if spec.age is None else str(spec.age)
    if spec.header_style == "original":
        day = int(rng.integers(1, 28))
        mon = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
               "Dec")[int(rng.integers(0, 12))]
        hh, mm, ss = (int(x) for x in rng.integers(0, [24, 60, 60]))
        gain = f"{g:.0f}"
        lines = [f"{record_field} {n_leads} {spec.fs} {n} {day:02d}-{mon}-2020 {hh:02d}:{mm:02d}:{ss:02d}"]
        lines += [f"{mat_name} 16+24 {gain}/{units} 16 0 {init[i]} {chk[i]} 0 {lead_names[i]}"
                  for i in range(n_leads)]
        comments = [f"#Age: {age}", f"#Sex: {spec.sex}", f"#Dx: {','.join(spec.dx)}",
                    "#Rx: Unknown", "#Hx: Unknown", "#Sx: Unknown"]
    else:  # rewritten by the wfdb library (as the torch_ecg sample data)
        gain = f"{g:.1f}(0)"
        lines = [f"{record_field} {n_leads} {spec.fs} {n}"]
        lines += [f"{mat_name} 16x1+24 {gain}/{units} 16 0 {init[i]} {chk[i]} 0 {lead_names[i]}"
                  for i in range(n_leads)]
        comments = [f"# Age: {age}", f"# Sex: {spec.sex}", f"# Dx: {','.join(spec.dx)}",
                    "# Rx: Unknown", "# Hx: Unknown"]
        if spec.source != "E":
            comments.append("# Sx: Unknown")
    return "\n".join(lines + comments) + "\n"
