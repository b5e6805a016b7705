"""The in-memory records that flow between the readers, the processing and the store writer.

A reader turns one source file into :class:`Recording` objects (signals in physical units at
their original rate). :func:`biosig_prep.processing.process_recording` turns a recording into a
:class:`ProcessedRecord`: one :class:`StreamWindows` per stream (a modality at a rate), plus the
row that goes into the store's ``records/`` table. Nothing here touches disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Recording", "StreamWindows", "ProcessedRecord", "stream_name"]


def stream_name(modality: str, fs: int) -> str:
    """Name of a stream, e.g. ``stream_name("ecg", 500) == "ecg@500"``."""
    return f"{modality}@{int(fs)}"


@dataclass
class Recording:
    """One recording of one modality as read from disk.

    signals : ndarray, shape (n_channels, n_times), float64, physical units (ECG mV, EEG µV).
    channels : channel names as the file gives them (case preserved).
    metadata : JSON-serialisable (age, sex, dx codes, subject/clip for DREAMER, ...).
    adc_range : ndarray, shape (n_channels, 2), or None: the physical values (same units as
        ``signals``) of the ADC's lowest and highest codes, where the file gives them (WFDB
        ``adc_res``); QC counts runs of samples there as clipping.
    rhythms : rhythm episodes from annotations beside the record, or None (no annotations):
        ``(first_sample, stop_sample, rhythm)`` at ``fs``, in time order, stop exclusive
        (see :mod:`biosig_prep.readers.rhythm`); processing labels every window from them.
    """

    record_id: str
    source: str
    path: str
    modality: str
    fs: float
    signals: np.ndarray
    channels: list[str]
    units: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    adc_range: np.ndarray | None = None
    rhythms: list[tuple[int, int, str]] | None = None

    @property
    def n_times(self) -> int:
        return int(self.signals.shape[-1])


@dataclass
class StreamWindows:
    """Windows of one record in one stream.

    windows : ndarray, shape (n_windows, n_channels, n_patches, patch_size), float32.
    start : ndarray, shape (n_windows,), int64, first sample of each window at ``fs``.
    channel_mask : ndarray, shape (n_windows, n_channels), bool; False where the channel was
        missing from the source and zero-filled.
    patch_mask : ndarray, shape (n_windows, n_patches), bool; False for the zero padding of a
        record's last, partial window (None: every patch is real).
    labels : per-window labels, name -> (n_windows,) int64 (an index into
        ``label_classes[name]``, -1 for no label), or None; written to ``<stream>/labels/``.
    """

    modality: str
    fs: int
    channels: list[str]
    units: str
    windows: np.ndarray
    start: np.ndarray
    channel_mask: np.ndarray
    patch_mask: np.ndarray | None = None
    labels: dict[str, np.ndarray] | None = None
    label_classes: dict[str, list[str]] | None = None

    @property
    def name(self) -> str:
        return stream_name(self.modality, self.fs)

    def __len__(self) -> int:
        return int(self.windows.shape[0])


@dataclass
class ProcessedRecord:
    """The result of processing one source record: its ``records/`` row and its windows.

    status is ``"ok"`` or a short reason the record was skipped (then ``streams`` is empty).
    labels, for paired datasets (DREAMER), maps a label name to an array aligned with the
    windows of every stream of this record (all its streams then have the same length).
    """

    record_id: str
    source: str
    path: str
    fs_original: float
    n_samples: int
    status: str
    metadata: dict[str, Any] = field(default_factory=dict)
    streams: dict[str, StreamWindows] = field(default_factory=dict)
    labels: dict[str, np.ndarray] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"
