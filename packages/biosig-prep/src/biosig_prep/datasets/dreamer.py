"""The DREAMER emotion dataset (Katsigiannis & Ramzan 2018): one ``DREAMER.mat``, read once.

Layout (MATLAB): a struct ``DREAMER`` with ``Data`` (1 x 23, one per subject), ``EEG_SamplingRate``
(128), ``ECG_SamplingRate`` (256), ``EEG_Electrodes`` (14 names), ``noOfSubjects``,
``noOfVideoSequences``, ``Disclaimer``, ``Provider``, ``Version``, ``Acknowledgement``. Each subject:
``Age``, ``Gender``, ``EEG.baseline{18}`` / ``EEG.stimuli{18}`` (samples x 14, µV),
``ECG.baseline{18}`` / ``ECG.stimuli{18}`` (samples x 2, raw ADC counts), ``ScoreValence`` / ``ScoreArousal`` /
``ScoreDominance`` (18 x 1, 1..5).

The file is loaded with ``scipy.io.loadmat(squeeze_me=True, struct_as_record=False)``; the
accessors below also accept the record-array and dict forms, so files written by other tools
(``scipy.io.savemat`` with nested dicts, MATLAB itself) read the same way.

The ECG of the distributed file is the Shimmer2 ECG unit's raw 12-bit ADC counts (around 2048;
public analysis code of the real file clips it to 1800-2500). It is multiplied by ``ecg_scale``,
by default :data:`SHIMMER_ECG_MV_PER_COUNT` = 3000 mV / 175 / 4095 = 0.0041863 mV per count:
the unit's ADC reference (3 V over the 12-bit range, 4095 steps) divided by its ECG amplifier
gain (175). Source: Shimmer Research's own driver, ShimmerEngineering/Shimmer-Java-Android-API,
``ShimmerObject.java`` (``GainECGLALL = 175``, ``OffsetECGLALL = 2060`` for the Shimmer2 ECG
board) with ``calibrateU12AdcValue``: mV = (counts - offset) * (Vref * 1000 / gain) / 4095,
Vref = 3 V. The offset (a DC level) is not subtracted here: the band-pass removes it.

Some groups share a converted copy whose ECG is already in mV. With ``ecg_units="auto"`` (the
default) each trial's ECG is judged before scaling (:func:`ecg_units_of`): whole numbers inside
the 12-bit ADC range 0..4095 are counts (the distributed file), and so are values whose spread
(99.9th percentile of ``|x - median|``) exceeds :data:`COUNTS_MIN_SPREAD` (no ECG varies by 50
mV); fractional values with a spread of at most :data:`MV_MAX_SPREAD` are mV and are not scaled.
Anything else is refused for that trial, naming ``dreamer.ecg_units`` and ``dreamer.ecg_scale``.
Each trial's metadata says what was done: ``ecg_units_in`` (``counts`` / ``mV``) and
``ecg_scale`` (the factor applied; 1.0 for mV).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biosig_prep.errors import ReadError
from biosig_prep.recording import Recording, rate_problem

__all__ = ["DREAMER_ELECTRODES", "DreamerTrial", "DreamerData", "read_dreamer", "is_dreamer_mat",
           "SHIMMER_ECG_MV_PER_COUNT", "SHIMMER_ECG_OFFSET_COUNTS", "ecg_units_of",
           "COUNTS_MIN_SPREAD", "MV_MAX_SPREAD"]

# Shimmer2 ECG board: 12-bit ADC, 3 V reference, amplifier gain 175 (see the module docstring)
SHIMMER_ECG_MV_PER_COUNT = 3000.0 / 175.0 / 4095.0
SHIMMER_ECG_OFFSET_COUNTS = 2060.0

ADC_MAX_COUNT = 4095  # 12-bit
COUNTS_MIN_SPREAD = 50.0  # a spread above this cannot be mV: counts
MV_MAX_SPREAD = 20.0  # fractional values spread at most this much: mV (QC's max_abs_mv)


def ecg_units_of(values: np.ndarray) -> str | None:
    """``"counts"``, ``"mV"`` or None (cannot tell) for a DREAMER trial's raw ECG values (see
    the module docstring)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    whole = bool(np.all(v == np.round(v)))
    if whole and v.min() >= 0 and v.max() <= ADC_MAX_COUNT:
        return "counts"
    spread = float(np.percentile(np.abs(v - np.median(v)), 99.9))
    if spread > COUNTS_MIN_SPREAD:
        return "counts"
    if not whole and spread <= MV_MAX_SPREAD:
        return "mV"
    return None


DREAMER_ELECTRODES = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4",
                      "F8", "AF4")
_SCORES = {"valence": "ScoreValence", "arousal": "ScoreArousal", "dominance": "ScoreDominance"}


def is_dreamer_mat(path: str | os.PathLike) -> bool:
    """True if ``path`` is a MATLAB file holding a ``DREAMER`` variable (reads only the headers:
    of a v5 file, the first bytes of each variable, never a whole compressed one)."""
    from scipy.io import whosmat

    from biosig_prep.readers.matfile import mat_version, v5_variable_names

    try:
        with open(path, "rb") as fh:
            if mat_version(fh.read(128)) == "v5":  # names only: no variable is decompressed
                return "DREAMER" in v5_variable_names(Path(path))
        return any(name == "DREAMER" for name, _, _ in whosmat(str(path)))
    except Exception:  # noqa: BLE001 - unreadable or not MATLAB at all: not DREAMER
        return False


def _get(obj: Any, name: str, path: Path, where: str) -> Any:
    """Field ``name`` of a MATLAB struct in any of loadmat's forms."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
    elif isinstance(obj, np.ndarray) and obj.dtype.names:
        if name in obj.dtype.names:
            value = obj[name]
            while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
                value = value.item()
            return value
    elif hasattr(obj, "_fieldnames"):
        if name in obj._fieldnames:
            return getattr(obj, name)
    raise ReadError(path, f"not a DREAMER file: {where} has no field {name!r}")


def _cells(obj: Any) -> list[Any]:
    """A MATLAB cell / struct array as a flat list (a squeezed single element counts as one)."""
    if isinstance(obj, (list, tuple)):
        return list(obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return list(obj.ravel(order="F"))
    if isinstance(obj, np.ndarray) and obj.dtype.names and obj.ndim > 0:
        return [obj[i] for i in np.ndindex(obj.shape)]
    return [obj]


def _scalar(obj: Any) -> Any:
    while isinstance(obj, np.ndarray):
        if obj.size != 1:
            return obj
        obj = obj.item()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj


def _text(obj: Any) -> str:
    obj = _scalar(obj)
    if isinstance(obj, np.ndarray):
        return " ".join(_text(o) for o in obj.ravel())
    return str(obj).strip()


def _signal(obj: Any, n_channels: int, path: Path, where: str) -> np.ndarray:
    """A (samples x channels) matrix as float64 (channels, samples): always a new array, never
    a view of the loaded file (a trial's signals are scaled and edited in place)."""
    arr = np.asarray(obj)
    if arr.dtype == object and arr.size == 1:
        arr = np.asarray(arr.item())
    if arr.size == 0:
        raise ReadError(path, f"{where} is empty")
    if arr.dtype.kind not in "iuf":
        raise ReadError(path, f"{where} holds {arr.dtype} values, expected numbers")
    if arr.ndim != 2 or n_channels not in arr.shape:
        raise ReadError(path, f"{where} has shape {arr.shape}, expected (samples, {n_channels})")
    if arr.shape[1] != n_channels:  # stored channels x samples
        arr = arr.T
    return np.array(arr.T, dtype=np.float64, order="C", copy=True)


def _has(obj: Any, name: str) -> bool:
    try:
        _get(obj, name, Path("-"), "-")
    except ReadError:
        return False
    return True


def _rating(value: Any, path: Path, where: str) -> int:
    """A rating as int 1..5; ReadError naming ``where`` for NaN, text or a value out of range."""
    value = _scalar(value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ReadError(path, f"{where} is not a number ({value!r})") from None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReadError(path, f"{where} is not a number ({value!r})") from None
    if not np.isfinite(number):
        raise ReadError(path, f"{where} is {number}, expected a rating 1..5")
    if number != int(number) or not 1 <= number <= 5:
        raise ReadError(path, f"{where} is {number:g}, expected a whole rating 1..5")
    return int(number)


def _count(obj: Any, path: Path, where: str) -> int:
    """A whole, positive count (``noOfSubjects``); ReadError naming ``where`` otherwise."""
    value = _scalar(obj)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReadError(path, f"{where} is not a number ({value!r})") from None
    if not np.isfinite(number) or number < 1 or number != int(number):
        raise ReadError(path, f"{where} is {number:g}, expected a whole number >= 1")
    return int(number)


def _age(obj: Any) -> int | None:
    value = _scalar(obj)
    try:
        age = float(value)
    except (TypeError, ValueError):
        return None
    return int(age) if np.isfinite(age) else None


@dataclass
class DreamerTrial:
    """One subject watching one clip. ``subject`` and ``clip`` are 0-based.

    eeg : 14 channels, 128 Hz, µV. ecg : 2 channels, 256 Hz, mV (file values x ``ecg_scale``).
    scores : valence / arousal / dominance -> int 1..5. metadata : age, gender, subject, clip.
    eeg_baseline / ecg_baseline : the neutral segment shown before the clip.
    problem : None, or why this trial cannot be used, naming the field
        (``"DREAMER.Data{3}.ScoreValence(5) is NaN"``); then the recordings are None and the
        trial is recorded as skipped with that reason.
    """

    subject: int
    clip: int
    eeg: Recording | None
    ecg: Recording | None
    scores: dict[str, int]
    metadata: dict[str, Any] = field(default_factory=dict)
    eeg_baseline: Recording | None = None
    ecg_baseline: Recording | None = None
    problem: str | None = None
    path: str = ""  # the DREAMER.mat file

    @property
    def record_id(self) -> str:
        return f"dreamer/s{self.subject:02d}/c{self.clip:02d}"


@dataclass
class DreamerData:
    """The whole file, loaded once; :meth:`trials` yields one :class:`DreamerTrial` per
    (subject, clip), subject-major."""

    path: str
    eeg_fs: float
    ecg_fs: float
    electrodes: list[str]
    n_subjects: int
    n_clips: int
    info: dict[str, str]
    subjects: list[Any] = field(repr=False)
    ecg_scale: float = SHIMMER_ECG_MV_PER_COUNT
    ecg_units: str = "auto"  # "auto", "counts" or "mV": what the file's ECG values are

    def __len__(self) -> int:
        return self.n_subjects * self.n_clips

    def trials(self, subjects: list[int] | None = None) -> Iterator[DreamerTrial]:
        """Trials of the given subjects (0-based; default all), each clip in order.

        A bad subject (a missing field, a cell array with the wrong number of clips) gives its
        trials with ``problem`` set; so does a bad clip (wrong shape, empty) or rating (NaN,
        text, not an integer 1..5). Every other trial reads normally.
        """
        for s in (range(self.n_subjects) if subjects is None else subjects):
            try:
                parts, scores, meta = self._subject(s)
            except ReadError as exc:
                for c in range(self.n_clips):
                    yield self._skipped(s, c, exc.reason)
                continue
            for c in range(self.n_clips):
                try:
                    yield self._trial(s, c, parts, scores, meta)
                except ReadError as exc:
                    yield self._skipped(s, c, exc.reason)

    def _skipped(self, s: int, c: int, reason: str) -> DreamerTrial:
        return DreamerTrial(subject=s, clip=c, eeg=None, ecg=None, scores={},
                            metadata={"subject": s, "clip": c}, problem=reason, path=self.path)

    def _subject(self, s: int) -> tuple[dict, dict[str, np.ndarray], dict[str, Any]]:
        """The cell arrays, raw ratings and metadata of subject ``s``; ReadError naming the
        field when the subject as a whole is unusable."""
        path = Path(self.path)
        subj = self.subjects[s]
        where = f"DREAMER.Data{{{s + 1}}}"
        eeg = _get(subj, "EEG", path, where)
        ecg = _get(subj, "ECG", path, where)
        parts = {
            (m, part): _cells(_get(node, part, path, f"{where}.{m.upper()}"))
            for m, node in (("eeg", eeg), ("ecg", ecg)) for part in ("stimuli", "baseline")
        }
        scores = {k: np.atleast_1d(np.asarray(_get(subj, f, path, where), dtype=object)).ravel()
                  for k, f in _SCORES.items()}
        for (m, part), cells in parts.items():
            if len(cells) != self.n_clips:
                raise ReadError(path, f"{where}.{m.upper()}.{part} has {len(cells)} clips, "
                                      f"expected {self.n_clips}")
        for k, arr in scores.items():
            if arr.size != self.n_clips:
                raise ReadError(path, f"{where}.{_SCORES[k]} has {arr.size} scores, "
                                      f"expected {self.n_clips}")
        age = _age(_get(subj, "Age", path, where)) if _has(subj, "Age") else None
        gender = _text(_get(subj, "Gender", path, where)).lower() if _has(subj, "Gender") else ""
        meta = {"subject": s, "age": age, "gender": gender or None}
        return parts, scores, meta

    def _trial(self, s: int, c: int, parts: dict, scores: dict[str, np.ndarray],
               meta: dict[str, Any]) -> DreamerTrial:
        path = Path(self.path)
        where = f"DREAMER.Data{{{s + 1}}}"
        clip_scores = {k: _rating(arr[c], path, f"{where}.{_SCORES[k]}({c + 1})")
                       for k, arr in scores.items()}
        trial_meta = {**meta, "clip": c, **clip_scores}
        rid = f"dreamer/s{s:02d}/c{c:02d}"
        recs = {}
        signals = {}
        for (m, part), cells in parts.items():
            n_ch = len(self.electrodes) if m == "eeg" else 2
            signals[(m, part)] = _signal(cells[c], n_ch, path,
                                         f"{where}.{m.upper()}.{part}{{{c + 1}}}")
        units = self.ecg_units
        if units == "auto" and not np.isfinite(signals[("ecg", "stimuli")]).any():
            raise ReadError(path, f"{where}.ECG.stimuli{{{c + 1}}} holds no finite value")
        if units == "auto":  # judged on the clip's ECG, before any scaling
            units = ecg_units_of(signals[("ecg", "stimuli")])
            if units is None:
                x = signals[("ecg", "stimuli")]
                raise ReadError(path, f"{where}.ECG.stimuli{{{c + 1}}}: cannot tell whether the "
                                      f"ECG is ADC counts or mV (values {np.nanmin(x):.4g} to "
                                      f"{np.nanmax(x):.4g}); set dreamer.ecg_units to counts or "
                                      "mV (dreamer.ecg_scale is the mV per count)")
        scale = self.ecg_scale if units == "counts" else 1.0
        trial_meta["ecg_units_in"] = units
        trial_meta["ecg_scale"] = scale
        for (m, part), sig in signals.items():
            n_ch = len(self.electrodes) if m == "eeg" else 2
            if m == "ecg" and scale != 1.0:  # counts -> mV
                sig *= scale
            recs[(m, part)] = Recording(
                record_id=f"{rid}/{m}" + ("/baseline" if part == "baseline" else ""),
                source="dreamer", path=self.path, modality=m,
                fs=self.eeg_fs if m == "eeg" else self.ecg_fs, signals=sig,
                channels=list(self.electrodes) if m == "eeg" else ["ECG1", "ECG2"],
                units=["µV"] * n_ch if m == "eeg" else ["mV"] * n_ch,
                metadata=dict(trial_meta))
        return DreamerTrial(subject=s, clip=c, eeg=recs[("eeg", "stimuli")],
                            ecg=recs[("ecg", "stimuli")], scores=clip_scores,
                            metadata=trial_meta, eeg_baseline=recs[("eeg", "baseline")],
                            ecg_baseline=recs[("ecg", "baseline")], path=self.path)


def read_dreamer(path: str | os.PathLike, *,
                 ecg_scale: float = SHIMMER_ECG_MV_PER_COUNT,
                 ecg_units: str = "auto") -> DreamerData:
    """Load ``DREAMER.mat`` once. Raises :class:`ReadError` naming the file on any problem.

    ecg_scale : mV per count of ECG read as counts (default: Shimmer2, see the module docstring).
    ecg_units : ``"auto"`` (judged per trial), ``"counts"`` or ``"mV"`` (never scaled).
    """
    if ecg_units not in ("auto", "counts", "mV"):
        raise ValueError(f"ecg_units must be 'auto', 'counts' or 'mV', got {ecg_units!r}")
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise ReadError(path, "file does not exist")
    from biosig_prep.readers.matfile import check_v5_bounds, mat_version

    with open(path, "rb") as fh:
        version = mat_version(fh.read(128))
    if version == "v5":  # compressed variables: sizes checked before loadmat allocates
        check_v5_bounds(path)
    try:
        mat = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except MemoryError:
        raise ReadError(path, "out of memory while loading the .mat file (free memory or "
                              "convert on a larger machine)") from None
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
        raise ReadError(path, f"MATLAB v7.3 files are not supported, save with -v7: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - truncated or not MATLAB
        raise ReadError(path, f"scipy could not read the .mat file: {exc}") from exc
    if "DREAMER" not in mat:
        names = sorted(k for k in mat if not k.startswith("__"))
        raise ReadError(path, f"not a DREAMER file: no variable 'DREAMER' (found {names})")
    root = mat["DREAMER"]
    if isinstance(root, np.ndarray) and root.dtype == object and root.size == 1:
        root = root.item()
    subjects = _cells(_get(root, "Data", path, "DREAMER"))
    electrodes = [_text(e) for e in _cells(_get(root, "EEG_Electrodes", path, "DREAMER"))]
    rates = {}
    for what in ("EEG_SamplingRate", "ECG_SamplingRate"):
        value = _scalar(_get(root, what, path, "DREAMER"))
        problem = rate_problem(value)
        if problem:
            raise ReadError(path, f"DREAMER.{what}: {problem}")
        rates[what] = float(value)
    eeg_fs, ecg_fs = rates["EEG_SamplingRate"], rates["ECG_SamplingRate"]
    n_clips = _count(_get(root, "noOfVideoSequences", path, "DREAMER"), path,
                     "DREAMER.noOfVideoSequences")
    n_subjects = _count(_get(root, "noOfSubjects", path, "DREAMER"), path, "DREAMER.noOfSubjects")
    # the counts are checked against what the file holds before anything is sized by them
    held = max((len(_cells(_get(_get(subj, "EEG", path, "-"), "stimuli", path, "-")))
                for subj in subjects if _has(subj, "EEG")
                and _has(_get(subj, "EEG", path, "-"), "stimuli")), default=0)
    if n_clips > max(held, 1):
        raise ReadError(path, f"DREAMER.noOfVideoSequences is {n_clips} but no subject's "
                              f"EEG.stimuli holds more than {held} clips")
    if n_subjects != len(subjects):
        raise ReadError(path, f"DREAMER.noOfSubjects is {n_subjects} but Data holds "
                              f"{len(subjects)} subjects")
    info = {}
    for key in ("Disclaimer", "Provider", "Version", "Acknowledgement", "Acknowledge"):
        try:
            info[key.lower()] = _text(_get(root, key, path, "DREAMER"))
        except ReadError:
            pass
    return DreamerData(path=str(path), eeg_fs=eeg_fs, ecg_fs=ecg_fs, electrodes=electrodes,
                       n_subjects=n_subjects, n_clips=n_clips, info=info, subjects=subjects,
                       ecg_scale=ecg_scale, ecg_units=ecg_units)
