"""Per-record quality checks. Each returns ``"ok"`` or a short reason starting with ``"qc: "``.

Two stages, because they need different signals:

* :func:`check_raw` on the signals as read (physical units, before any filter): non-finite
  values, flat leads, leads clipped at the rails (saturation: a *run* of samples at the lead's
  extreme, or at the ADC range where the header gives it, see :func:`clipped_leads`). Real
  Challenge records carry leads that are all zeros (Chapman-Ningbo: V2, V4, V6 of some
  records); with ``QCConfig.flat_leads = "mask"`` (the default) such a lead, and a clipped one,
  is treated like a missing one (zero-filled, False in ``channel_mask``, named in the record's
  metadata as ``flat_leads`` / ``clipped_leads``) and the record fails only when no lead is
  usable; ``"skip"`` fails the record ("qc: flat lead V2", "qc: saturated lead II (...)").
* :func:`check_amplitude` on the band-passed signals (baseline offsets removed): the largest
  absolute value must be plausible for the modality, neither above ``max_abs_mv`` /
  ``max_abs_uv`` nor below ``min_peak_mv`` / ``min_peak_uv`` (the PTB records with gain
  2000000/mV hold values 1000x too small).

A record that fails is recorded with its reason and gives no windows; it is never silently
dropped.

Units are checked per source as well as per record: :func:`robust_amplitude` (the 99.9th
percentile of ``|x|`` of the band-passed record, robust to a few spikes) goes into every
record's metadata (``amplitude_p999``: {modality: value}), and ``biosig-prep inspect`` reports
the median over each source's records, flagged by :func:`amplitude_flag` when it is 10x off the
typical amplitude of the declared unit (:data:`TYPICAL_P999`: ECG 1 mV, EEG 50 µV), either way:
DREAMER's ECG left in ADC counts reads ~300 "mV" and is flagged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from biosig_prep.config import QCConfig

__all__ = ["OK", "check_finite", "flat_leads", "flat_threshold", "clipped_leads", "min_clip_run",
           "check_saturation", "check_raw", "MIN_CLIP_RUN",
           "check_amplitude", "robust_amplitude", "amplitude_flag", "AMPLITUDE_KEY",
           "TYPICAL_P999", "source_amplitudes", "amplitude_lines"]

OK = "ok"
MIN_CLIP_RUN = 3  # samples: the shortest run at the extreme that counts as clipping
AMPLITUDE_KEY = "amplitude_p999"
# typical 99.9th percentile of |x| of a band-passed record, per modality (declared unit)
TYPICAL_P999 = {"ecg": 1.0, "eeg": 50.0}
_PLAUSIBLE_FACTOR = 10.0

_UNITS = {"ecg": "mV", "eeg": "µV"}


def check_finite(signals: np.ndarray, channels: Sequence[str]) -> str:
    """``"ok"`` unless a lead holds NaN or inf (``signals``: (n_channels, n_times))."""
    if signals.shape[-1] == 0:
        return "qc: no samples"
    finite = np.isfinite(signals)
    if finite.all():
        return OK
    bad = int(np.flatnonzero(~finite.all(axis=-1))[0])
    n_bad = int((~finite[bad]).sum())
    return f"qc: non-finite values in lead {channels[bad]} ({n_bad} samples)"


def flat_threshold(cfg: QCConfig, modality: str) -> float:
    """The flat-lead threshold in the modality's own unit: ``cfg.flat_std_mv`` for ECG (mV),
    ``cfg.flat_std_uv`` for EEG (µV)."""
    if modality == "ecg":
        return cfg.flat_std_mv
    if modality == "eeg":
        return cfg.flat_std_uv
    raise ValueError(f"modality must be 'ecg' or 'eeg', got {modality!r}")


def flat_leads(signals: np.ndarray, cfg: QCConfig, modality: str = "ecg") -> np.ndarray:
    """Bool (n_channels,): True where a lead's standard deviation is below the flat threshold
    of ``modality`` in its unit (:func:`flat_threshold`)."""
    return signals.std(axis=-1) < flat_threshold(cfg, modality) if signals.shape[-1] else \
        np.ones(signals.shape[0], dtype=bool)


def _longest_runs(hit: np.ndarray) -> np.ndarray:
    """Per row of the bool array ``hit`` (n_channels, n_times), the longest run of True that
    touches neither end of the record (a value held at a record's first or last samples is a
    hold or a settling amplifier, not clipping inside the record)."""
    n_ch, n = hit.shape
    out = np.zeros(n_ch, dtype=np.int64)
    rows, times = np.nonzero(hit)  # the few samples at an extreme, row by row, in time order
    if not rows.size:
        return out
    first = np.ones(rows.size, dtype=bool)  # a run starts where the row or the time jumps
    first[1:] = (rows[1:] != rows[:-1]) | (times[1:] != times[:-1] + 1)
    heads = np.flatnonzero(first)
    tails = np.append(heads[1:], rows.size) - 1
    start, stop = times[heads], times[tails] + 1
    inner = (start > 0) & (stop < n)
    np.maximum.at(out, rows[heads][inner], (stop - start)[inner])
    return out


def min_clip_run(fs: float | None, cfg: QCConfig) -> int:
    """Samples a run at the extreme must last to count as clipping: ``cfg.saturation_seconds``
    at ``fs``, at least :data:`MIN_CLIP_RUN` (without a rate: that floor)."""
    if not fs:
        return MIN_CLIP_RUN
    return max(MIN_CLIP_RUN, int(np.ceil(cfg.saturation_seconds * fs)))


def clipped_leads(signals: np.ndarray, cfg: QCConfig, fs: float | None = None,
                  rails: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Leads clipped at the rails: bool (n_channels,) and each lead's longest run (samples).

    A lead is clipped when it holds a run of consecutive samples at its own minimum or maximum
    lasting :func:`min_clip_run` (``cfg.saturation_seconds``, 40 ms by default) or more, or,
    where ``rails`` (n_channels, 2: the physical values of the ADC's lowest and highest codes,
    from the header) are known, a run of 2 or more samples at a rail. A clean signal touches
    its extreme for a sample or two per cycle (a 50 Hz tone sampled at 500 Hz: 2 samples);
    a clipped one sits there. Runs touching the first or last sample do not count (real
    PTB-XL records hold their last value for ~0.1 s, which may be the lead's minimum).
    """
    if signals.shape[-1] == 0:
        return np.zeros(signals.shape[0], dtype=bool), np.zeros(signals.shape[0], np.int64)
    lo = signals.min(axis=-1, keepdims=True)
    hi = signals.max(axis=-1, keepdims=True)
    runs = _longest_runs((signals == lo) | (signals == hi))
    clipped = runs >= min_clip_run(fs, cfg)
    if rails is not None:
        rails = np.asarray(rails, dtype=np.float64).reshape(signals.shape[0], 2)
        at_rail = (signals == rails[:, :1]) | (signals == rails[:, 1:])
        rail_runs = _longest_runs(at_rail)
        clipped |= rail_runs >= 2
        runs = np.maximum(runs, np.where(rail_runs >= 2, rail_runs, 0))
    return clipped, runs


def check_saturation(signals: np.ndarray, channels: Sequence[str], cfg: QCConfig,
                     fs: float | None = None, rails: np.ndarray | None = None) -> str:
    """``"ok"`` unless a lead is clipped (see :func:`clipped_leads`); the reason names the
    first such lead and its longest run."""
    if signals.shape[-1] == 0:
        return "qc: no samples"
    clipped, runs = clipped_leads(signals, cfg, fs, rails)
    if clipped.any():
        i = int(np.flatnonzero(clipped)[0])
        run = f"{runs[i] / fs:.2g} s" if fs else f"{runs[i]} samples"
        return f"qc: saturated lead {channels[i]} (a run of {run} at its min/max)"
    return OK


def check_raw(signals: np.ndarray, channels: Sequence[str], cfg: QCConfig,
              fs: float | None = None, rails: np.ndarray | None = None,
              modality: str = "ecg") -> str:
    """Non-finite values, flat leads and saturation, in that order, every lead counting.

    signals : ndarray, shape (n_channels, n_times), physical units, as read, sampled at ``fs``.
    (The processing applies ``cfg.flat_leads``: with ``"mask"`` a flat or clipped lead is
    masked instead of failing the record.)
    """
    status = check_finite(signals, channels)
    if status != OK:
        return status
    flat = np.flatnonzero(flat_leads(signals, cfg, modality))
    if flat.size:
        return f"qc: flat lead {channels[int(flat[0])]}"
    return check_saturation(signals, channels, cfg, fs, rails)


def check_amplitude(filtered: np.ndarray, modality: str, cfg: QCConfig) -> str:
    """Largest absolute value of the band-passed ``filtered`` (shape (n_channels, n_times)).

    ECG in mV against ``[min_peak_mv, max_abs_mv]``, EEG in µV against
    ``[min_peak_uv, max_abs_uv]``.
    """
    if modality == "ecg":
        low, high = cfg.min_peak_mv, cfg.max_abs_mv
    elif modality == "eeg":
        low, high = cfg.min_peak_uv, cfg.max_abs_uv
    else:
        raise ValueError(f"modality must be 'ecg' or 'eeg', got {modality!r}")
    if filtered.size == 0:
        return "qc: no samples"
    peak = float(np.abs(filtered).max())
    if peak > high or peak < low:
        return f"qc: implausible amplitude (max {peak:.2g} {_UNITS[modality]})"
    return OK


def robust_amplitude(filtered: np.ndarray) -> float:
    """99.9th percentile of ``|x|`` over all leads of ``filtered`` (n_channels, n_times), in
    the signal's unit, 4 significant digits; NaN for an empty record."""
    if filtered.size == 0:
        return float("nan")
    return float(f"{np.percentile(np.abs(filtered), 99.9):.4g}")


def amplitude_flag(value: float, modality: str) -> str:
    """``""`` when ``value`` (a median robust amplitude) is within 10x of the typical amplitude
    of ``modality`` in its declared unit, else a short warning naming the factor."""
    typical = TYPICAL_P999.get(modality)
    if typical is None or not np.isfinite(value):
        return ""
    unit = _UNITS[modality]
    if value > typical * _PLAUSIBLE_FACTOR:
        return (f"IMPLAUSIBLE for {unit}: {value / typical:.0f}x the typical {typical:g} {unit} "
                "(wrong units or scale?)")
    if value < typical / _PLAUSIBLE_FACTOR:
        return (f"IMPLAUSIBLE for {unit}: 1/{typical / value:.0f} of the typical {typical:g} "
                f"{unit} (wrong units or scale?)")
    return ""


def source_amplitudes(sources: Sequence[str], statuses: Sequence[str],
                      metadata: Sequence[str]) -> dict[str, dict[str, dict]]:
    """Per source and modality, the median of the ok records' robust amplitudes.

    The three sequences are the ``records/`` columns (metadata as JSON text). Returns
    ``{source: {modality: {"median", "records", "unit", "flag"}}}`` (``flag``: see
    :func:`amplitude_flag`); records without ``amplitude_p999`` (older stores) are left out.
    """
    values: dict[tuple[str, str], list[float]] = {}
    for source, status, meta in zip(sources, statuses, metadata, strict=True):
        if str(status) != OK:
            continue
        try:
            amp = json.loads(str(meta) or "{}").get(AMPLITUDE_KEY) or {}
        except (ValueError, AttributeError):
            continue
        for modality, value in amp.items():
            if isinstance(value, (int, float)) and np.isfinite(value):
                values.setdefault((str(source), modality), []).append(float(value))
    out: dict[str, dict[str, dict]] = {}
    for (source, modality), vals in sorted(values.items()):
        median = float(f"{np.median(vals):.4g}")
        out.setdefault(source, {})[modality] = {
            "median": median, "records": len(vals), "unit": _UNITS.get(modality, "?"),
            "flag": amplitude_flag(median, modality)}
    return out


def amplitude_lines(amplitudes: dict[str, dict[str, dict]]) -> list[str]:
    """Report lines for :func:`source_amplitudes` (``biosig-prep inspect``)."""
    if not amplitudes:
        return []
    lines = ["amplitude (median per-record 99.9th percentile of |x|, band-passed)"]
    for source, per in amplitudes.items():
        for modality, a in per.items():
            flag = f"  {a['flag']}" if a["flag"] else ""
            lines.append(f"  {source} {modality}: {a['median']:g} {a['unit']} "
                         f"({a['records']} records){flag}")
    return lines
