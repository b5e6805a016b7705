"""Synthetic data in the exact file formats of the real datasets (no internet needed).

* :func:`write_challenge_corpus`: a PhysioNet/CinC Challenge 2021-style ECG corpus (WFDB
  ``.hea`` + MATLAB v4 ``.mat``), mixed sources and rates, real-world quirks and broken files,
  listed in a ``manifest.json``.
* :func:`write_dreamer_mat`: a ``DREAMER.mat``-structured file (EEG 14 ch at 128 Hz, ECG 2 ch
  at 256 Hz, ratings 1-5) with planted, documented effects (:class:`DreamerEffects`,
  :class:`DreamerTruth`).
* :mod:`biosig_prep.synth.signals`: the ECG and EEG signal models behind both;
  :mod:`biosig_prep.synth.wfdb_files`: the ``.mat`` and ``.hea`` files of a Challenge record.

The same commands that read these files read the real ones.
"""

from biosig_prep.synth.challenge import (
    BROKEN_KINDS,
    QUIRKS,
    SOURCES,
    load_manifest,
    write_challenge_corpus,
)
from biosig_prep.synth.dreamer import DreamerEffects, DreamerTruth, write_dreamer_mat
from biosig_prep.synth.wfdb_files import write_mat_v4

__all__ = [
    "BROKEN_KINDS",
    "QUIRKS",
    "SOURCES",
    "DreamerEffects",
    "DreamerTruth",
    "load_manifest",
    "write_challenge_corpus",
    "write_dreamer_mat",
    "write_mat_v4",
]
