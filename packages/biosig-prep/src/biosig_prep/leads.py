"""Canonical 12-lead order: match lead names case-insensitively, zero-fill what is missing.

A record's leads are matched to ``I, II, III, aVR, aVL, aVF, V1..V6`` by a normalised name
(``"AVR"``, ``"avr"``, ``"aVR"``, ``"Lead aVR"``, ``"ECG aVR"`` all match ``aVR``; ``DI/DII/DIII``
match ``I/II/III``; ``MLII`` matches ``II``). Leads the record lacks become rows of zeros, and
the channel mask says which rows hold data (True) and which were filled (False).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from biosig_prep.config import CANONICAL_LEADS

__all__ = ["CANONICAL_LEADS", "normalize_lead_name", "match_leads", "reorder_leads"]

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
