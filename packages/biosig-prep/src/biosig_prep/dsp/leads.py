"""Canonical 12-lead order: match lead names case-insensitively, zero-fill what is missing.

A record's leads are matched to ``I, II, III, aVR, aVL, aVF, V1..V6`` by a normalised name
(``"AVR"``, ``"avr"``, ``"aVR"``, ``"Lead aVR"``, ``"ECG aVR"`` all match ``aVR``; ``DI/DII/DIII``
match ``I/II/III``; ``MLII`` matches ``II``). Leads the record lacks become rows of zeros, and
the channel mask says which rows hold data (True) and which were filled (False).

A stream's channels are decided by its modality before any record is read
(:func:`stream_channels`): every (unpaired) ECG stream holds the canonical layout, whatever
the first record in sorted order looks like. :func:`map_ecg_leads` places one record's leads
into that layout: by name; or, for a record with exactly 12 *unnamed* signals (WFDB signal
descriptions are optional, so the reader names them ``ch1..ch12``), by the Challenge's
standard order ``I, II, III, aVR, aVL, aVF, V1..V6``, which every Challenge 2021 record
follows, with a note in the record's metadata; a record none of whose leads can be placed
(a single lead named ``ECG``, unnamed leads of another count) raises :class:`LeadMappingError`
and is skipped with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from biosig_prep.config import CANONICAL_LEADS

__all__ = ["CANONICAL_LEADS", "normalize_lead_name", "match_leads", "reorder_leads",
           "LeadMappingError", "is_unnamed", "map_ecg_leads", "stream_channels",
           "UNNAMED_NOTE"]

UNNAMED_NOTE = "unnamed leads mapped by the Challenge's standard 12-lead order"
_UNNAMED = re.compile(r"^(?:ch|sig|signal)?\s*\d*$", re.IGNORECASE)


class LeadMappingError(ValueError):
    """A record whose leads cannot be placed in the canonical layout."""

_PREFIX = re.compile(r"^(?:ecg|ekg|lead)[\s_\-:]*", re.IGNORECASE)
_ALIASES = {
    "di": "i", "dii": "ii", "diii": "iii", "d1": "i", "d2": "ii", "d3": "iii",
    "lead1": "i", "lead2": "ii", "lead3": "iii", "mlii": "ii", "mli": "i", "mliii": "iii",
}


def normalize_lead_name(name: str) -> str:
    """A lead name folded for matching: ``"Lead aVR"`` -> ``"avr"``, ``"DII"`` -> ``"ii"``."""
    key = _PREFIX.sub("", name.strip()).replace(" ", "").replace("_", "").lower()
    return _ALIASES.get(key, key)


def match_leads(channels: Sequence[str],
                order: Sequence[str] = CANONICAL_LEADS) -> list[int | None]:
    """For each name in ``order``, the index of the matching channel (first match), or None."""
    return list(_match_leads(tuple(channels), tuple(order)))


@lru_cache(maxsize=1024)  # a corpus has few distinct lead lists
def _match_leads(channels: tuple[str, ...], order: tuple[str, ...]) -> tuple[int | None, ...]:
    wanted = {normalize_lead_name(name): i for i, name in enumerate(order)}
    found: list[int | None] = [None] * len(order)
    for ch_index, ch_name in enumerate(channels):
        slot = wanted.get(normalize_lead_name(ch_name))
        if slot is not None and found[slot] is None:
            found[slot] = ch_index
    return tuple(found)


def reorder_leads(signals: np.ndarray, channels: Sequence[str],
                  order: Sequence[str] = CANONICAL_LEADS) -> tuple[np.ndarray, np.ndarray]:
    """Put ``signals`` (shape (n_channels, n_times)) into ``order``, zero-filling missing leads.

    Returns
    -------
    out : ndarray, shape (len(order), n_times), same dtype as ``signals``.
    mask : ndarray, shape (len(order),), bool; True where the lead came from the record.
    Channels that match no name in ``order`` are dropped.
    """
    if signals.ndim != 2 or signals.shape[0] != len(channels):
        raise ValueError(
            f"signals must have shape (n_channels={len(channels)}, n_times), got {signals.shape}")
    found = match_leads(channels, order)
    mask = np.array([i is not None for i in found], dtype=bool)
    out = np.zeros((len(order), signals.shape[1]), dtype=signals.dtype)
    if mask.any():
        src = np.array([i for i in found if i is not None])
        out[mask] = signals[src]
    return out, mask


def is_unnamed(name: str) -> bool:
    """True for a lead without a real name: ``""``, ``"ch3"``, ``"3"`` (what readers give a
    signal that has no description)."""
    return _UNNAMED.match(name.strip()) is not None


def map_ecg_leads(channels: Sequence[str], order: Sequence[str] = CANONICAL_LEADS
                  ) -> tuple[list[int | None], str | None]:
    """Where each lead of ``order`` comes from in a record with ``channels``.

    Returns ``(found, note)``: ``found[k]`` is the record's row for ``order[k]`` (None: missing,
    zero-filled); ``note`` is None, or :data:`UNNAMED_NOTE` when 12 unnamed leads were placed
    by position: position i holds ``CANONICAL_LEADS[i]`` (the Challenge's standard order),
    whatever ``order`` asks for. Raises :class:`LeadMappingError` when no lead can be placed.
    """
    found = match_leads(channels, order)
    if any(i is not None for i in found):
        return found, None
    standard = list(CANONICAL_LEADS)
    if len(channels) == len(standard) and all(is_unnamed(c) for c in channels):
        placed = match_leads(standard, order)  # by normalised name: "AVR", "v1", "Lead II"
        if any(i is not None for i in placed):
            return placed, UNNAMED_NOTE
    shown = list(channels) if len(channels) <= 4 else [*channels[:3], "..."]
    raise LeadMappingError(
        f"leads: {len(channels)} lead(s) {shown} match none of {', '.join(order)} "
        f"(and are not {len(standard)} unnamed leads in the standard order)")


def stream_channels(modality: str, record_channels: Sequence[str],
                    order: Sequence[str] = CANONICAL_LEADS, *, paired: bool = False,
                    eeg_channels: Sequence[str] | None = None) -> tuple[str, ...]:
    """The channels of a stream, fixed before any record rather than by its first record.

    An ECG stream of unpaired records holds ``order`` (the canonical 12-lead layout;
    processing places every record there or skips it). An EEG stream of unpaired records
    holds ``eeg_channels``, decided before the run from a declared montage or from all files'
    headers (:mod:`biosig_prep.dsp.montage`; processing places every record there by name or
    skips it). A paired stream (DREAMER: fixed ``ECG1, ECG2`` and its 14 electrodes) keeps
    ``record_channels``, the layout of the dataset.
    """
    if paired:
        return tuple(record_channels)
    if modality == "ecg":
        return tuple(order)
    if eeg_channels is not None:
        return tuple(eeg_channels)
    return tuple(record_channels)
