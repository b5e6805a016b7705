"""A synthetic ``DREAMER.mat`` in exactly the structure of the real file, with planted effects.

The real DREAMER dataset (Katsigiannis & Ramzan, "DREAMER: A Database for Emotion Recognition
Through EEG and ECG Signals From Wireless Low-cost Off-the-Shelf Devices", IEEE JBHI 22(1),
2018) ships as one MATLAB v5 file with a single struct ``DREAMER``::

    DREAMER.Data                 1x23 cell, each a 1x1 struct (MATLAB: DREAMER.Data{1,s})
        .Age                     char, e.g. '22'
        .Gender                  char, 'male' | 'female'
        .EEG.baseline            18x1 cell of (7808 x 14) double  (61 s at 128 Hz)
        .EEG.stimuli             18x1 cell of (n_k x 14) double   (clip k, 65-393 s)
        .ECG.baseline            18x1 cell of (15616 x 2) double  (61 s at 256 Hz, ADC counts)
        .ECG.stimuli             18x1 cell of (m_k x 2) double
        .ScoreValence            18x1 double, 1..5
        .ScoreArousal            18x1 double, 1..5
        .ScoreDominance          18x1 double, 1..5
    DREAMER.EEG_SamplingRate     128
    DREAMER.ECG_SamplingRate     256
    DREAMER.EEG_Electrodes       1x14 cell: AF3 F7 F3 FC5 T7 P7 O1 O2 P8 T8 FC6 F4 F8 AF4
    DREAMER.noOfSubjects         23
    DREAMER.noOfVideoSequences   18
    DREAMER.Disclaimer, .Provider, .Version, .Acknowledgement   char

so that ``scipy.io.loadmat(path)["DREAMER"][0, 0]["Data"][0, s]["EEG"][0, 0]["stimuli"][0, 0]
[k, 0]`` is clip k of subject s (samples x 14), as in the published loaders. The EEG is Emotiv
EPOC data in µV *with* the headset's DC offset (~4100 µV, ``eeg_dc_offset_uv``); the ECG is, as
in the real file, the Shimmer2 unit's raw 12-bit ADC counts (whole numbers around 2060, 0..4095,
``mV / SHIMMER_ECG_MV_PER_COUNT + SHIMMER_ECG_OFFSET_COUNTS``), so a conversion exercises the
counts-to-mV path (both as plain doubles).

Planted effects (:class:`DreamerEffects`)
-----------------------------------------
Each (subject, clip) gets latent binary states V (valence) and A (arousal), drawn independently
with probability 1/2 and *per subject* (not per clip: a per-clip-majority baseline stays near
chance unless ``clip_effect`` > 0, which makes a clip's states shared by all subjects with that
probability, demonstrating the clip-identity leak).

* valence  <- EEG alpha (8-12 Hz) amplitude on O1, O2, P7, P8: High trials have
  ``1 + strength * (alpha_gain - 1)`` times the subject's resting alpha amplitude (power ratio
  ``alpha_gain**2`` = 6.25 at strength 1, before the 1/f background's share of the band).
* arousal  <- ECG heart rate: High trials beat ``strength * (hr_high - hr_low)`` (25 bpm at
  strength 1) faster than the subject's resting rate (60-72 bpm).
* dominance <- both, ``dominance_rule``:
  - "and" (default): High iff V and A are High. Linearly separable from the two features, so a
    linear or small MLP head on concatenated embeddings can reach AUC 1, while either modality
    alone can at best rule out half of the negatives: its ceiling is AUC 5/6 ~ 0.83 (a positive
    always has the modality's feature high; 2/3 of the negatives have it low, 1/3 tie). Fusion
    then beats each single modality by a clear, robust margin. Positives are 25 % of trials.
  - "xor": High iff exactly one of V, A is High. Each modality alone is at chance (AUC 0.5) and
    fusion needs a non-linear head: the harder test (it tests the head as much as the fusion).
  - "or": High iff either is High (75 % positives; single-modality ceiling also 5/6).
  - "aligned": a time-aligned interaction that pooled embeddings cannot see. Every stimulus
    second grid of ``event_block_seconds`` (10 s: the converter's default window, 1-s patches)
    holds ``events_per_block`` EEG events (a 0.6 s, 20 Hz burst of ``eeg_event_uv`` on every
    electrode) and as many ECG events (a 0.6 s, 25 Hz burst of ``ecg_event_mv``), each centred
    in its second. High: the ECG events fall in the same seconds as the EEG events; Low: in
    other seconds. Both classes have the same number of events of each kind per window, so a
    model that averages each signal over time before fusing is at chance; one that compares the
    signals second by second is not. Drawn independently of V and A (50 % positives).
  - "heartbeat": the label lives only in sub-second EEG-ECG timing (:func:`plant_heartbeat_events`).
    Every stimulus gets one EEG event per heartbeat (a 0.25 s, 10 Hz Hann burst of
    ``hep_event_uv`` on every electrode). High: each event follows an R peak of the paired ECG by
    ``hep_lag_s`` (a heartbeat-evoked response); Low: the events follow a train with the same RR
    intervals, shuffled, from an independent random phase. Same number of events, same rhythm,
    same waveform, ECG untouched: each signal alone, and 1-s tokens of both, carry nothing of the
    label; EEG epochs averaged around the R peaks do. Drawn independently of V and A.
* Ratings are drawn consistently: High -> uniform on {3, 4, 5}, Low -> {1, 2}.
* ``effects="none"`` (or None): the signals still vary per trial (random alpha and heart-rate
  states) but the ratings are drawn independently of them, so any model should sit at AUC ~0.5.

:class:`DreamerTruth` returns the latent states, ratings, heart rates and alpha amplitudes per
(subject, clip) so tests can check what a pipeline learns against what was planted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io
from pydantic import BaseModel, ConfigDict, Field

from biosig_prep.datasets.dreamer import SHIMMER_ECG_MV_PER_COUNT, SHIMMER_ECG_OFFSET_COUNTS
from biosig_prep.synth.signals import EcgMorphology, EcgNoise, synth_ecg, synth_eeg

__all__ = [
    "DREAMER_ELECTRODES",
    "DREAMER_CLIP_SECONDS",
    "ALPHA_CHANNELS",
    "DreamerEffects",
    "mv_to_counts",
    "ecg_as_written",
    "DreamerTruth",
    "write_dreamer_mat",
    "plant_heartbeat_events",
]

DREAMER_ELECTRODES: tuple[str, ...] = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8",
                                       "T8", "FC6", "F4", "F8", "AF4")
# 18 plausible film-clip durations (s) in the real range 65-393 s (sum 3436 s: ~8,000 ten-second
# windows over 23 subjects, as in the real data)
DREAMER_CLIP_SECONDS: tuple[int, ...] = (199, 131, 187, 170, 120, 65, 160, 192, 190, 393, 158,
                                         280, 290, 168, 240, 185, 137, 171)
ALPHA_CHANNELS: tuple[str, ...] = ("O1", "O2", "P7", "P8")
_FRONTAL_BLINK = ("AF3", "AF4", "F7", "F8")
_FRONTAL_THETA = ("AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6")
EEG_FS = 128
ECG_FS = 256
ECG_LEADS = ("I", "II")  # the two Shimmer channels, modelled as limb leads I and II


class DreamerEffects(BaseModel):
    """What the synthetic ratings are driven by (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strength: float = Field(1.0, ge=0.0, le=1.0, description="0 = no effect, 1 = full effect")
    alpha_gain: float = Field(2.5, ge=1.0, description="alpha amplitude factor High/Low at strength 1")
    hr_low: float = Field(66.0, description="mean resting heart rate (bpm) of Low-arousal trials")
    hr_high: float = Field(91.0, description="mean heart rate (bpm) of High-arousal trials at strength 1")
    dominance_rule: Literal["and", "xor", "or", "aligned", "heartbeat"] = "and"
    events_per_block: int = Field(3, ge=1, description='"aligned": events per block of each signal')
    event_block_seconds: int = Field(10, ge=2, description='"aligned": the block (window) length, s')
    eeg_event_uv: float = Field(25.0, gt=0, description='"aligned": EEG burst amplitude (µV)')
    ecg_event_mv: float = Field(0.4, gt=0, description='"aligned": ECG burst amplitude (mV)')
    hep_lag_s: float = Field(0.25, ge=0.0, le=0.5, description='"heartbeat": EEG event delay after the R peak (s)')
    hep_event_uv: float = Field(20.0, gt=0, description='"heartbeat": EEG event amplitude (µV)')
    clip_effect: float = Field(0.0, ge=0.0, le=1.0,
                               description="probability that a trial's states are its clip's")


@dataclass
class DreamerTruth:
    """Ground truth of a synthetic DREAMER file; arrays are (n_subjects, n_clips)."""

    path: str
    n_subjects: int
    n_clips: int
    clip_seconds: list[float]
    baseline_seconds: float
    planted: bool
    effects: dict | None
    valence_high: np.ndarray
    arousal_high: np.ndarray
    dominance_high: np.ndarray
    score_valence: np.ndarray
    score_arousal: np.ndarray
    score_dominance: np.ndarray
    heart_rate_bpm: np.ndarray
    alpha_uv: np.ndarray  # RMS of the alpha rhythm on O1/O2/P7/P8 (µV)
    signal_alpha_high: np.ndarray  # the states the signals follow (== valence_high if planted)
    signal_hr_high: np.ndarray
    ages: list[int] = field(default_factory=list)
    genders: list[str] = field(default_factory=list)
    bytes_written: int = 0

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                           for k, v in d.items()}, indent=1)


def _resolve_effects(effects) -> DreamerEffects | None:
    if effects is None or effects == "none":
        return None
    if effects == "planted":
        return DreamerEffects()
    if isinstance(effects, DreamerEffects):
        return effects
    if isinstance(effects, dict):
        return DreamerEffects.model_validate(effects)
    raise ValueError(f"effects must be 'planted', 'none', None, a dict or DreamerEffects; "
                     f"got {effects!r}")


def _plant_aligned_events(eeg: np.ndarray, ecg: np.ndarray, aligned: bool, eff: DreamerEffects,
                          rng: np.random.Generator) -> None:
    """Add the "aligned" rule's bursts in place to one stimulus: eeg (C, n at EEG_FS), ecg
    (L, n at ECG_FS); see the module docstring."""
    block, k = eff.event_block_seconds, eff.events_per_block
    if 2 * k > block:
        raise ValueError(f"events_per_block ({k}) must be at most half of event_block_seconds ({block})")
    n_seconds = eeg.shape[1] // EEG_FS
    for b0 in range(0, n_seconds - block + 1, block):
        eeg_s = rng.choice(block, size=k, replace=False)
        ecg_s = eeg_s if aligned else rng.choice(np.setdiff1d(np.arange(block), eeg_s), size=k, replace=False)
        for secs, x, fs, f0, amp in ((eeg_s, eeg, EEG_FS, 20.0, eff.eeg_event_uv),
                                     (ecg_s, ecg, ECG_FS, 25.0, eff.ecg_event_mv)):
            t = np.arange(int(0.6 * fs)) / fs
            burst = amp * np.hanning(t.size) * np.sin(2 * np.pi * f0 * t)
            for sec in secs:
                i0 = int((b0 + sec + 0.2) * fs)
                x[:, i0 : i0 + t.size] += burst


def plant_heartbeat_events(eeg: np.ndarray, r_times: np.ndarray, locked: bool, eff: DreamerEffects,
                           rng: np.random.Generator, fs: float = EEG_FS) -> None:
    """Add the "heartbeat" rule's EEG events in place to one stimulus ``eeg`` (C, n at ``fs``);
    ``r_times``: the R peaks (s) of the paired ECG (see the module docstring)."""
    r_times = np.asarray(r_times, dtype=np.float64)
    if r_times.size == 0:
        return
    if locked:
        times = r_times + eff.hep_lag_s
    else:
        rr = np.diff(r_times) if r_times.size > 1 else np.array([1.0])
        start = rng.uniform(0.0, float(rr.mean()))
        times = start + np.concatenate([[0.0], np.cumsum(rng.permutation(rr))])[: r_times.size]
    t = np.arange(int(0.25 * fs)) / fs
    burst = eff.hep_event_uv * np.hanning(t.size) * np.sin(2 * np.pi * 10.0 * t)
    for ev in times:
        i0 = int(round(ev * fs))
        if 0 <= i0 and i0 + t.size <= eeg.shape[1]:
            eeg[:, i0 : i0 + t.size] += burst


def _cell(items: Sequence[np.ndarray]) -> np.ndarray:
    """An (n, 1) object array: written by savemat as an n x 1 cell."""
    c = np.empty((len(items), 1), dtype=object)
    for i, x in enumerate(items):
        c[i, 0] = x
    return c


def mv_to_counts(ecg_mv: np.ndarray) -> np.ndarray:
    """ECG in mV -> Shimmer2 12-bit ADC counts as the real DREAMER.mat holds them (float64
    whole numbers, clipped to 0..4095)."""
    counts = np.rint(ecg_mv / SHIMMER_ECG_MV_PER_COUNT + SHIMMER_ECG_OFFSET_COUNTS)
    return np.clip(counts, 0.0, 4095.0)


def ecg_as_written(ecg_mv: np.ndarray, units: str) -> np.ndarray:
    """The ECG as the file holds it: Shimmer2 counts (:func:`mv_to_counts`) or, for a converted
    copy, the mV themselves."""
    return mv_to_counts(ecg_mv) if units == "counts" else np.asarray(ecg_mv, dtype=np.float64)


def write_dreamer_mat(
    path: str | Path,
    n_subjects: int = 23,
    n_clips: int = 18,
    clip_seconds: float | Sequence[float] | None = None,
    baseline_seconds: float = 61.0,
    seed: int = 0,
    effects: DreamerEffects | dict | Literal["planted", "none"] | None = "planted",
    *,
    eeg_dc_offset_uv: float = 4100.0,
    compress: bool = False,
    ecg_units: Literal["counts", "mV"] = "counts",
) -> DreamerTruth:
    """Write a DREAMER.mat-format file; return its :class:`DreamerTruth`.

    Parameters
    ----------
    n_subjects, n_clips : 23 and 18 in the real data.
    clip_seconds : None = the real-like durations :data:`DREAMER_CLIP_SECONDS` (65-393 s); a
        number = every clip that long; a sequence = one duration per clip.
    baseline_seconds : the neutral clip before each film (61 s in the real data). The file's
        size is ~ n_subjects * n_clips * (clip + baseline seconds) * 2304 * 8 bytes
        (14 x 128 + 2 x 256 doubles per second): the full-size default is ~1.9 GB; tests use
        e.g. 3 subjects, clip_seconds=20, baseline_seconds=4.
    effects : "planted" (default :class:`DreamerEffects`), a :class:`DreamerEffects` or dict,
        or "none"/None for ratings independent of the signals.
    eeg_dc_offset_uv : the Emotiv DC offset present in the real EEG (0 for zero-mean EEG).
    compress : zlib-compress the MATLAB variables (smaller, much slower to write).
    ecg_units : ``"counts"`` (the distributed file: Shimmer2 ADC counts) or ``"mV"`` (the
        converted copies some groups share: the same layout, ECG as float mV).
    """
    if ecg_units not in ("counts", "mV"):
        raise ValueError(f"ecg_units must be 'counts' or 'mV', got {ecg_units!r}")
    if n_subjects < 1 or n_clips < 1:
        raise ValueError(f"n_subjects and n_clips must be >= 1, got {n_subjects}, {n_clips}")
    if clip_seconds is None:
        if n_clips > len(DREAMER_CLIP_SECONDS):
            raise ValueError(f"clip_seconds=None gives real durations for at most "
                             f"{len(DREAMER_CLIP_SECONDS)} clips; pass clip_seconds for {n_clips}")
        durs = [float(x) for x in DREAMER_CLIP_SECONDS[:n_clips]]
    elif np.ndim(clip_seconds) == 0:
        durs = [float(clip_seconds)] * n_clips
    else:
        durs = [float(x) for x in clip_seconds]
        if len(durs) != n_clips:
            raise ValueError(f"clip_seconds has {len(durs)} durations for n_clips={n_clips}")
    if min(durs) <= 0 or baseline_seconds <= 0:
        raise ValueError("clip_seconds and baseline_seconds must be positive")
    eff = _resolve_effects(effects)
    rng = np.random.default_rng(seed)
    shape = (n_subjects, n_clips)

    # latent states the signals follow
    if eff is not None and eff.clip_effect > 0:
        clip_v = rng.random(n_clips) < 0.5
        clip_a = rng.random(n_clips) < 0.5
        follow = rng.random(shape) < eff.clip_effect
        sig_v = np.where(follow, clip_v[None, :], rng.random(shape) < 0.5)
        follow = rng.random(shape) < eff.clip_effect
        sig_a = np.where(follow, clip_a[None, :], rng.random(shape) < 0.5)
    else:
        sig_v = rng.random(shape) < 0.5
        sig_a = rng.random(shape) < 0.5
    if eff is not None:
        val_hi, aro_hi = sig_v, sig_a
        rule = eff.dominance_rule
        if rule in ("aligned", "heartbeat"):
            dom_hi = np.random.default_rng([seed, 7]).random(shape) < 0.5
        else:
            dom_hi = {"and": val_hi & aro_hi, "xor": val_hi ^ aro_hi, "or": val_hi | aro_hi}[rule]
        event_rng = np.random.default_rng([seed, 8])
        strength, alpha_gain = eff.strength, eff.alpha_gain
        hr_low, hr_high = eff.hr_low, eff.hr_high
    else:  # ratings unrelated to the signals
        val_hi, aro_hi, dom_hi = (rng.random(shape) < 0.5 for _ in range(3))
        strength, alpha_gain, hr_low, hr_high = 1.0, DreamerEffects().alpha_gain, 66.0, 91.0

    def scores(hi: np.ndarray) -> np.ndarray:
        return np.where(hi, rng.integers(3, 6, shape), rng.integers(1, 3, shape))

    s_val, s_aro, s_dom = scores(val_hi), scores(aro_hi), scores(dom_hi)

    ch = list(DREAMER_ELECTRODES)
    alpha_mask = np.array([c in ALPHA_CHANNELS for c in ch])
    blink_mask = np.array([c in _FRONTAL_BLINK for c in ch])
    theta_mask = np.array([c in _FRONTAL_THETA for c in ch])
    ages = [int(a) for a in rng.integers(22, 34, n_subjects)]
    genders = ["male" if g else "female" for g in rng.random(n_subjects) < 0.6]
    hr = np.zeros(shape)
    alpha = np.zeros(shape)
    data = np.empty((1, n_subjects), dtype=object)
    for s in range(n_subjects):
        base_hr = float(rng.uniform(hr_low - 6.0, hr_low + 6.0))
        base_alpha = float(rng.uniform(4.0, 7.0))
        dc = eeg_dc_offset_uv + rng.normal(0.0, 60.0, len(ch)) if eeg_dc_offset_uv else 0.0
        r_mv = float(rng.uniform(0.8, 1.5))
        eeg_b, eeg_s, ecg_b, ecg_s = [], [], [], []
        for k in range(n_clips):
            hr[s, k] = base_hr + strength * (hr_high - hr_low) * sig_a[s, k] + rng.normal(0, 2.0)
            alpha[s, k] = (base_alpha * (1.0 + strength * (alpha_gain - 1.0) * sig_v[s, k])
                           * float(np.exp(rng.normal(0.0, 0.08))))
            for secs, hr_k, alpha_k, eeg_out, ecg_out in (
                (baseline_seconds, base_hr + rng.normal(0, 1.5), base_alpha, eeg_b, ecg_b),
                (durs[k], hr[s, k], alpha[s, k], eeg_s, ecg_s),
            ):
                n_eeg = int(round(secs * EEG_FS))
                bands = {
                    "delta": 4.0,
                    "theta": np.where(theta_mask, 3.5, 2.0),
                    "alpha": np.where(alpha_mask, alpha_k, 0.3 * base_alpha),
                    "beta": 2.5,
                    "gamma": 1.0,
                }
                eeg = synth_eeg(EEG_FS, n_eeg, len(ch), rng=rng, background_uv=8.0,
                                bands_uv=bands, blinks=blink_mask, mains_hz=50.0, mains_uv=0.5,
                                dc_offset_uv=dc, drift_uv=15.0)
                eeg_out.append(np.ascontiguousarray(eeg.T))
                n_ecg = int(round(secs * ECG_FS))
                heartbeat = eff is not None and eff.dominance_rule == "heartbeat" and eeg_out is eeg_s
                ecg = synth_ecg(ECG_FS, n_ecg, rng=rng, hr_bpm=float(hr_k),
                                morph=EcgMorphology(r_mv=r_mv, axis_jitter_deg=4.0),
                                mains_hz=50.0, leads=ECG_LEADS, hrv=0.03,
                                noise=EcgNoise(baseline_mv=0.1, mains_mv=0.02, emg_mv=0.01,
                                               white_mv=0.004), return_beats=heartbeat)
                if heartbeat:
                    ecg, r_times, _ = ecg
                    plant_heartbeat_events(eeg, r_times, bool(dom_hi[s, k]), eff, event_rng)
                    eeg_out[-1] = np.ascontiguousarray(eeg.T)
                if eff is not None and eff.dominance_rule == "aligned" and eeg_out is eeg_s:
                    _plant_aligned_events(eeg, ecg, bool(dom_hi[s, k]), eff, event_rng)
                    eeg_out[-1] = np.ascontiguousarray(eeg.T)
                ecg_out.append(np.ascontiguousarray(ecg_as_written(ecg, ecg_units).T))
        data[0, s] = {
            "Age": str(ages[s]),
            "Gender": genders[s],
            "EEG": {"baseline": _cell(eeg_b), "stimuli": _cell(eeg_s)},
            "ECG": {"baseline": _cell(ecg_b), "stimuli": _cell(ecg_s)},
            "ScoreValence": s_val[s].astype(float).reshape(-1, 1),
            "ScoreArousal": s_aro[s].astype(float).reshape(-1, 1),
            "ScoreDominance": s_dom[s].astype(float).reshape(-1, 1),
        }
    electrodes = np.empty((1, len(ch)), dtype=object)
    for i, c in enumerate(ch):
        electrodes[0, i] = c
    dreamer = {
        "Data": data,
        "EEG_SamplingRate": float(EEG_FS),
        "ECG_SamplingRate": float(ECG_FS),
        "EEG_Electrodes": electrodes,
        "noOfSubjects": float(n_subjects),
        "noOfVideoSequences": float(n_clips),
        "Disclaimer": "SYNTHETIC DATA generated by biosig_prep.synth.dreamer in the structure of "
                      "DREAMER.mat; no real recordings. Ratings follow planted effects.",
        "Provider": "biosig-prep synth (structure after Katsigiannis & Ramzan, IEEE JBHI 2018)",
        "Version": "synthetic-1.0",
        "Acknowledgement": "Cite S. Katsigiannis and N. Ramzan, DREAMER, IEEE JBHI 22(1) 2018, "
                       "when using the real dataset.",
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"DREAMER": dreamer}, do_compression=compress, oned_as="column")
    return DreamerTruth(
        path=str(path), n_subjects=n_subjects, n_clips=n_clips, clip_seconds=durs,
        baseline_seconds=float(baseline_seconds), planted=eff is not None,
        effects=None if eff is None else eff.model_dump(),
        valence_high=val_hi, arousal_high=aro_hi, dominance_high=dom_hi,
        score_valence=s_val, score_arousal=s_aro, score_dominance=s_dom,
        heart_rate_bpm=hr, alpha_uv=alpha, signal_alpha_high=sig_v, signal_hr_high=sig_a,
        ages=ages, genders=genders, bytes_written=path.stat().st_size,
    )
