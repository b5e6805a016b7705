"""Physiology-like signal models: 12-lead ECG from a moving cardiac dipole, and scalp EEG.

ECG
---
Each beat is a sum of Gaussian waves (P, Q, R, S, R', T) in the spirit of McSharry et al.,
"A dynamical model for generating synthetic electrocardiogram signals", IEEE TBME 50(3), 2003,
but written directly in time rather than as an ODE: wave ``k`` of beat ``j`` contributes
``a_jk * u_jk * exp(-(t - t_j - theta_jk)**2 / (2 * b_jk**2))`` to a 3-D cardiac dipole, where
``u_jk`` is the wave's direction (x to the patient's left, y inferior, z anterior). The leads are
projections of that dipole:

* leads I, II and V1-V6 are "measured": projections plus their own noise (baseline wander < 0.5
  Hz, powerline at the mains frequency, EMG-like broadband noise);
* III, aVR, aVL and aVF are *derived* from the noisy I and II exactly as an electrocardiograph
  does (Einthoven/Goldberger): III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2.

Beat times come from an RR series with heart-rate variability (LF ~0.1 Hz and respiratory
~0.25 Hz modulation plus jitter); atrial fibrillation gives irregular RR and fibrillatory waves
instead of P waves; premature atrial/ventricular beats (PAC/PVC), first-degree AV block and left
or right bundle-branch block change the per-beat templates. Amplitudes are in mV (R ~ 1 mV).

EEG
---
A 1/f^alpha background plus band-limited rhythms (delta, theta, alpha, beta, gamma), generated in
the frequency domain, each component scaled to an exact RMS amplitude in µV per channel, so that
band powers are controllable per channel; optional eye blinks on frontal channels, a slow drift,
mains interference and a DC offset (the Emotiv EPOC of DREAMER stores ~4100 µV of DC offset).

Everything is vectorised with numpy; a random ``numpy.random.Generator`` drives all randomness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "LEADS_12",
    "DERIVED_LEADS",
    "EEG_BANDS",
    "EcgNoise",
    "EcgMorphology",
    "beat_times",
    "ecg_dipole",
    "synth_ecg",
    "derive_limb_leads",
    "synth_eeg",
    "band_limited_noise",
    "pink_noise",
]

LEADS_12: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                             "V1", "V2", "V3", "V4", "V5", "V6")
DERIVED_LEADS: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")
_MEASURED: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")

EEG_BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 12.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}


# ----------------------------------------------------------------------------------------------
# ECG: lead geometry and beat templates
# ----------------------------------------------------------------------------------------------

def _unit(v: Sequence[float]) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


def _lead_vectors() -> dict[str, np.ndarray]:
    """Lead vectors of the measured leads in (x left, y inferior, z anterior)."""
    vecs = {
        "I": np.array([1.0, 0.0, 0.0]),
        "II": np.array([np.cos(np.pi / 3), np.sin(np.pi / 3), 0.0]),
    }
    # precordial leads: horizontal-plane angle from +x towards +z, small inferior part, gain
    for name, deg, y, gain in (("V1", 115, 0.05, 1.1), ("V2", 95, 0.05, 1.5),
                               ("V3", 75, 0.10, 1.6), ("V4", 55, 0.15, 1.5),
                               ("V5", 30, 0.20, 1.3), ("V6", 5, 0.25, 1.0)):
        r = np.deg2rad(deg)
        vecs[name] = gain * _unit([np.cos(r), y, np.sin(r)])
    return vecs


_LEAD_VECTORS = _lead_vectors()
_MEASURED_MATRIX = np.stack([_LEAD_VECTORS[n] for n in _MEASURED])  # (8, 3)

# wave order of the per-beat templates
_WAVES = ("P", "Q", "R", "S", "Rp", "T1", "T2")
_K = len(_WAVES)


@dataclass(frozen=True)
class EcgNoise:
    """Noise levels of a synthetic ECG (mV), per measured lead.

    baseline_mv : amplitude of baseline wander (sum of sinusoids below 0.5 Hz).
    mains_mv : amplitude of powerline interference at ``mains_hz`` (and a weak 2nd harmonic).
    emg_mv : RMS of EMG-like noise (white noise high-passed above ~20 Hz, in bursts).
    white_mv : RMS of white measurement noise.
    """

    baseline_mv: float = 0.15
    mains_mv: float = 0.04
    emg_mv: float = 0.015
    white_mv: float = 0.005

    def scaled(self, factor: float) -> EcgNoise:
        return EcgNoise(self.baseline_mv * factor, self.mains_mv * factor,
                        self.emg_mv * factor, self.white_mv * factor)


@dataclass(frozen=True)
class EcgMorphology:
    """Per-record morphology: rhythm/conduction conditions and global amplitude.

    conditions : subset of {"af", "iavb", "lbbb", "rbbb", "pac", "pvc"}.
    r_mv : amplitude scale of the R wave along its own axis (R in lead II ~ r_mv * 0.9).
    axis_jitter_deg : random rotation of every wave direction (per record), in degrees.
    ectopic_fraction : fraction of beats that are premature when "pac"/"pvc" is set.
    """

    conditions: frozenset[str] = field(default_factory=frozenset)
    r_mv: float = 1.2
    axis_jitter_deg: float = 12.0
    ectopic_fraction: float = 0.12


def _templates(cond: frozenset[str]) -> dict[str, np.ndarray]:
    """Wave parameters for the three beat types (0 normal, 1 PAC, 2 PVC).

    Returns arrays of shape (3, K): ``offset`` (s, relative to the R peak at RR = 1 s; P and T
    offsets scale with sqrt(RR) as in Bazett's QT correction), ``width`` (s), ``amp`` (mV) and
    ``dir`` (3, K, 3) unit directions.
    """
    off = np.zeros((3, _K))
    wid = np.full((3, _K), 0.01)
    amp = np.zeros((3, _K))
    dirs = np.zeros((3, _K, 3))
    p_dir, q_dir = _unit([0.5, 0.8, 0.1]), _unit([-0.45, 0.3, 0.85])
    r_dir, s_dir = _unit([0.55, 0.65, -0.35]), _unit([-0.35, -0.45, -0.8])
    t_dir = _unit([0.6, 0.5, 0.35])
    # normal beat:        P      Q       R     S      R'    T1     T2
    off[0] = (-0.17, -0.030, 0.0, 0.032, 0.07, 0.25, 0.31)
    wid[0] = (0.025, 0.008, 0.011, 0.010, 0.012, 0.060, 0.035)
    amp[0] = (0.12, 0.18, 1.0, 0.32, 0.0, 0.18, 0.17)
    dirs[0] = (p_dir, q_dir, r_dir, s_dir, _unit([-0.5, 0.0, 0.85]), t_dir, t_dir)
    if "iavb" in cond:
        off[0, 0] = -0.29
    if "af" in cond:
        amp[0, 0] = 0.0
    if "lbbb" in cond:
        wid[0, 1:4] = (0.012, 0.028, 0.024)
        amp[0, 1] = 0.0
        dirs[0, 2] = _unit([0.8, 0.2, -0.55])
        dirs[0, 5] = dirs[0, 6] = _unit([-0.6, -0.2, 0.4])  # discordant T
    if "rbbb" in cond:
        amp[0, 4] = 0.55
        wid[0, 3] = 0.016
        off[0, 4] = 0.075
    # premature atrial beat: abnormal (low, retrograde-ish) P, normal QRS
    off[1], wid[1], amp[1], dirs[1] = off[0], wid[0], amp[0], dirs[0]
    off[1, 0], amp[1, 0] = -0.14, 0.10
    dirs[1, 0] = _unit([0.3, -0.7, 0.2])
    # premature ventricular beat: no P, wide bizarre QRS, discordant T
    off[2] = (0.0, -0.04, 0.0, 0.05, 0.0, 0.26, 0.32)
    wid[2] = (0.02, 0.015, 0.032, 0.030, 0.02, 0.070, 0.045)
    amp[2] = (0.0, 0.2, 1.5, 0.6, 0.0, 0.30, 0.15)
    dirs[2] = (p_dir, q_dir, _unit([-0.55, 0.6, 0.6]), _unit([0.5, -0.4, -0.6]), r_dir,
               _unit([0.5, -0.5, -0.5]), _unit([0.5, -0.5, -0.5]))
    return {"offset": off, "width": wid, "amp": amp, "dir": dirs}


def _rotation(rng: np.random.Generator, deg: float) -> np.ndarray:
    """A random rotation matrix by small angles (deg standard deviation) about x, y, z."""
    ax, ay, az = np.deg2rad(rng.normal(0.0, deg, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def beat_times(duration_s: float, hr_bpm: float, rng: np.random.Generator, *,
               hrv: float = 0.04, rhythm: str = "sinus", ectopic: str | None = None,
               ectopic_fraction: float = 0.12, margin_s: float = 2.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s) and beat types (0 normal, 1 PAC, 2 PVC) covering [-margin, duration+margin].

    rhythm "sinus": RR = 60/hr * (1 + LF (0.1 Hz) + respiratory (0.25 Hz) modulation + jitter),
    ``hrv`` the relative size of that modulation; rhythm "af": irregularly irregular RR
    (log-normal, sd 0.18). ``ectopic`` "pac"/"pvc" makes ``ectopic_fraction`` of the beats
    premature (coupling 0.65 RR) with a pause after (full compensatory for PVC).
    """
    rr0 = 60.0 / hr_bpm
    total = duration_s + 2 * margin_s
    n = int(np.ceil(total / (0.6 * rr0))) + 8
    if rhythm == "af":
        rr = rr0 * np.exp(rng.normal(-0.5 * 0.18**2, 0.18, n))
    else:
        t_approx = np.arange(n) * rr0
        ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
        mod = (hrv * np.sin(2 * np.pi * 0.1 * t_approx + ph1)
               + 0.6 * hrv * np.sin(2 * np.pi * 0.25 * t_approx + ph2))
        rr = rr0 * (1.0 + mod + rng.normal(0.0, 0.25 * hrv, n))
    rr = np.maximum(rr, 0.27)
    kinds = np.zeros(n, dtype=np.int8)
    if ectopic in ("pac", "pvc") and ectopic_fraction > 0:
        k = 1 if ectopic == "pac" else 2
        cand = np.arange(2, n - 2)
        chosen = cand[rng.random(cand.size) < ectopic_fraction]
        chosen = chosen[np.concatenate([[True], np.diff(chosen) > 2])] if chosen.size else chosen
        inside = chosen[(np.cumsum(rr)[chosen] > margin_s + 0.5)
                        & (np.cumsum(rr)[chosen] < margin_s + duration_s - 0.5)]
        if inside.size == 0 and duration_s >= 4 * rr0:  # at least one in the record
            c = int(np.searchsorted(np.cumsum(rr), margin_s + duration_s / 2))
            inside = np.array([max(c, 2)])
        for c in inside:
            base = rr[c]
            rr[c] = 0.65 * base
            rr[c + 1] = (2.0 * base - rr[c]) if k == 2 else 1.1 * base
            kinds[c] = k
    t = np.cumsum(rr) - margin_s
    keep = t <= duration_s + margin_s
    return t[keep], kinds[keep]


def ecg_dipole(t: np.ndarray, beats: np.ndarray, kinds: np.ndarray, morph: EcgMorphology,
               rng: np.random.Generator, *, chunk_beats: int = 512) -> np.ndarray:
    """Cardiac dipole, shape (3, n_times), in mV, for sample times ``t`` (s) and R peaks ``beats``.

    ``t`` must be uniformly sampled (``t[k] = t[0] + k / fs``). Every beat is rendered on a
    window of -0.5 s to +0.9 s around its R peak and the windows are summed (exact
    superposition, whatever the rate). Per-beat amplitudes jitter by ~5 %; every wave direction
    is rotated by one per-record random rotation (electrical axis variation).
    """
    tpl = _templates(morph.conditions)
    rot = _rotation(rng, morph.axis_jitter_deg)
    n = t.size
    out = np.zeros((3, n))
    m = beats.size
    if n == 0 or m == 0:
        return out
    fs = 1.0 / (t[1] - t[0]) if n > 1 else 1.0
    rr = np.diff(beats, prepend=beats[0] - (beats[1] - beats[0] if m > 1 else 1.0))
    scale = np.sqrt(np.clip(rr, 0.3, 2.0))[:, None]
    # per-beat parameters (M, K): P and T offsets scale with sqrt(RR) (Bazett)
    off = tpl["offset"][kinds].copy()
    off[:, [5, 6]] *= scale
    off[:, [0]] *= np.clip(scale, 0.85, 1.1)
    wid = tpl["width"][kinds].copy()
    wid[:, [5, 6]] *= np.clip(scale, 0.7, 1.2)
    amp = tpl["amp"][kinds] * morph.r_mv * (1.0 + 0.05 * rng.standard_normal((m, _K)))
    vec = amp[:, :, None] * (tpl["dir"][kinds] @ rot.T)  # (M, K, 3)
    inv2w2 = 1.0 / (2.0 * wid**2)
    rel = np.arange(int(np.floor(-0.5 * fs)), int(np.ceil(0.9 * fs)) + 1)  # window, samples
    for b0 in range(0, m, chunk_beats):
        sl = slice(b0, b0 + chunk_beats)
        first = np.rint((beats[sl] - t[0]) * fs).astype(np.int64)  # sample nearest the R peak
        idx = first[:, None] + rel[None, :]  # (B, W)
        dt = t[0] + idx / fs - beats[sl, None]  # (B, W) seconds from the R peak
        g = np.exp(-((dt[:, :, None] - off[sl, None, :]) ** 2) * inv2w2[sl, None, :])  # (B,W,K)
        contrib = np.matmul(g, vec[sl])  # (B, W, 3)
        ok = (idx >= 0) & (idx < n)
        flat = idx[ok]
        sel = contrib[ok]  # (n_ok, 3)
        for c in range(3):
            out[c] += np.bincount(flat, weights=sel[:, c], minlength=n)
    return out


def derive_limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """Einthoven/Goldberger: III, aVR, aVL, aVF from leads I and II (any shape, same units)."""
    return {
        "III": lead_ii - lead_i,
        "aVR": -(lead_i + lead_ii) / 2.0,
        "aVL": lead_i - lead_ii / 2.0,
        "aVF": lead_ii - lead_i / 2.0,
    }


def _band_noise_fft(n: int, fs: float, lo: float, hi: float, rng: np.random.Generator,
                    n_rows: int) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz (cosine-tapered edges), unit RMS per row."""
    spec = rng.standard_normal((n_rows, n // 2 + 1)) + 1j * rng.standard_normal((n_rows, n // 2 + 1))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    edge = max(0.15 * (hi - lo), 2.0 * fs / max(n, 1))
    w = np.clip((f - (lo - edge)) / edge, 0, 1) * np.clip(((hi + edge) - f) / edge, 0, 1)
    w = np.sin(0.5 * np.pi * w) ** 2
    x = np.fft.irfft(spec * w, n=n, axis=-1)
    rms = np.sqrt(np.mean(x**2, axis=-1, keepdims=True))
    return x / np.where(rms > 0, rms, 1.0)


def synth_ecg(fs: float, n_samples: int, *, rng: np.random.Generator, hr_bpm: float = 70.0,
              morph: EcgMorphology | None = None, mains_hz: float | None = 50.0,
              noise: EcgNoise | None = None, leads: Sequence[str] = LEADS_12, hrv: float = 0.04,
              return_beats: bool = False):
    """A synthetic multi-lead ECG in mV.

    Parameters
    ----------
    fs : sampling rate (Hz); n_samples : length.
    hr_bpm : mean heart rate; ``hrv`` relative RR modulation (sinus rhythm).
    morph : conditions and amplitude (default: normal sinus beats, R ~ 1.2 mV).
    mains_hz : powerline frequency (50 or 60), None for none.
    noise : noise levels (default :class:`EcgNoise`).
    leads : names from :data:`LEADS_12`, in the order wanted.

    Returns
    -------
    signals : ndarray, shape (len(leads), n_samples), float64, mV. Limb leads III/aVR/aVL/aVF are
        derived from the noisy I and II, so Einthoven's law holds exactly.
    (signals, r_peak_times, beat_kinds) if ``return_beats``.
    """
    morph = morph or EcgMorphology()
    noise = noise or EcgNoise()
    cond = morph.conditions
    duration = n_samples / fs
    ectopic = "pvc" if "pvc" in cond else ("pac" if "pac" in cond else None)
    beats, kinds = beat_times(duration, hr_bpm, rng, hrv=hrv,
                              rhythm="af" if "af" in cond else "sinus", ectopic=ectopic,
                              ectopic_fraction=morph.ectopic_fraction)
    t = np.arange(n_samples) / fs
    dip = ecg_dipole(t, beats, kinds, morph, rng)
    if "af" in cond:  # fibrillatory waves, 4-9 Hz, mostly atrial (inferior/anterior) direction
        f_wave = 0.05 * _band_noise_fft(n_samples, fs, 4.0, 9.0, rng, 1)[0]
        dip += np.outer(_unit([0.2, 0.7, 0.6]), f_wave)
    unknown = [name for name in leads if name not in LEADS_12]
    if unknown:
        raise ValueError(f"unknown ECG lead(s) {unknown}; choose from {list(LEADS_12)}")
    # only the measured leads needed (I and II whenever a derived limb lead is asked for)
    need = [name for name in _MEASURED
            if name in leads or (name in ("I", "II") and set(leads) & set(DERIVED_LEADS))]
    rows = [_MEASURED.index(name) for name in need]
    meas = _MEASURED_MATRIX[rows] @ dip  # (len(need), n)
    meas += _ecg_noise(fs, n_samples, rng, noise, mains_hz, meas.shape[0])
    lead_map = dict(zip(need, meas, strict=True))
    if "I" in lead_map and "II" in lead_map:
        lead_map.update(derive_limb_leads(lead_map["I"], lead_map["II"]))
    sig = np.stack([lead_map[name] for name in leads])
    if return_beats:
        inside = (beats >= 0) & (beats < duration)
        return sig, beats[inside], kinds[inside]
    return sig


def _ecg_noise(fs: float, n: int, rng: np.random.Generator, noise: EcgNoise,
               mains_hz: float | None, rows: int) -> np.ndarray:
    """Baseline wander + powerline + EMG bursts + white noise, shape (rows, n), mV."""
    t = np.arange(n) / fs
    out = np.zeros((rows, n))
    if n == 0:
        return out
    if noise.baseline_mv > 0:
        # slow components evaluated on a 20 Hz grid, then interpolated (they are < 0.5 Hz)
        tc = np.arange(0.0, n / fs + 0.1, 0.05)
        freqs = rng.uniform(0.05, 0.45, (rows, 3, 1))
        phases = rng.uniform(0, 2 * np.pi, (rows, 3, 1))
        amps = noise.baseline_mv * rng.uniform(0.3, 1.0, (rows, 3, 1)) / 1.7
        slow = (amps * np.sin(2 * np.pi * freqs * tc + phases)).sum(axis=1)
        # a respiratory component shared by all leads (different gains)
        resp = np.sin(2 * np.pi * rng.uniform(0.2, 0.33) * tc + rng.uniform(0, 2 * np.pi))
        slow += 0.3 * noise.baseline_mv * rng.uniform(0.5, 1.0, (rows, 1)) * resp
        for r in range(rows):
            out[r] = np.interp(t, tc, slow[r])
    if mains_hz and noise.mains_mv > 0 and mains_hz < fs / 2:
        a = noise.mains_mv * rng.uniform(0.5, 1.0, (rows, 1))
        ph = rng.uniform(0, 2 * np.pi, (rows, 1))
        w = 2 * np.pi * mains_hz * t
        s1, c1 = np.sin(w), np.cos(w)
        out += a * (np.cos(ph) * s1 + np.sin(ph) * c1)  # a * sin(w + ph)
        if 2 * mains_hz < fs / 2:
            s2, c2 = 2 * s1 * c1, c1 * c1 - s1 * s1
            out += 0.15 * a * (np.cos(2 * ph) * s2 + np.sin(2 * ph) * c2)
    if noise.emg_mv > 0 and fs > 60:
        # first difference of white noise (energy above ~fs/6) under a slowly varying envelope
        # (muscle activity comes and goes)
        w = rng.standard_normal((rows, n + 1), dtype=np.float32)
        emg = (w[:, 1:] - w[:, :-1]).astype(np.float64) / np.sqrt(2.0)
        tc = np.arange(0.0, n / fs + 1.0, 0.5)
        env_c = 0.3 + np.abs(rng.standard_normal((rows, tc.size)))
        env_c /= np.sqrt(np.mean(env_c**2, axis=-1, keepdims=True))
        for r in range(rows):
            emg[r] *= np.interp(t, tc, env_c[r])
        out += noise.emg_mv * emg
    if noise.white_mv > 0:
        out += noise.white_mv * rng.standard_normal((rows, n), dtype=np.float32)
    return out


# ----------------------------------------------------------------------------------------------
# EEG
# ----------------------------------------------------------------------------------------------

def pink_noise(n_channels: int, n_samples: int, fs: float, rng: np.random.Generator, *,
               exponent: float = 1.0, f_min: float = 0.5) -> np.ndarray:
    """1/f^exponent noise, shape (n_channels, n_samples), unit RMS per channel."""
    f = np.fft.rfftfreq(n_samples, 1.0 / fs)
    shape = 1.0 / np.maximum(f, f_min) ** (exponent / 2.0)
    shape[0] = 0.0
    spec = (rng.standard_normal((n_channels, f.size))
            + 1j * rng.standard_normal((n_channels, f.size))) * shape
    x = np.fft.irfft(spec, n=n_samples, axis=-1)
    rms = np.sqrt(np.mean(x**2, axis=-1, keepdims=True))
    return x / np.where(rms > 0, rms, 1.0)


def band_limited_noise(n_channels: int, n_samples: int, fs: float, band: tuple[float, float],
                       rng: np.random.Generator) -> np.ndarray:
    """Noise band-limited to ``band`` (Hz), shape (n_channels, n_samples), unit RMS per channel.

    Raises ValueError if the band's lower edge is at or above the Nyquist frequency.
    """
    lo, hi = band
    if lo >= fs / 2:
        raise ValueError(f"band {band} lies above the Nyquist frequency {fs / 2}")
    return _band_noise_fft(n_samples, fs, lo, min(hi, 0.49 * fs), rng, n_channels)


def synth_eeg(fs: float, n_samples: int, n_channels: int, *, rng: np.random.Generator,
              background_uv: float | np.ndarray = 8.0, exponent: float = 1.2,
              bands_uv: Mapping[str, float | np.ndarray] | None = None,
              shared: float = 0.35, blinks: np.ndarray | None = None, blink_uv: float = 80.0,
              blink_rate_hz: float = 0.25, mains_hz: float | None = None, mains_uv: float = 0.0,
              dc_offset_uv: float | np.ndarray = 0.0, drift_uv: float = 0.0) -> np.ndarray:
    """Synthetic scalp EEG, shape (n_channels, n_samples), float64, µV.

    Parameters
    ----------
    background_uv : RMS of the 1/f^exponent background, scalar or per channel (n_channels,).
    bands_uv : band name (see :data:`EEG_BANDS`) -> RMS (µV) of that rhythm, scalar or per
        channel. The band power of channel c in band b is then ~ bands_uv[b][c]**2 plus the
        background's share of that band.
    shared : fraction (0-1) of the background common to all channels (volume conduction).
    blinks : bool (n_channels,) channels that see eye blinks (frontal), None for none.
    mains_hz, mains_uv : powerline interference; dc_offset_uv : constant offset per channel;
    drift_uv : amplitude of a slow (< 0.1 Hz) electrode drift.
    """
    bg = np.broadcast_to(np.asarray(background_uv, dtype=float), (n_channels,))[:, None]
    own = pink_noise(n_channels, n_samples, fs, rng, exponent=exponent)
    common = pink_noise(1, n_samples, fs, rng, exponent=exponent)
    x = bg * (np.sqrt(1.0 - shared**2) * own + shared * common)
    for name, level in (bands_uv or {}).items():
        if name not in EEG_BANDS:
            raise ValueError(f"unknown EEG band {name!r}; choose from {list(EEG_BANDS)}")
        lv = np.broadcast_to(np.asarray(level, dtype=float), (n_channels,))
        if not np.any(lv):
            continue
        if EEG_BANDS[name][0] >= fs / 2:
            continue
        x += lv[:, None] * band_limited_noise(n_channels, n_samples, fs, EEG_BANDS[name], rng)
    t = np.arange(n_samples) / fs
    if blinks is not None and np.any(blinks) and blink_uv > 0:
        n_blinks = rng.poisson(blink_rate_hz * n_samples / fs)
        centres = rng.uniform(0, n_samples / fs, n_blinks)
        wave = np.zeros(n_samples)
        width = 0.08  # s (a blink lasts ~0.3 s)
        for c in centres:
            lo, hi = np.searchsorted(t, [c - 5 * width, c + 5 * width])
            wave[lo:hi] += rng.uniform(0.6, 1.2) * np.exp(-((t[lo:hi] - c) ** 2) / (2 * width**2))
        x += blink_uv * np.asarray(blinks, dtype=float)[:, None] * wave
    if drift_uv > 0:
        f = rng.uniform(0.01, 0.08, (n_channels, 1))
        x += drift_uv * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (n_channels, 1)))
    if mains_hz and mains_uv > 0 and mains_hz < fs / 2:
        x += mains_uv * np.sin(2 * np.pi * mains_hz * t + rng.uniform(0, 2 * np.pi, (n_channels, 1)))
    x += np.broadcast_to(np.asarray(dc_offset_uv, dtype=float), (n_channels,))[:, None]
    return x
