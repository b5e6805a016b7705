"""WFDB records: a ``.hea`` header with MATLAB v4 ``.mat`` (the CinC Challenge) or ``.dat`` signals.

Two paths, same numbers:

* The fast path parses the header text itself and reads the samples with numpy: a MATLAB
  ``.mat`` holding ``val`` (leads x samples; v4 of any numeric type, or v5 through scipy, see
  :mod:`biosig_prep.readers.matfile`: the file's own header says the type, never the WFDB
  format field) and format-16 ``.dat`` files, one signal file per record, one sample per
  frame. It costs a small fraction of ``wfdb.rdrecord``, whose header parsing alone dominates
  its time.
* Everything else that is not ``.mat`` (format 212 and the other packed formats, several signal files,
  multi-frequency or multi-segment records, skew) goes through ``wfdb.rdrecord``.

Both give physical values ``(digital - baseline) / gain`` in float64, then converted to mV
(``uV`` / 1000, ``V`` * 1000); invalid samples (-32768 in format 16) become NaN, as in wfdb.

Header quirks of real Challenge files are fixed in memory: a record line that starts with the
file name (``E00271.mat 12 500 5000``, rejected by wfdb), lower-case units (``mv``), signal files
whose name differs from the record name (the signal lines say which file to read; if that file
is missing but ``<record>.mat`` exists, that one is used), ``#Age:`` without a space. A signal
file name must stay inside the record's folder: an absolute or ``..`` path is refused. Header
comments (``Age``, ``Sex``, ``Dx`` SNOMED codes, ...) become metadata.

Identity (:mod:`biosig_prep.datasets.keys`): a Challenge 2021 ``HR`` record gets
``ptbxl_ecg_id`` (``HR00001`` is PTB-XL's ``ecg_id`` 1); a CPSC 2021 record
(``data_<patient>_<record>``) gets ``patient_id`` and the source ``cpsc2021``. The Challenge
headers name no patient, so other records carry no ``patient_id``. Rhythm annotations
(``<record>.atr``) are read when present (:mod:`biosig_prep.readers.rhythm`) and become
per-window labels.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biosig_prep.datasets.keys import PATIENT_ID, PTBXL_ECG_ID, ptbxl_ecg_id_of
from biosig_prep.errors import ReadError
from biosig_prep.readers.matfile import read_mat_matrix
from biosig_prep.readers.rhythm import cpsc2021_patient, read_rhythms
from biosig_prep.readers.wfdb_import import import_wfdb
from biosig_prep.recording import Recording, rate_problem
from biosig_prep.sources import challenge_source

__all__ = ["SignalSpec", "WfdbHeader", "parse_header", "header_metadata", "read_wfdb",
           "import_wfdb"]

_FMT = re.compile(r"^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$")
_GAIN = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\((-?\d+)\))?(?:/(\S*))?$")
_SIGNAL_SUFFIXES = (".mat", ".hea", ".dat")
_DEFAULT_FS = 250.0
_DEFAULT_GAIN = 200.0

# units (lower-cased) -> factor to mV
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}


@dataclass
class SignalSpec:
    """One signal line of a WFDB header."""

    file_name: str
    fmt: int
    samps_per_frame: int = 1
    skew: int = 0
    byte_offset: int | None = None
    gain: float = _DEFAULT_GAIN
    baseline: int = 0
    units: str = "mV"
    adc_res: int | None = None
    adc_zero: int = 0
    init_value: int | None = None
    checksum: int | None = None
    block_size: int | None = None
    name: str = ""


@dataclass
class WfdbHeader:
    """A parsed header. ``fixes`` lists the quirks that were corrected while parsing."""

    record_name: str
    n_sig: int
    fs: float
    sig_len: int | None
    signals: list[SignalSpec]
    comments: list[str]
    n_seg: int | None = None
    fixes: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # corrected header lines (for wfdb)


def _int(token: str, what: str, path: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise ReadError(path, f"corrupt header: {what} {token!r} is not an integer") from None


def parse_header(text: str, path: str | os.PathLike = "<header>") -> WfdbHeader:
    """Parse the text of a ``.hea`` file; raise :class:`ReadError` naming ``path`` if it is corrupt.

    Record line: ``name[/n_seg] n_sig [fs[/counter[(base)]] [sig_len [time [date]]]]``; one line per
    signal: ``file fmt[xspf][:skew][+offset] [gain[(baseline)][/units] [adc_res [adc_zero
    [init_value [checksum [block_size [description]]]]]]]``; comment lines start with ``#``.
    """
    path = str(path)
    comments: list[str] = []
    body: list[str] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
        else:
            body.append(line)
    if not body:
        raise ReadError(path, "corrupt header: no record line")
    fixes: list[str] = []
    tokens = body[0].split()
    if len(tokens) < 2:
        raise ReadError(path, f"corrupt header: record line {body[0]!r} has no signal count")
    name_token = tokens[0]
    lower = name_token.lower()
    if lower.endswith(_SIGNAL_SUFFIXES):
        name_token = name_token[: -len(".mat")]
        fixes.append("record line starts with the file name")
    n_seg = None
    if "/" in name_token:
        name_token, seg = name_token.split("/", 1)
        n_seg = _int(seg, "segment count", path)
    n_sig = _int(tokens[1], "signal count", path)
    fs = _DEFAULT_FS
    if len(tokens) > 2:
        fs_token = re.split(r"[/(]", tokens[2], maxsplit=1)[0]
        try:
            fs = float(fs_token)
        except ValueError:
            raise ReadError(path, f"corrupt header: sampling frequency {tokens[2]!r}") from None
        problem = rate_problem(fs)
        if problem:
            raise ReadError(path, f"corrupt header: {problem}")
    sig_len = _int(tokens[3], "signal length", path) if len(tokens) > 3 else None
    if sig_len is not None and sig_len < 0:  # it would cut samples off the end, silently
        raise ReadError(path, f"corrupt header: signal length {sig_len} is negative")
    record_line = " ".join([name_token + (f"/{n_seg}" if n_seg else "")] + tokens[1:])
    lines = [record_line]

    signals: list[SignalSpec] = []
    if n_seg is None:
        if len(body) - 1 < n_sig:
            raise ReadError(
                path, f"corrupt header: {n_sig} signals declared, {len(body) - 1} signal lines")
        for i, line in enumerate(body[1:1 + n_sig]):
            spec, fixed = _parse_signal_line(line, i, path)
            signals.append(spec)
            for fix in fixed:
                if fix not in fixes:
                    fixes.append(fix)
            lines.append(line)
    else:
        lines.extend(body[1:])
    return WfdbHeader(record_name=name_token, n_sig=n_sig, fs=fs, sig_len=sig_len,
                      signals=signals, comments=comments, n_seg=n_seg, fixes=fixes,
                      lines=lines + ["#" + c for c in comments])


def _parse_signal_line(line: str, index: int, path: str) -> tuple[SignalSpec, list[str]]:
    tokens = line.split(None, 8)
    n_tok = len(tokens)
    if n_tok < 2:
        raise ReadError(path, f"corrupt header: signal line {index + 1} {line!r} has no format")
    fmt_token = tokens[1]
    if fmt_token.isdigit():  # the common case, e.g. "16" or "212"
        spec = SignalSpec(file_name=tokens[0], fmt=int(fmt_token))
    else:
        m = _FMT.match(fmt_token)
        if m is None:
            raise ReadError(path, f"corrupt header: signal line {index + 1} format {fmt_token!r}")
        spec = SignalSpec(
            file_name=tokens[0], fmt=int(m.group(1)),
            samps_per_frame=int(m.group(2)) if m.group(2) else 1,
            skew=int(m.group(3)) if m.group(3) else 0,
            byte_offset=int(m.group(4)) if m.group(4) else None,
        )
    fixes: list[str] = []
    baseline: int | None = None
    if n_tok > 2:
        g = _GAIN.match(tokens[2])
        if g is None:
            raise ReadError(path, f"corrupt header: signal line {index + 1} gain {tokens[2]!r}")
        gain_text, baseline_text, units = g.groups()
        gain = float(gain_text)
        spec.gain = gain if gain != 0 else _DEFAULT_GAIN
        if baseline_text is not None:
            baseline = int(baseline_text)
        if units:
            spec.units = units
            if units != "mV" and units.lower() in _TO_MV and units != _canonical_units(units):
                fixes.append(f"units {units!r} read as {_canonical_units(units)!r}")
    try:
        if n_tok > 3:
            spec.adc_res = int(tokens[3])
        if n_tok > 4:
            spec.adc_zero = int(tokens[4])
        if n_tok > 5:
            spec.init_value = int(tokens[5])
        if n_tok > 6:
            spec.checksum = int(tokens[6])
        if n_tok > 7:
            spec.block_size = int(tokens[7])
    except ValueError:
        raise ReadError(path, f"corrupt header: signal line {index + 1} {line!r} has a "
                              "non-integer field") from None
    spec.baseline = baseline if baseline is not None else spec.adc_zero
    spec.name = tokens[8].strip() if n_tok > 8 else ""
    return spec, fixes


def _canonical_units(units: str) -> str:
    key = units.lower()
    return {"mv": "mV", "uv": "uV", "µv": "uV", "μv": "uV", "v": "V", "nv": "nV"}.get(key, units)


def header_metadata(comments: list[str]) -> dict[str, Any]:
    """Header comments as metadata: ``Age`` -> int (None when unknown), ``Sex`` -> str, ``Dx`` ->
    list of SNOMED CT codes (str); other ``Key: value`` comments -> lower-cased key, str value."""
    meta: dict[str, Any] = {}
    for comment in comments:
        if ":" not in comment:
            continue
        key, value = comment.split(":", 1)
        key = key.strip().lower()
        value = value.strip()
        if not key or " " in key:
            continue
        if key == "age":
            try:
                age = float(value)
                meta["age"] = int(age) if np.isfinite(age) else None
            except ValueError:
                meta["age"] = None
        elif key == "dx":
            meta["dx"] = [code.strip() for code in value.split(",") if code.strip()]
        else:
            meta[key] = value
    return meta


def _check_confined(hea_path: Path, file_name: str) -> None:
    """Refuse a signal-file name that leaves the record's folder (absolute, ``..``, a drive)."""
    pure = file_name.replace("\\", "/")
    if (os.path.isabs(file_name) or pure.startswith("/") or ".." in pure.split("/")
            or re.match(r"^[A-Za-z]:", pure)):
        raise ReadError(hea_path, f"signal file {file_name!r} is outside the record's folder "
                                  "(absolute or '..' paths are refused)")


def _read_signal_file(hea_path: Path, header: WfdbHeader,
                      file_name: str) -> tuple[Path, bytes]:
    """The bytes of the signal file a header names (or of ``<record><suffix>`` if that file is
    missing, noted in ``header.fixes``)."""
    candidate = hea_path.parent / file_name
    try:
        with open(candidate, "rb") as fh:
            return candidate, fh.read()
    except (FileNotFoundError, IsADirectoryError):
        pass
    suffix = Path(file_name).suffix
    alt = hea_path.with_suffix(suffix) if suffix else None
    if alt is not None and alt.is_file():
        header.fixes.append(f"signal file {file_name!r} missing, read {alt.name!r}")
        return alt, alt.read_bytes()
    raise ReadError(hea_path, f"signal file {file_name!r} named in the header does not exist")


def _single_mat(header: WfdbHeader) -> bool:
    """True when every signal lives in one ``.mat`` file, one sample per frame, no skew."""
    sigs = header.signals
    return (header.n_seg is None and bool(sigs) and len({s.file_name for s in sigs}) == 1
            and sigs[0].file_name.lower().endswith(".mat")
            and all(s.samps_per_frame == 1 and not s.skew for s in sigs))


def _read_fast(hea_path: Path, header: WfdbHeader) -> np.ndarray | None:
    """Digital samples, shape (n_sig, sig_len) (int16, or the ``.mat`` file's own type), or None
    when the fast path does not apply."""
    sigs = header.signals
    if _single_mat(header):  # any MATLAB version and numeric type, never int16 by assumption
        data_path, buf = _read_signal_file(hea_path, header, sigs[0].file_name)
        matrix = read_mat_matrix(data_path, buf, header.n_sig, header.sig_len)
        if header.sig_len is not None:
            if header.sig_len > matrix.shape[1]:
                raise ReadError(data_path, f".mat holds {matrix.shape[1]} samples per signal "
                                           f"but the header declares {header.sig_len}")
            matrix = matrix[:, :header.sig_len]
        return matrix
    if any(s.file_name.lower().endswith(".mat") for s in sigs):
        raise ReadError(hea_path, "signals in .mat files are read only as one matrix (leads x "
                                  "samples) in one file, one sample per frame")
    if (header.n_seg is not None or not sigs or len({s.file_name for s in sigs}) != 1
            or any(s.fmt != 16 or s.samps_per_frame != 1 or s.skew for s in sigs)
            or len({s.byte_offset for s in sigs}) != 1):
        return None
    data_path, buf = _read_signal_file(hea_path, header, sigs[0].file_name)
    n_sig = header.n_sig
    offset = sigs[0].byte_offset or 0
    available = (len(buf) - offset) // (2 * n_sig)
    n_samples = header.sig_len if header.sig_len is not None else available
    need = offset + 2 * n_sig * n_samples
    if len(buf) < need:
        raise ReadError(data_path, f"truncated signal file: {len(buf)} bytes, the header needs "
                                   f"{need}")
    digital = np.frombuffer(buf, dtype="<i2", count=n_sig * n_samples, offset=offset)
    return digital.reshape(n_samples, n_sig).T


def _read_with_wfdb(hea_path: Path,
                    header: WfdbHeader) -> tuple[np.ndarray, list[str], float, list[str]]:
    """Physical signals via ``wfdb.rdrecord``; quirky headers are rewritten in a temporary dir."""
    wfdb = import_wfdb()

    record_path = hea_path.with_suffix("")
    tmpdir = None
    try:
        if header.fixes or header.record_name != hea_path.stem:
            tmpdir = tempfile.mkdtemp(prefix="biosig-prep-wfdb-")
            text = "\n".join(header.lines) + "\n"
            text = re.sub(r"^\S+", hea_path.stem, text, count=1)
            Path(tmpdir, hea_path.stem + ".hea").write_text(text)
            for spec in {s.file_name for s in header.signals}:
                src = (hea_path.parent / spec).resolve()
                dst = Path(tmpdir, spec)
                if src.is_file() and not dst.exists():
                    try:
                        os.symlink(src, dst)
                    except OSError:
                        shutil.copyfile(src, dst)
            record_path = Path(tmpdir, hea_path.stem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            rec = wfdb.rdrecord(str(record_path), physical=True, return_res=64)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - wfdb raises many kinds; all mean "unreadable"
        raise ReadError(hea_path, f"wfdb could not read the record: {exc}") from exc
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if rec.p_signal is None:
        raise ReadError(hea_path, "wfdb returned no single-frequency signals")
    units = list(rec.units or ["mV"] * rec.n_sig)
    names = list(rec.sig_name or [f"ch{i}" for i in range(rec.n_sig)])
    return np.ascontiguousarray(rec.p_signal.T, dtype=np.float64), units, float(rec.fs), names


def _adc_range(header: WfdbHeader, units: list[str]) -> np.ndarray | None:
    """(n_sig, 2) physical values (mV) of each signal's lowest and highest ADC code, computed as
    the samples are, or None unless every signal line gives its ADC resolution."""
    sigs = header.signals
    if not sigs or any(not s.adc_res or s.adc_res > 32 for s in sigs):
        return None
    out = np.empty((len(sigs), 2), dtype=np.float64)
    for i, (s, unit) in enumerate(zip(sigs, units, strict=True)):
        half = 2 ** (s.adc_res - 1)
        codes = np.array([s.adc_zero - half, s.adc_zero + half - 1], dtype=np.float64)
        codes -= s.baseline
        codes /= s.gain
        out[i] = codes * _TO_MV.get(unit.lower(), 1.0)
    return out


def read_wfdb(hea_path: str | os.PathLike, record_id: str | None = None, *,
              fast: bool = True) -> Recording:
    """Read one WFDB record into an ECG :class:`Recording` (mV, float64, shape (n_sig, n_times)).

    hea_path : the ``.hea`` file (or the record path without suffix).
    record_id : id in the store (default: the header file's stem).
    fast : use the numpy fast path where it applies (``False``: always ``wfdb.rdrecord``).
    """
    hea_path = Path(hea_path)
    if hea_path.suffix.lower() != ".hea":
        hea_path = hea_path.with_name(hea_path.name + ".hea")
    try:
        text = hea_path.read_text(encoding="latin-1")
    except FileNotFoundError:
        raise ReadError(hea_path, "header file does not exist") from None
    except OSError as exc:
        raise ReadError(hea_path, f"cannot read header: {exc}") from exc
    header = parse_header(text, hea_path)
    if header.n_sig == 0:
        raise ReadError(hea_path, "the header declares no signals")
    for name in {s.file_name for s in header.signals}:
        _check_confined(hea_path, name)

    digital = _read_fast(hea_path, header) if fast else None
    if digital is not None:
        gain = np.array([s.gain for s in header.signals], dtype=np.float64)
        baseline = np.array([s.baseline for s in header.signals], dtype=np.float64)
        digital = np.ascontiguousarray(digital)  # (n_sig, n) int16, lead by lead
        signals = digital.astype(np.float64)  # the same arithmetic as wfdb's dac()
        signals -= baseline[:, None]
        signals /= gain[:, None]
        if digital.dtype == np.int16 and digital.size and digital.min() == -32768:
            # format 16's invalid-sample value
            signals[digital == -32768] = np.nan
        units = [s.units for s in header.signals]
        names = [s.name for s in header.signals]
        fs = header.fs
    else:
        signals, units, fs, names = _read_with_wfdb(hea_path, header)

    for i, unit in enumerate(units):
        factor = _TO_MV.get(unit.lower())
        if factor is None:
            raise ReadError(hea_path, f"signal {names[i] or i + 1} has units {unit!r}; "
                                      "expected mV, uV or V")
        if factor != 1.0:
            signals[i] *= factor
    names = [n if n else f"ch{i + 1}" for i, n in enumerate(names)]
    adc_range = _adc_range(header, units) if len(units) == len(header.signals) else None
    meta = header_metadata(header.comments)
    if header.fixes:
        meta["header_fixes"] = list(header.fixes)
    info = challenge_source(hea_path.stem)
    source = info.name if info else "wfdb"
    ecg_id = ptbxl_ecg_id_of(hea_path.stem) if source == "ptb-xl" else None
    if ecg_id is not None:  # a Challenge HR record is this PTB-XL recording
        meta[PTBXL_ECG_ID] = ecg_id
    patient = cpsc2021_patient(hea_path.stem)
    if patient is not None:
        meta[PATIENT_ID] = patient
        source = "cpsc2021"
    return Recording(
        record_id=record_id or hea_path.stem,
        source=source,
        path=str(hea_path),
        modality="ecg",
        fs=float(fs),
        signals=signals,
        channels=names,
        units=["mV"] * len(names),
        metadata=meta,
        adc_range=adc_range,
        rhythms=read_rhythms(hea_path, signals.shape[1]),
    )
