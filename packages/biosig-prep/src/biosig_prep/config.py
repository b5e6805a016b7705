"""Every preprocessing default in one pydantic model, loadable from YAML or JSON.

``PrepConfig().model_dump(mode="json")`` is what a store keeps in its root attributes, so a store
always says how it was made. Each CLI flag maps onto one field (``--notch 60`` ->
``ecg.notch = 60``, ``--rates 200,500`` -> ``rates = [200, 500]``).

Cut-offs are validated against the sampling rate where the rate is known: the band-pass of a
modality must sit below the Nyquist frequency of the source *and* of every output rate, or the
record is skipped with the reason (see :mod:`biosig_prep.processing`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from biosig_prep.recording import MAX_RATE_HZ

__all__ = ["FilterConfig", "QCConfig", "DreamerConfig", "EncodingConfig", "TailConfig",
           "PrepConfig", "CANONICAL_LEADS"]

CANONICAL_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)

NotchSetting = Literal["auto", "off", 50, 60]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FilterConfig(_Model):
    """Zero-phase Butterworth band-pass (SOS, ``sosfiltfilt``) followed by an IIR notch.

    l_freq / h_freq : band edges in Hz; ``None`` drops that edge (``l_freq=None`` is a low-pass,
        ``h_freq=None`` a high-pass, both ``None`` no band-pass at all).
    order : Butterworth order per edge (scipy's ``butter(order, [l, h], "bandpass")``).
    notch : ``"auto"`` (50 or 60 Hz from the record's source, see :mod:`biosig_prep.sources`),
        ``"off"``, ``50`` or ``60``.
    notch_quality : quality factor Q of ``scipy.signal.iirnotch`` (bandwidth = freq / Q).
    """

    l_freq: float | None = Field(0.5, gt=0)
    h_freq: float | None = Field(40.0, gt=0)
    order: int = Field(4, ge=1, le=12)
    notch: NotchSetting = "auto"
    notch_quality: float = Field(30.0, gt=0)

    @field_validator("notch", mode="before")
    @classmethod
    def _parse_notch(cls, value: Any) -> Any:
        if value is None or value is False:
            return "off"
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("auto", "off", "none"):
                return "off" if text == "none" else text
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"notch must be 'auto', 'off', 50 or 60, got {value!r}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if float(value) in (50.0, 60.0):
                return int(value)
            raise ValueError(f"notch must be 'auto', 'off', 50 or 60, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_band(self) -> FilterConfig:
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"l_freq ({self.l_freq}) must be less than h_freq ({self.h_freq})")
        return self


class QCConfig(_Model):
    """Per-record quality checks (see :mod:`biosig_prep.dsp.qc`).

    flat_std_mv / flat_std_uv : a lead whose standard deviation is below this, in the signal's
        own unit (ECG mV / EEG µV), is flat; both defaults are the same physical floor, 0.1 µV,
        far below any real lead's noise. (One number for both units made a flat EEG channel
        need 1000x less variation than a flat ECG lead.) A channel the file itself marks as
        dead (an EDF physical minimum equal to its maximum) is flat whatever its values.
    flat_leads : ``"mask"``: a flat or clipped lead is zero-filled and masked like a missing
        lead, the record fails only if no lead is usable; ``"skip"``: any flat or clipped lead
        fails the record.
    max_abs_mv / max_abs_uv : largest plausible absolute value after the band-pass (ECG mV / EEG µV).
    min_peak_mv / min_peak_uv : the largest absolute value over all leads after the band-pass must
        reach this; below it the units are wrong (e.g. the 2000000/mV PTB gain: values 1000x too
        small).
    saturation_seconds : a lead holding a run of consecutive samples at its own minimum or maximum
        this long (at least 3 samples), or 2 samples at the ADC range the header gives, is
        clipped at the rails; it is masked like a flat lead (see ``flat_leads``).
    """

    flat_std_mv: float = Field(1e-4, ge=0)
    flat_std_uv: float = Field(0.1, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _old_flat_std(cls, data: Any) -> Any:
        if isinstance(data, dict) and "flat_std" in data:
            raise ValueError("qc.flat_std is now two settings in the signal's own unit: "
                             "flat_std_mv (ECG, default 1e-4) and flat_std_uv (EEG, default 0.1)")
        return data
    flat_leads: Literal["mask", "skip"] = "mask"
    max_abs_mv: float = Field(20.0, gt=0)
    max_abs_uv: float = Field(5000.0, gt=0)
    min_peak_mv: float = Field(0.02, ge=0)
    min_peak_uv: float = Field(0.5, ge=0)
    saturation_seconds: float = Field(0.04, gt=0)


class DreamerConfig(_Model):
    """How DREAMER trials become paired ``eeg@rate`` / ``ecg@rate`` windows.

    rate : output rate of both streams (EEG 128 Hz and ECG 256 Hz are resampled to it).
    window_seconds / step_seconds : window length and hop (``None`` = no overlap); the window
        must equal ``n_patches * patch_size`` samples at ``rate``.
    include_baseline : also cut the pre-clip baseline segment into windows; they come first, with
        negative ``start`` (samples before clip onset) and label ``baseline = 1``.
    ecg_scale : factor from the file's ECG values to mV. The real DREAMER.mat holds the
        Shimmer2 ECG as raw 12-bit ADC counts; the default converts them with the unit's ADC
        reference and amplifier gain, 3000 mV / 175 / 4095 = 0.0041863 mV per count (source in
        :mod:`biosig_prep.datasets.dreamer`). Applied only to ECG read as counts (see
        ``ecg_units``). The amplitude bounds of QC apply to DREAMER's ECG like to any ECG.
    ecg_units : what the file's ECG values are: ``"auto"`` (default) decides per trial
        (whole numbers in the 12-bit ADC range 0..4095, or a spread too large for mV: counts;
        fractional values with a spread plausible for mV: mV, as in converted copies some
        groups share), ``"counts"`` or ``"mV"`` to say it. Each record's metadata names what was
        done (``ecg_units_in``, ``ecg_scale`` applied); a trial ``auto`` cannot decide is
        skipped with a reason naming these two settings.
    eeg / ecg : band-pass and notch of each modality, at its original rate (EEG: 128 Hz, so the
        upper edge must stay below 64 Hz).
    """

    rate: int = Field(200, gt=0, le=int(MAX_RATE_HZ))
    window_seconds: float = Field(10.0, gt=0)
    step_seconds: float | None = Field(None, gt=0)
    include_baseline: bool = False
    ecg_scale: float = Field(3000.0 / 175.0 / 4095.0, gt=0)  # Shimmer2 counts -> mV
    ecg_units: Literal["auto", "counts", "mV"] = "auto"
    eeg: FilterConfig = Field(
        default_factory=lambda: FilterConfig(l_freq=0.3, h_freq=45.0, order=4, notch="auto"))
    ecg: FilterConfig = Field(
        default_factory=lambda: FilterConfig(l_freq=0.5, h_freq=40.0, order=4, notch="auto"))


class EncodingConfig(_Model):
    """How windows are stored (the reader always gets float32 in physical units).

    dtype : ``"int16"``: multiples of a fixed per-modality step, through zarr's fixed-scale
        codec (about a quarter of float32's bytes after compression); ``"float32"``: exact.
    ecg_step : mV per integer unit. 0.001 mV = 1 µV, the Challenge ADC's own resolution (gain
        1000/mV); largest error 0.5 µV, far below ECG noise (~10 µV); range ±32.767 mV, above
        the QC bound ``qc.max_abs_mv`` (20 mV).
    eeg_step : µV per integer unit. 0.2 µV: largest error 0.1 µV, below the input noise of EEG
        amplifiers (~0.5-1 µV RMS) and DREAMER's Emotiv EPOC LSB (0.51 µV); range ±6553.4 µV,
        above the QC bound ``qc.max_abs_uv`` (5000 µV), so no record that passes QC is refused
        for range. A record with a value beyond the range is skipped with an ``encoding:``
        status (never wrapped).
    """

    dtype: Literal["int16", "float32"] = "int16"
    ecg_step: float = Field(0.001, gt=0)
    eeg_step: float = Field(0.2, gt=0)

    def steps(self) -> dict[str, float]:
        return {"ecg": self.ecg_step, "eeg": self.eeg_step}


class TailConfig(_Model):
    """What happens to a record's last, partial window at each rate.

    policy : ``"pad"``: keep it, zero-padded at the end, when at least ``min_valid_fraction`` of
        its patches hold real samples (a patch only partly covered is zeroed and counted as
        padding, so a padded patch is all zeros); the stream's ``patch_mask`` marks the valid
        patches. ``"drop"``: only whole windows (schema 1's behaviour). A 10 s record gives
        1/1/3/5 windows at 100/200/500/1000 Hz with ``pad`` (0/1/2/5 with ``drop``).
    min_valid_fraction : the least fraction of valid patches for a tail window.
    """

    policy: Literal["pad", "drop"] = "pad"
    min_valid_fraction: float = Field(0.5, gt=0, le=1)


class PrepConfig(_Model):
    """All preprocessing settings of one ``biosig-prep convert`` run.

    rates : output rates (Hz) of the ECG/EEG streams, one stream per modality and rate.
    n_patches, patch_size : a window is ``n_patches * patch_size`` samples at each output rate.
    window_step : hop between windows in samples of each output rate (``None`` = no overlap).
    pad : ``"none"``: a record shorter than one window gives no window at that rate unless the
        tail policy keeps it; ``"zero"``: it gives one window, zero-padded at the end, however
        short (its patch_mask marks the real patches).
    tail : what happens to a record's last, partial window (:class:`TailConfig`).
    encoding : how windows are stored (:class:`EncodingConfig`).
    leads : canonical ECG lead order; leads a record lacks are zero-filled and masked.
    eeg_channels : the EEG stream's channels (a montage), matched by name case-insensitively;
        ``None`` (default): decided from all input files' headers before any record is
        converted, by majority (see :mod:`biosig_prep.dsp.montage` and ``docs/convert.md``).
        A run stores the channels it used here.
    """

    rates: list[int] = Field(default_factory=lambda: [100, 200, 500, 1000])
    n_patches: int = Field(10, ge=1)
    patch_size: int = Field(200, ge=1)
    window_step: int | None = Field(None, ge=1)
    pad: Literal["none", "zero"] = "none"
    ecg: FilterConfig = Field(
        default_factory=lambda: FilterConfig(l_freq=0.5, h_freq=40.0, order=4, notch="auto"))
    eeg: FilterConfig = Field(
        default_factory=lambda: FilterConfig(l_freq=0.3, h_freq=75.0, order=4, notch="auto"))
    tail: TailConfig = Field(default_factory=TailConfig)
    encoding: EncodingConfig = Field(default_factory=EncodingConfig)
    qc: QCConfig = Field(default_factory=QCConfig)
    dreamer: DreamerConfig = Field(default_factory=DreamerConfig)
    leads: list[str] = Field(default_factory=lambda: list(CANONICAL_LEADS))
    eeg_channels: list[str] | None = None

    @field_validator("rates", mode="before")
    @classmethod
    def _parse_rates(cls, value: Any) -> Any:
        if isinstance(value, str):  # "100,200,500" from a CLI flag or an env var
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return [int(p) for p in parts]
            except ValueError:
                raise ValueError(
                    f"rates must be comma-separated integers in Hz, got {value!r}") from None
        return value

    @field_validator("rates")
    @classmethod
    def _check_rates(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("rates must name at least one output rate")
        bad = [r for r in value if r <= 0]
        if bad:
            raise ValueError(f"rates must be positive, got {bad}")
        high = [r for r in value if r > MAX_RATE_HZ]
        if high:
            raise ValueError(f"rates must be at most {MAX_RATE_HZ:g} Hz, got {high}")
        if len(set(value)) != len(value):
            raise ValueError(f"rates must not repeat, got {value}")
        return sorted(value)

    @field_validator("leads")
    @classmethod
    def _check_leads(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("leads must name at least one lead")
        folded = [v.lower() for v in value]
        if len(set(folded)) != len(folded):
            raise ValueError(f"leads must not repeat (case-insensitively), got {value}")
        return value

    @field_validator("eeg_channels")
    @classmethod
    def _check_eeg_channels(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        keys = [v.strip().casefold() for v in value]
        if not keys or not all(keys):
            raise ValueError("eeg_channels must name at least one channel, none empty")
        if len(set(keys)) != len(keys):
            raise ValueError(f"eeg_channels must not repeat (case-insensitively), got {value}")
        return [v.strip() for v in value]

    @model_validator(mode="after")
    def _check_dreamer_window(self) -> PrepConfig:
        d = self.dreamer
        window = self.n_patches * self.patch_size
        samples = d.window_seconds * d.rate
        if abs(samples - round(samples)) > 1e-9 or round(samples) != window:
            raise ValueError(
                f"dreamer.window_seconds ({d.window_seconds}) x dreamer.rate ({d.rate}) = "
                f"{samples:g} samples must equal n_patches x patch_size = {window}")
        if d.step_seconds is not None:
            step = d.step_seconds * d.rate
            if abs(step - round(step)) > 1e-9:
                raise ValueError(
                    f"dreamer.step_seconds ({d.step_seconds}) x dreamer.rate ({d.rate}) = "
                    f"{step:g} must be a whole number of samples")
        return self

    @property
    def window_samples(self) -> int:
        """Samples per window at every output rate (``n_patches * patch_size``)."""
        return self.n_patches * self.patch_size

    @classmethod
    def from_file(cls, path: str | Path) -> PrepConfig:
        """Load a config from YAML (``.yaml``/``.yml``) or JSON (``.json``; other suffixes: tried
        as YAML, which also reads JSON). Missing fields take their defaults."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"config file {path} does not exist") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # noqa: BLE001 - any parser error becomes one clear message
            raise ValueError(f"config file {path} could not be parsed: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(
                f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
        return cls.model_validate(data)

    def to_file(self, path: str | Path) -> None:
        """Write this config as YAML or JSON (by suffix)."""
        path = Path(path)
        data = self.model_dump(mode="json")
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        else:
            import yaml

            path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
