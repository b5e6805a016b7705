"""EDF, BDF, FIF and BrainVision files through MNE: EEG channels in µV, ECG channels in mV.

``mne.io.read_raw`` picks the reader by suffix and returns volts. Channels of type ``eeg`` become
the EEG :class:`Recording` (file order kept); channels of type ``ecg``, or whose name contains
``ECG`` or ``EKG`` (EDF files rarely declare types: MNE calls every EDF channel ``eeg``), become a
separate ECG :class:`Recording`. Other channel types (stim, EOG, EMG, misc, ...) are not kept.
Record ids are ``<id>/eeg`` and ``<id>/ecg``.

A channel whose EDF/BDF header gives a physical minimum equal to its maximum has no
calibration (a dead or unused input; MNE warns and scales it by 1): it is returned as zeros and
named in the recording's metadata as ``dead_channels``, and the processing masks it like a flat
channel (``channel_mask`` False, named in ``flat_leads``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from biosig_prep.errors import ReadError
from biosig_prep.readers.edf_channels import is_ecg_channel
from biosig_prep.readers.edf_header import read_edf_header
from biosig_prep.recording import Recording, rate_problem

__all__ = ["EDF_SUFFIXES", "read_edf", "is_ecg_channel"]

EDF_SUFFIXES = (".edf", ".bdf", ".fif", ".vhdr")
_V_TO_UV = 1e6
_V_TO_MV = 1e3


def _metadata(raw: Any) -> dict[str, Any]:
    info = raw.info
    meta: dict[str, Any] = {}
    if info.get("meas_date") is not None:
        meta["meas_date"] = info["meas_date"].isoformat()
    if info.get("line_freq"):
        meta["line_freq"] = float(info["line_freq"])
    subject = info.get("subject_info") or {}
    sex = {1: "Male", 2: "Female"}.get(subject.get("sex"))
    if sex:
        meta["sex"] = sex
    return meta


def read_edf(path: str | os.PathLike, record_id: str | None = None) -> list[Recording]:
    """Read an EDF/BDF/FIF/BrainVision file.

    Returns the EEG recording (if the file has EEG channels) and the ECG recording (if it has ECG
    channels), in that order. Raises :class:`ReadError` if MNE cannot read the file or it holds
    neither.
    """
    import mne

    path = Path(path)
    if path.suffix.lower() not in EDF_SUFFIXES:
        raise ReadError(path, f"unknown format {path.suffix!r} (expected {', '.join(EDF_SUFFIXES)})")
    if not path.is_file():
        raise ReadError(path, "file does not exist")
    dead: set[str] = set()
    header_problem = ""
    if path.suffix.lower() in (".edf", ".bdf"):
        try:
            dead = set(read_edf_header(path).dead_channels())
        except ReadError as exc:
            header_problem = exc.reason  # MNE's own message follows, or this one
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = mne.io.read_raw(path, preload=True, verbose=False)
    except Exception as exc:  # noqa: BLE001 - MNE raises many kinds; all mean "unreadable"
        said = str(exc).strip() or header_problem or type(exc).__name__
        raise ReadError(path, f"mne could not read the file: {said}") from exc
    # what MNE warned of (a file shorter than its header says: MNE reads what is there) goes
    # into the metadata; a dead channel's warning is covered by ``dead_channels``
    notes = [" ".join(str(w.message).split()) for w in caught
             if "Physical range is not defined" not in str(w.message)]
    record_id = record_id or path.stem
    names = list(raw.ch_names)
    types = raw.get_channel_types()
    ecg_idx = [i for i, (n, t) in enumerate(zip(names, types, strict=True))
               if is_ecg_channel(n, t)]
    eeg_idx = [i for i, t in enumerate(types) if t == "eeg" and i not in set(ecg_idx)]
    if not eeg_idx and not ecg_idx:
        raise ReadError(path, f"no EEG or ECG channels (channel types: {sorted(set(types))})")
    data = raw.get_data()  # volts, float64, (n_channels, n_times)
    fs = float(raw.info["sfreq"])
    problem = rate_problem(fs)
    if problem:
        raise ReadError(path, f"header: {problem}")
    meta = _metadata(raw)
    if notes:
        meta["read_warnings"] = notes
    source = path.suffix.lower().lstrip(".")
    out: list[Recording] = []
    for modality, idx, scale, unit in (("eeg", eeg_idx, _V_TO_UV, "µV"),
                                       ("ecg", ecg_idx, _V_TO_MV, "mV")):
        if not idx:
            continue
        signals = np.ascontiguousarray(data[idx], dtype=np.float64) * scale
        names_here = [names[i] for i in idx]
        meta_here = dict(meta)
        dead_here = [n for n in names_here if n in dead]
        if dead_here:
            signals[[names_here.index(n) for n in dead_here]] = 0.0
            meta_here["dead_channels"] = dead_here
        out.append(Recording(
            record_id=f"{record_id}/{modality}",
            source=source,
            path=str(path),
            modality=modality,
            fs=fs,
            signals=signals,
            channels=names_here,
            units=[unit] * len(idx),
            metadata=meta_here,
        ))
    return out
