"""Readers: source files in, :class:`~biosig_prep.recording.Recording` objects out.

:func:`discover` finds the records under some paths; :func:`read_source` reads one of them.
Every problem with a file is a :class:`ReadError` whose message names the file and the problem.
"""

from __future__ import annotations

from collections.abc import Callable

from biosig_prep.datasets.dreamer import DreamerData, DreamerTrial, read_dreamer
from biosig_prep.datasets.ptbxl import read_ptbxl
from biosig_prep.errors import ReadError
from biosig_prep.readers.discover import FORMATS, SUFFIX_FORMATS, SourceFile, discover
from biosig_prep.readers.edf_reader import read_edf
from biosig_prep.readers.wfdb_reader import read_wfdb
from biosig_prep.recording import Recording

__all__ = ["FORMATS", "SUFFIX_FORMATS", "READERS", "SourceFile", "discover", "read_source",
           "ReadError", "read_wfdb",
           "read_edf", "read_dreamer", "DreamerData", "DreamerTrial"]


def _read_wfdb_source(src: SourceFile) -> list[Recording]:
    return [read_wfdb(src.path, src.record_id)]


def _read_edf_source(src: SourceFile) -> list[Recording]:
    return read_edf(src.path, src.record_id)


def _read_ptbxl_source(src: SourceFile) -> list[Recording]:
    return [read_ptbxl(src.path, src.record_id)]


def _read_dreamer_source(src: SourceFile) -> list[Recording]:
    recs: list[Recording] = []
    for trial in read_dreamer(src.path).trials():
        if trial.problem is None:  # bad trials: see DreamerTrial.problem
            recs += [trial.eeg, trial.ecg]
    return recs


# format -> reader: the one table read_source dispatches on (formats come from file suffixes,
# see biosig_prep.readers.discover.SUFFIX_FORMATS); a new format is one line here and one there
READERS: dict[str, Callable[[SourceFile], list[Recording]]] = {
    "wfdb": _read_wfdb_source,
    "edf": _read_edf_source,
    "dreamer": _read_dreamer_source,
    "ptbxl": _read_ptbxl_source,
}
assert set(READERS) == set(FORMATS)


def read_source(src: SourceFile) -> list[Recording]:
    """Read one discovered source file with the reader of its format (:data:`READERS`).

    wfdb: one ECG recording. edf: the EEG and/or the ECG recording (ids ``<id>/eeg``,
    ``<id>/ecg``). dreamer: the EEG and ECG recording of every readable trial, stimuli only
    (for paired, labelled windows use :func:`read_dreamer` and
    :func:`biosig_prep.processing.process_dreamer_trial`).

    Raises :class:`ReadError` for a file that cannot be read, whatever went wrong inside.
    """
    if src.problem:
        raise ReadError(src.path, src.problem)
    reader = READERS.get(src.format)
    if reader is None:
        raise ReadError(src.path, f"unknown format {src.format!r} (expected one of {FORMATS})")
    try:
        return reader(src)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a run
        raise ReadError(src.path, f"{type(exc).__name__}: {exc}") from exc
