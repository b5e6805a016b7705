"""The fixed-size header of an EDF/BDF file, read without touching the signals.

An EDF header is 256 bytes plus 256 per signal, ASCII (EDF spec, Kemp et al. 1992): the number
of signals ``ns`` at bytes 252-256, then per-signal fields stored field by field (all labels,
then all transducer types, ...). Reading it costs one ``read`` of ``256 * (ns + 1)`` bytes, so
the channel decision of a run can look at every file's header (:mod:`biosig_prep.dsp.montage`).
FIF and BrainVision files have no such header: :func:`channel_names` opens them with MNE without
loading data (``preload=False``).

Channel names are decoded as MNE decodes them (latin-1, cut at a NUL, stripped), so they equal
the names :func:`biosig_prep.readers.edf_reader.read_edf` gives the same channels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biosig_prep.dsp.montage import decide_from_layouts
from biosig_prep.errors import ReadError
from biosig_prep.readers.edf_channels import is_ecg_channel

__all__ = ["EdfHeader", "read_edf_header", "channel_names", "decide_eeg_channels"]

_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").split("\x00")[0].strip()


def _number(raw: bytes) -> float | None:
    try:
        return float(_text(raw).replace(",", "."))
    except ValueError:
        return None


@dataclass(frozen=True)
class EdfHeader:
    """What the header says of each signal (annotation signals left out).

    labels : channel names as MNE gives them. physical_min / physical_max : the physical
    values of the digital extremes (None where unreadable); equal values mean the channel has
    no calibration (a dead or unused input). record_seconds : duration of a data record.
    """

    path: str
    labels: tuple[str, ...]
    physical_min: tuple[float | None, ...]
    physical_max: tuple[float | None, ...]
    units: tuple[str, ...]
    record_seconds: float | None

    def dead_channels(self) -> list[str]:
        """Channels whose physical minimum equals their maximum (no calibration: dead)."""
        return [name for name, lo, hi in zip(self.labels, self.physical_min, self.physical_max,
                                             strict=True)
                if lo is not None and hi is not None and lo == hi]


def read_edf_header(path: str | os.PathLike) -> EdfHeader:
    """Parse the header of an EDF/BDF file. Raises :class:`ReadError` naming the file when it is
    too short or its signal count is unreadable."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
            if len(head) < 256:
                raise ReadError(path, f"EDF header truncated ({len(head)} of 256 bytes)")
            ns_text = _text(head[252:256])
            if not ns_text.isdigit() or int(ns_text) == 0:
                raise ReadError(path, f"EDF header: number of signals is {ns_text!r}")
            ns = int(ns_text)
            body = fh.read(256 * ns)
    except OSError as exc:
        raise ReadError(path, f"cannot read the EDF header: {exc.strerror or exc}") from None
    if len(body) < 256 * ns:
        raise ReadError(path, f"EDF header truncated: {ns} signals need {256 * (ns + 1)} bytes")

    def field(offset: int, width: int) -> list[bytes]:
        base = offset * ns
        return [body[base + i * width: base + (i + 1) * width] for i in range(ns)]

    labels = [_text(b) for b in field(0, 16)]
    units = [_text(b) for b in field(16 + 80, 8)]
    pmin = [_number(b) for b in field(16 + 80 + 8, 8)]
    pmax = [_number(b) for b in field(16 + 80 + 16, 8)]
    keep = [i for i, name in enumerate(labels) if name not in _ANNOTATION_LABELS]
    return EdfHeader(path=str(path), labels=tuple(labels[i] for i in keep),
                     physical_min=tuple(pmin[i] for i in keep),
                     physical_max=tuple(pmax[i] for i in keep),
                     units=tuple(units[i] for i in keep),
                     record_seconds=_number(head[244:252]))


def channel_names(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(names, types)`` of a file's channels from its header only (no signal read): EDF/BDF
    parsed here (every EDF channel has MNE's default type ``eeg``), FIF/BrainVision through
    MNE with ``preload=False``. Raises :class:`ReadError` naming the file."""
    path = Path(path)
    if path.suffix.lower() in (".edf", ".bdf"):
        header = read_edf_header(path)
        return list(header.labels), ["eeg"] * len(header.labels)
    import mne

    try:
        raw = mne.io.read_raw(path, preload=False, verbose=False)
    except Exception as exc:  # noqa: BLE001 - any MNE failure means "unreadable header"
        raise ReadError(path, f"mne could not read the header: {exc}") from exc
    return list(raw.ch_names), list(raw.get_channel_types())


def _eeg_of(names: Sequence[str], types: Sequence[str]) -> list[str]:
    """The channels that become EEG, as :func:`~biosig_prep.readers.edf_reader.read_edf` picks
    them: type ``eeg`` and not an ECG by name."""
    return [n for n, t in zip(names, types, strict=True)
            if t == "eeg" and not is_ecg_channel(n, t)]


def decide_eeg_channels(sources: Sequence[Any], declared: Sequence[str] | None = None
                        ) -> tuple[list[str] | None, str]:
    """The EEG stream's channels for a run over ``sources`` (module docstring).

    Returns ``(channels, note)``: ``channels`` None when no source is an EDF-family file with
    EEG channels (nothing to decide); ``note`` says how they were decided. Files whose header
    cannot be read have no vote (they are skipped with their read error later).
    """
    if declared:
        return list(declared), "declared (eeg_channels)"
    layouts: list[list[str]] = []
    for src in sources:
        if src.format != "edf" or src.problem:
            continue
        try:
            names, types = channel_names(src.path)
        except ReadError:
            continue
        eeg = _eeg_of(names, types)
        if eeg:
            layouts.append(eeg)
    if not layouts:
        return None, ""
    channels, rule = decide_from_layouts(layouts)
    return channels, f"{rule} of {len(layouts)} file(s)' headers"
