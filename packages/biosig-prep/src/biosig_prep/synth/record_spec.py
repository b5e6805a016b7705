"""One record of a synthetic Challenge corpus, as its manifest lists it (plain data).

Its own module so that both the corpus generator (:mod:`biosig_prep.synth.challenge`) and the
file writers (:mod:`biosig_prep.synth.wfdb_files`) depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RecordSpec"]


@dataclass
class RecordSpec:
    """One record of the corpus as listed in the manifest."""

    record: str
    source: str
    fs: int
    n_samples: int
    duration_s: float
    leads: list[str]
    mains_hz: int
    dx: list[str]
    hr_bpm: float
    age: int | None
    sex: str
    header: str
    mat: str | None
    gain: float = 1000.0
    header_style: str = "original"
    quirks: list[str] = field(default_factory=list)
    broken: str | None = None
    expected_status: str = "ok"  # ok | read_error | qc_error | qc_flat_lead
    expected_reason: str = ""  # e.g. "flat lead V3", "implausible amplitude"
