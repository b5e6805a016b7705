"""Rhythm annotations beside a WFDB record, and the per-window labels made from them.

Reading (:func:`read_rhythms`): the annotation file ``<record>.atr`` is read with
``wfdb.rdann``. A rhythm annotation is one whose auxiliary note starts with ``(``: ``(AFIB``,
``(AFL``, ``(N``, ... (the MIT-BIH convention, followed by CPSC 2021 and the MIT-BIH AF and
Long-Term AF databases). Each starts an *episode* that lasts until the next rhythm annotation,
the last one until the end of the record. Beat annotations and other notes are ignored. The
samples before the first rhythm annotation (all of them when the file holds beat annotations
only, as CPSC 2021 does for its non-AF records) are read as :data:`DEFAULT_RHYTHM` ``"N"``:
a record annotated without any rhythm change has the default rhythm. MIT-BIH records start
with a rhythm annotation at their first beat, so there the default covers a fraction of a
second.

Labelling (:func:`rhythm_window_labels`), for a window over samples ``start .. start + valid``
at its stream's rate (``valid``: the samples of its real patches; the zero padding of a last,
partial window does not count), episodes measured in seconds:

* ``af`` (classes ``["non-AF", "AF"]``): 1 when at least half of the window's valid samples lie
  inside an ``AFIB`` or ``AFL`` episode, else 0 (AF and flutter together, as the CPSC 2021 task
  and the usual AF-detection benchmarks count them).
* ``rhythm``: the rhythm that covers the largest share of the valid samples (ties: the earlier
  name in :data:`RHYTHM_CLASSES`); its value indexes :data:`RHYTHM_CLASSES` and the stream's
  ``classes`` attribute is that list cut after the last rhythm seen (``["N", "AFIB"]`` for
  CPSC 2021). Rhythm names outside the list are labelled ``"other"``.

A window's label depends only on the seconds it covers, so the labels of one record agree at
every rate.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from biosig_prep.datasets.keys import AF_CLASSES, AF_LABEL, RHYTHM_LABEL
from biosig_prep.errors import ReadError
from biosig_prep.readers.wfdb_import import import_wfdb

__all__ = ["RHYTHM_CLASSES", "DEFAULT_RHYTHM", "AF_RHYTHMS", "read_rhythms",
           "rhythm_window_labels", "cpsc2021_patient"]

# The fixed order of the rhythm classes: the common ones first, so that a store's class list
# (cut after the last rhythm it holds) is short. MIT-BIH rhythm names, then "other".
RHYTHM_CLASSES = ("N", "AFIB", "AFL", "SBR", "SVTA", "J", "B", "T", "VT", "VFL", "AB", "BII",
                  "IVR", "NOD", "P", "PREX", "other")
DEFAULT_RHYTHM = "N"
AF_RHYTHMS = frozenset({"AFIB", "AFL"})
_CPSC_NAME = re.compile(r"^data_(\d+)_(\d+)$")


def cpsc2021_patient(record_name: str) -> str | None:
    """The patient of a CPSC 2021 record name (``"data_8_2"`` -> ``"8"``), else None."""
    match = _CPSC_NAME.match(Path(record_name).name)
    return match.group(1) if match else None


def _rhythm_name(note: str) -> str | None:
    note = note.replace("\x00", "").strip()
    if not note.startswith("("):
        return None
    name = note[1:].strip()
    return name if name in RHYTHM_CLASSES else "other"


def read_rhythms(hea_path: str | os.PathLike, n_samples: int, *,
                 extension: str = "atr") -> list[tuple[int, int, str]] | None:
    """Rhythm episodes of the record whose header is ``hea_path``, or None when there is no
    ``<record>.<extension>`` file beside it.

    Returns ``[(first_sample, stop_sample, rhythm), ...]`` in time order, stop exclusive,
    covering ``0 .. n_samples`` (see the module docstring for the rule). Raises
    :class:`ReadError` naming the annotation file when it cannot be read.
    """
    hea_path = Path(hea_path)
    ann_path = hea_path.with_suffix(f".{extension}")
    if not ann_path.is_file():
        return None
    wfdb = import_wfdb()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ann = wfdb.rdann(str(hea_path.with_suffix("")), extension)
    except Exception as exc:  # noqa: BLE001 - wfdb raises many kinds; all mean "unreadable"
        raise ReadError(ann_path, f"cannot read the annotations: {type(exc).__name__}: {exc}"
                        ) from exc
    changes: list[tuple[int, str]] = []
    for sample, note in zip(np.asarray(ann.sample), ann.aux_note or [], strict=False):
        name = _rhythm_name(str(note or ""))
        if name is not None and 0 <= int(sample) < n_samples:
            changes.append((int(sample), name))
    changes.sort(key=lambda c: c[0])
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, DEFAULT_RHYTHM))
    episodes = []
    for (a, name), (b, _) in zip(changes, changes[1:] + [(n_samples, "")], strict=True):
        if b > a:
            episodes.append((a, b, name))
    return episodes


def rhythm_window_labels(episodes: list[tuple[int, int, str]], fs: float, starts: np.ndarray,
                         n_valid: np.ndarray, rate: float
                         ) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Per-window ``af`` and ``rhythm`` labels (see the module docstring for the rule).

    episodes : from :func:`read_rhythms`, in samples at ``fs`` (the source rate).
    starts : ndarray, shape (n_windows,), first sample of each window at ``rate``.
    n_valid : ndarray, shape (n_windows,), valid samples of each window at ``rate``.

    Returns (labels: name -> (n_windows,) int64, classes: name -> class names).
    """
    starts = np.asarray(starts, dtype=np.float64)
    t0 = starts / rate
    t1 = (starts + np.asarray(n_valid, dtype=np.float64)) / rate
    share = np.zeros((len(RHYTHM_CLASSES), len(starts)))
    for a, b, name in episodes:
        overlap = np.minimum(t1, b / fs) - np.maximum(t0, a / fs)
        share[RHYTHM_CLASSES.index(name)] += np.clip(overlap, 0.0, None)
    duration = np.maximum(t1 - t0, np.finfo(float).tiny)
    af_share = sum(share[RHYTHM_CLASSES.index(r)] for r in AF_RHYTHMS) / duration
    rhythm = share.argmax(axis=0).astype(np.int64) if len(starts) else np.zeros(0, np.int64)
    af = (af_share >= 0.5 - 1e-9).astype(np.int64)
    n_classes = int(rhythm.max()) + 1 if len(rhythm) else 1
    return ({AF_LABEL: af, RHYTHM_LABEL: rhythm},
            {AF_LABEL: list(AF_CLASSES), RHYTHM_LABEL: list(RHYTHM_CLASSES[:n_classes])})
