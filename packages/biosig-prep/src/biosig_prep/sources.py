"""Which dataset a record comes from, and the mains frequency where it was recorded.

The PhysioNet/CinC Challenge 2021 names every record with a prefix that identifies its source
(``E07500`` is Georgia, ``HR06000`` is PTB-XL, ...). This module holds that table, in one
place: the WFDB reader uses it to fill :attr:`Recording.source`, and the notch filter uses it
to resolve ``notch="auto"`` to 50 or 60 Hz.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SourceInfo", "CHALLENGE_SOURCES", "SOURCES", "DEFAULT_MAINS_HZ", "challenge_source",
           "mains_frequency"]

DEFAULT_MAINS_HZ = 50.0


@dataclass(frozen=True)
class SourceInfo:
    """A source dataset: its short name, where it was recorded, and its mains frequency."""

    name: str
    country: str
    mains_hz: float


# Challenge 2021 record-name prefixes (Reyna et al. 2021, "Will Two Do?", Table 1).
CHALLENGE_SOURCES: dict[str, SourceInfo] = {
    "A": SourceInfo("cpsc2018", "China", 50.0),
    "Q": SourceInfo("cpsc2018-extra", "China", 50.0),
    "I": SourceInfo("incart", "Russia", 50.0),
    "S": SourceInfo("ptb", "Germany", 50.0),
    "HR": SourceInfo("ptb-xl", "Germany", 50.0),
    "E": SourceInfo("georgia", "USA", 60.0),
    "JS": SourceInfo("chapman-ningbo", "China", 50.0),
}

# Every source name we know, Challenge or not (``source`` of a Recording -> its info).
SOURCES: dict[str, SourceInfo] = {info.name: info for info in CHALLENGE_SOURCES.values()}
SOURCES["dreamer"] = SourceInfo("dreamer", "United Kingdom", 50.0)
SOURCES["cpsc2021"] = SourceInfo("cpsc2021", "China", 50.0)

_CHALLENGE_NAME = re.compile(r"^([A-Za-z]+)(\d+)$")


def challenge_source(record_name: str) -> SourceInfo | None:
    """The Challenge source of a record name (``"HR06000"`` -> ptb-xl), or None if unknown.

    Only the last path component counts, and the name must be letters followed by digits.
    """
    name = record_name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _CHALLENGE_NAME.match(name)
    if match is None:
        return None
    return CHALLENGE_SOURCES.get(match.group(1).upper())


def mains_frequency(source: str | None, record_id: str | None = None) -> float:
    """Mains frequency (Hz) for ``notch="auto"``: from the source name, else from the record id
    (Challenge prefix), else :data:`DEFAULT_MAINS_HZ` (50 Hz)."""
    if source and source in SOURCES:
        return SOURCES[source].mains_hz
    if record_id:
        info = challenge_source(record_id)
        if info is not None:
            return info.mains_hz
    return DEFAULT_MAINS_HZ
