"""Which channels of an EDF-family file hold ECG: the one rule the reader and the run's
channel decision share.

:func:`biosig_prep.readers.edf_reader.read_edf` splits a file's channels into its EEG and ECG
recordings by :func:`is_ecg_channel`, and :func:`biosig_prep.readers.edf_header.decide_eeg_channels`
reads the same rule off the headers alone; it lives here, below both, so that neither imports
the other for it.
"""

from __future__ import annotations

import re

__all__ = ["is_ecg_channel"]

_ECG_NAME = re.compile(r"ECG|EKG", re.IGNORECASE)


def is_ecg_channel(name: str, ch_type: str) -> bool:
    """True for an ECG channel: type ``ecg`` or a name containing ECG/EKG."""
    return ch_type == "ecg" or bool(_ECG_NAME.search(name))
