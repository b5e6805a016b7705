"""One recording in, windows at every output rate out.

Per record, in this order (DESIGN.md, "Preprocessing defaults"):

1. Validate the band against the Nyquist frequency of the source rate and of every output rate.
   A cut-off that a requested rate cannot carry skips the *whole record* with the reason
   (``"filter: h_freq (75.0) must be less than the Nyquist frequency 50.0 (output rate 100
   Hz)"``): the store's streams then never hold a rate filtered differently from the config.
   Lower the cut-off or drop that rate to convert such records.
2. QC on the raw signals (non-finite values; flat leads and leads clipped at the rails are
   masked like missing leads, the record fails only when no lead is usable).
3. Band-pass and notch once, at the original rate, in float64 (``sosfiltfilt`` over the whole
   (C, T) array).
4. QC on the amplitude of the filtered signals.
5. ECG: leads into the canonical order (``config.leads``), missing leads zero-filled and
   flagged False in ``channel_mask``; 12 unnamed leads are placed in the Challenge's standard
   order (noted in the metadata); an ECG none of whose leads can be placed (a single ``ECG``
   channel of an EDF) is skipped with the reason (:func:`biosig_prep.dsp.leads.map_ecg_leads`).
   DREAMER's paired ECG keeps its two channels; EEG keeps the file's channels and order.
6. Polyphase resampling to each rate, then windows of ``(C, n_patches, patch_size)``, float32,
   with the tail policy (``config.tail``: the last partial window kept, zero-padded, with its
   ``patch_mask``; see :func:`biosig_prep.dsp.windows.plan_windows`).
   The anti-aliasing filter is the short one for a signal band-limited to ``h_freq``
   (:func:`biosig_prep.dsp.resample.short_fir`); a rate at which the record gives no window is
   not resampled at all (its stream is empty).
7. With int16 storage (``config.encoding``), a window value beyond the integer range of the
   modality's step skips the record with an ``encoding:`` status (never a silent wrap).

Nothing raises: every problem becomes the record's ``status`` ("ok" or a short reason), and a
record that is not "ok" has no streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from biosig_prep.config import FilterConfig, PrepConfig
from biosig_prep.datasets.dreamer import DreamerTrial
from biosig_prep.dsp.filters import apply_filter, check_band, design_filter, resolve_notch
from biosig_prep.dsp.leads import LeadMappingError, map_ecg_leads
from biosig_prep.dsp.qc import (
    AMPLITUDE_KEY,
    OK,
    check_amplitude,
    check_finite,
    check_saturation,
    clipped_leads,
    flat_leads,
    robust_amplitude,
)
from biosig_prep.dsp.resample import resample, resampled_length
from biosig_prep.dsp.windows import cut_with_tail, plan_windows
from biosig_prep.readers.rhythm import rhythm_window_labels
from biosig_prep.recording import ProcessedRecord, Recording, StreamWindows
from biosig_prep.store.codec import codec_for

__all__ = ["process_recording", "process_dreamer_trial", "UNITS"]

UNITS = {"ecg": "mV", "eeg": "µV"}


class _Skip(Exception):
    """A record-level reason to skip (becomes the status)."""


def _resolved_notch(rec: Recording, fcfg: FilterConfig) -> float | None:
    notch = resolve_notch(fcfg.notch, rec.source, rec.record_id, rec.metadata.get("line_freq"))
    if notch is not None and notch >= rec.fs / 2.0:
        if fcfg.notch == "auto":
            return None  # mains above the Nyquist frequency: nothing to remove
        raise _Skip(f"filter: notch frequency ({notch}) must be less than the Nyquist "
                    f"frequency {rec.fs / 2.0} (source rate {rec.fs:g} Hz)")
    return notch


def _check_rates(fcfg: FilterConfig, fs: float, rates: Sequence[int], modality: str) -> None:
    try:
        check_band(fcfg.l_freq, fcfg.h_freq, fs, what=f" (source rate {fs:g} Hz)")
        for rate in rates:
            if rate < fs:
                check_band(fcfg.l_freq, fcfg.h_freq, rate, what=f" (output rate {rate} Hz)")
    except ValueError as exc:
        raise _Skip(f"filter: {modality} {exc}") from None


@dataclass
class _Prepared:
    """A recording filtered at its own rate, with the place of each row in the output."""

    channels: list[str]  # output channel names
    mask: np.ndarray  # (C_out,) bool, False for missing / flat channels
    slots: np.ndarray  # (n_rows,) output channel of each row of `filtered`
    filtered: np.ndarray  # (n_rows, n_times) float64 at the original rate
    notch: float | None

    @property
    def complete(self) -> bool:
        return len(self.slots) == len(self.channels) and bool(
            np.all(self.slots == np.arange(len(self.channels))))

    def place(self, windows: np.ndarray) -> np.ndarray:
        """(N, n_rows, P, S) windows of the rows -> (N, C_out, P, S), zeros where missing."""
        if self.complete:
            return windows
        out = np.zeros((windows.shape[0], len(self.channels)) + windows.shape[2:], windows.dtype)
        out[:, self.slots] = windows
        return out


def _prepare(rec: Recording, fcfg: FilterConfig, config: PrepConfig, rates: Sequence[int],
             meta: dict[str, Any], *, canonical: bool) -> _Prepared:
    """Validate the band, map channels, QC and filter ``rec`` at its own rate."""
    if rec.signals.ndim != 2 or rec.signals.shape[0] != len(rec.channels):
        raise _Skip(f"read: signals of shape {rec.signals.shape} do not match "
                    f"{len(rec.channels)} channels")
    _check_rates(fcfg, rec.fs, rates, rec.modality)
    notch = _resolved_notch(rec, fcfg)

    if canonical:  # canonical leads in config.leads order, or a skip naming the leads
        try:
            found, note = map_ecg_leads(rec.channels, config.leads)
        except LeadMappingError as exc:
            raise _Skip(str(exc)) from None
        if note:
            meta["lead_mapping"] = note
        out_channels = list(config.leads)
        pairs = [(slot, row) for slot, row in enumerate(found) if row is not None]
        missing = [name for name, row in zip(config.leads, found, strict=True) if row is None]
        if missing:
            meta["missing_leads"] = missing
    else:  # the file's own channels, in file order
        out_channels = list(rec.channels)
        pairs = [(k, k) for k in range(len(rec.channels))]
    rows = [row for _, row in pairs]
    signals = rec.signals if rows == list(range(rec.signals.shape[0])) else rec.signals[rows]
    names = [rec.channels[row] for row in rows]

    qc = config.qc
    status = check_finite(signals, names)
    if status != OK:
        raise _Skip(status)
    rails = None if rec.adc_range is None else np.asarray(rec.adc_range)[rows]
    for kind in ("flat", "clipped"):  # a flat or clipped lead is masked like a missing one
        if kind == "flat":
            bad = flat_leads(signals, qc)
        else:
            bad, _ = clipped_leads(signals, qc, rec.fs, rails)
        if not bad.any():
            continue
        first = names[int(np.flatnonzero(bad)[0])]
        reason = (f"qc: flat lead {first}" if kind == "flat"
                  else check_saturation(signals, names, qc, rec.fs, rails))
        if qc.flat_leads == "skip":
            raise _Skip(reason)
        if bad.all():
            raise _Skip(f"qc: every lead is flat ({first}, ...)" if kind == "flat" else
                        f"qc: no usable lead: every lead is flat or clipped ({reason[4:]})")
        meta[f"{kind}_leads"] = [n for n, f in zip(names, bad, strict=True) if f]
        keep = ~bad
        pairs = [p for p, k in zip(pairs, keep, strict=True) if k]
        signals = signals[keep]
        names = [n for n, k in zip(names, keep, strict=True) if k]
        rails = None if rails is None else rails[keep]

    filtered = apply_filter(design_filter(fcfg, rec.fs, notch), signals, rec.fs)
    meta.setdefault(AMPLITUDE_KEY, {})[rec.modality] = robust_amplitude(filtered)
    status = check_amplitude(filtered, rec.modality, qc)
    if status != OK:
        raise _Skip(status)
    slots = np.array([slot for slot, _ in pairs], dtype=np.intp)
    mask = np.zeros(len(out_channels), dtype=bool)
    mask[slots] = True
    return _Prepared(channels=out_channels, mask=mask, slots=slots, filtered=filtered,
                     notch=notch)


def _plan(n_times: int, config: PrepConfig, step: int | None) -> tuple[np.ndarray, np.ndarray]:
    return plan_windows(n_times, config.n_patches, config.patch_size, step, config.pad,
                        config.tail.policy, config.tail.min_valid_fraction)


def _check_range(windows: np.ndarray, modality: str, config: PrepConfig, where: str) -> None:
    """Skip the record if a value does not fit the int16 encoding of its modality."""
    enc = config.encoding
    if enc.dtype == "float32" or not windows.size:
        return
    codec = codec_for(modality, enc.dtype, enc.steps())
    top = codec.out_of_range(windows)
    if top is not None:
        units = UNITS[modality]
        raise _Skip(f"encoding: {modality} reaches {top:.6g} {units}{where}, outside the int16 "
                    f"range ±{32767 * codec.step:g} {units} at step {codec.step:g} {units} "
                    f"(raise encoding.{modality}_step or set encoding.dtype: float32)")


def _too_short(n_times: int, fs: float, config: PrepConfig, rates: Sequence[int]) -> str:
    shortest = max(rates)  # the highest rate has the shortest window in seconds
    if config.tail.policy == "pad":
        need = max(1, int(np.ceil(config.tail.min_valid_fraction * config.n_patches - 1e-9)))
        return (f"too short: {n_times / fs:g} s gives no window at any rate (shortest "
                f"{need * config.patch_size / shortest:g} s at {shortest} Hz: {need} of "
                f"{config.n_patches} patches, tail policy pad)")
    return (f"too short: {n_times / fs:g} s is less than one window at every rate "
            f"(shortest {config.window_samples / shortest:g} s at {shortest} Hz)")


def _n_samples(rec: Recording) -> int:
    shape = getattr(rec.signals, "shape", None)
    return int(shape[-1]) if shape else 0


def process_recording(rec: Recording, config: PrepConfig) -> ProcessedRecord:
    """Filter, QC, reorder, resample and window one ECG or EEG recording.

    Returns a :class:`ProcessedRecord` with one :class:`StreamWindows` per rate in
    ``config.rates`` (``"ecg@500"``, ...; a rate at which the record is shorter than one window
    has a stream with zero windows) when the status is ``"ok"``, none otherwise.
    """
    result = ProcessedRecord(record_id=str(rec.record_id), source=str(rec.source),
                             path=str(rec.path), fs_original=float(rec.fs),
                             n_samples=_n_samples(rec), status=OK, metadata=dict(rec.metadata))
    try:
        result.streams = _process(rec, config, result.metadata)
    except _Skip as skip:
        result.status = str(skip)
    except Exception as exc:  # noqa: BLE001 - a record never stops a run
        result.status = f"error: {type(exc).__name__}: {exc}"
    if result.status != OK:
        result.streams = {}
    return result


def _process(rec: Recording, config: PrepConfig, meta: dict[str, Any]) -> dict[str, StreamWindows]:
    if rec.modality not in UNITS:
        raise _Skip(f"unsupported modality {rec.modality!r} (expected ecg or eeg)")
    fcfg = config.ecg if rec.modality == "ecg" else config.eeg
    rates = config.rates
    prep = _prepare(rec, fcfg, config, rates, meta, canonical=rec.modality == "ecg")
    meta["notch_hz"] = prep.notch

    streams: dict[str, StreamWindows] = {}
    for rate in rates:
        n_in = prep.filtered.shape[-1]
        n_out = n_in if rate == rec.fs else resampled_length(n_in, rec.fs, rate)
        starts, n_valid = _plan(n_out, config, config.window_step)
        if not len(starts):
            # no window at this rate: an empty stream, without resampling for nothing
            win = np.zeros((0, len(prep.slots), config.n_patches, config.patch_size),
                           dtype=np.float32)
            pmask = np.zeros((0, config.n_patches), dtype=bool)
        else:
            # the filtered array is ours: at the source rate it is windowed as it is, no copy
            # the band-pass already limits it to h_freq: a short anti-aliasing filter will do
            y = (prep.filtered if rate == rec.fs
                 else resample(prep.filtered, rec.fs, rate, h_freq=fcfg.h_freq))
            win, pmask = cut_with_tail(y, config.n_patches, config.patch_size, starts, n_valid)
            _check_range(win, rec.modality, config, f" at {rate} Hz")
        sw = StreamWindows(modality=rec.modality, fs=int(rate), channels=prep.channels,
                           units=UNITS[rec.modality], windows=prep.place(win), start=starts,
                           channel_mask=np.repeat(prep.mask[None, :], len(starts), axis=0),
                           patch_mask=pmask)
        if rec.rhythms is not None:  # per-window labels from rhythm annotations
            sw.labels, sw.label_classes = rhythm_window_labels(
                rec.rhythms, rec.fs, starts, n_valid * config.patch_size, rate)
        streams[sw.name] = sw
    if not any(len(s) for s in streams.values()):
        raise _Skip(_too_short(rec.n_times, rec.fs, config, rates))
    return streams


def process_dreamer_trial(trial: DreamerTrial, config: PrepConfig) -> ProcessedRecord:
    """Paired, time-aligned ``eeg@R`` and ``ecg@R`` windows of one DREAMER trial (R =
    ``config.dreamer.rate``), labelled per window.

    EEG (128 Hz) and ECG (256 Hz) are filtered at their own rates with ``config.dreamer.eeg`` /
    ``config.dreamer.ecg``, resampled to R (exact factors 25/16 and 25/32), and cut with the
    same window starts (in samples at R, so the same seconds): the window count is the smaller
    of the two modalities'. Labels (per window, int64): valence, arousal, dominance (1..5),
    subject, clip (0-based); with ``include_baseline`` also ``baseline`` (1 for windows of the
    pre-clip baseline, which come first and have negative ``start``).
    """
    d = config.dreamer
    eeg, ecg = trial.eeg, trial.ecg
    if trial.problem is not None or eeg is None or ecg is None:  # unreadable in the file
        return ProcessedRecord(record_id=trial.record_id, source="dreamer", path=trial.path,
                               fs_original=float("nan"), n_samples=0,
                               status=f"read: {trial.problem}", metadata=dict(trial.metadata))
    meta = {**trial.metadata, "eeg_fs": float(eeg.fs), "ecg_fs": float(ecg.fs),
            "ecg_n_samples": _n_samples(ecg), "ecg_scale": d.ecg_scale}
    result = ProcessedRecord(record_id=trial.record_id, source="dreamer", path=eeg.path,
                             fs_original=float(eeg.fs), n_samples=_n_samples(eeg), status=OK,
                             metadata=meta)
    try:
        streams, labels = _dreamer(trial, config, meta)
        result.streams, result.labels = streams, labels
    except _Skip as skip:
        result.status = str(skip)
    except Exception as exc:  # noqa: BLE001
        result.status = f"error: {type(exc).__name__}: {exc}"
    if result.status != OK:
        result.streams, result.labels = {}, None
    return result


def _dreamer(trial: DreamerTrial, config: PrepConfig,
             meta: dict[str, Any]) -> tuple[dict[str, StreamWindows], dict[str, np.ndarray]]:
    d = config.dreamer
    rate = d.rate
    step = None if d.step_seconds is None else int(round(d.step_seconds * rate))

    segments = [("stimuli", trial.eeg, trial.ecg)]
    if d.include_baseline:
        if trial.eeg_baseline is None or trial.ecg_baseline is None:
            raise _Skip("read: include_baseline is set but the trial has no baseline")
        segments.insert(0, ("baseline", trial.eeg_baseline, trial.ecg_baseline))

    parts: dict[str, list[np.ndarray]] = {"eeg": [], "ecg": []}
    masks: dict[str, list[np.ndarray]] = {"eeg": [], "ecg": []}
    patch_masks: list[np.ndarray] = []  # one per segment, shared by EEG and ECG
    starts_all: list[np.ndarray] = []
    is_baseline: list[np.ndarray] = []
    for name, eeg, ecg in segments:
        prepared: dict[str, tuple[_Prepared, np.ndarray]] = {}
        for rec, fcfg in ((eeg, d.eeg), (ecg, d.ecg)):
            part_meta: dict[str, Any] = {}
            try:
                prep = _prepare(rec, fcfg, config, [rate], part_meta, canonical=False)
            except _Skip as skip:
                raise _Skip(f"{skip} ({rec.modality} {name})" if name == "baseline"
                            else str(skip)) from None
            if "flat_leads" in part_meta:
                key = f"{rec.modality}_flat_leads" + ("_baseline" if name == "baseline" else "")
                meta[key] = part_meta["flat_leads"]
            meta[f"{rec.modality}_notch_hz"] = prep.notch
            if name == "stimuli":
                meta.setdefault(AMPLITUDE_KEY, {}).update(part_meta[AMPLITUDE_KEY])
            prepared[rec.modality] = (prep, resample(prep.filtered, rec.fs, rate))
        n_times = min(y.shape[-1] for _, y in prepared.values())
        # the same starts and valid patches for both modalities: paired windows stay aligned
        starts, n_valid = _plan(n_times, config, step)
        pmask = np.zeros((0, config.n_patches), dtype=bool)
        for modality, (prep, y) in prepared.items():
            win, pmask = cut_with_tail(y, config.n_patches, config.patch_size, starts, n_valid)
            _check_range(win, modality, config, f" ({name})")
            parts[modality].append(prep.place(win))
            masks[modality].append(np.repeat(prep.mask[None, :], len(starts), axis=0))
        patch_masks.append(pmask)
        offset = n_times if name == "baseline" else 0
        starts_all.append(starts - offset)
        is_baseline.append(np.full(len(starts), int(name == "baseline"), dtype=np.int64))

    starts = np.concatenate(starts_all)
    n = len(starts)
    if n == 0:
        seconds = trial.eeg.n_times / trial.eeg.fs
        raise _Skip(f"too short: {seconds:g} s is less than one {d.window_seconds:g} s window")
    streams: dict[str, StreamWindows] = {}
    for rec in (trial.eeg, trial.ecg):
        sw = StreamWindows(modality=rec.modality, fs=rate, channels=list(rec.channels),
                           units=UNITS[rec.modality], windows=np.concatenate(parts[rec.modality]),
                           start=starts.copy(), channel_mask=np.concatenate(masks[rec.modality]),
                           patch_mask=np.concatenate(patch_masks))
        streams[sw.name] = sw
    labels = {k: np.full(n, int(v), dtype=np.int64) for k, v in trial.scores.items()}
    labels["subject"] = np.full(n, trial.subject, dtype=np.int64)
    labels["clip"] = np.full(n, trial.clip, dtype=np.int64)
    if d.include_baseline:
        labels["baseline"] = np.concatenate(is_baseline)
    meta["n_windows"] = n
    return streams, labels
