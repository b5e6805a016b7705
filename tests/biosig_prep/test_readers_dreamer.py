"""The DREAMER reader on tiny DREAMER-format files (hand-built and from the generator), and the
paired, labelled windows of process_dreamer_trial."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from biosig_prep.config import DreamerConfig, PrepConfig
from biosig_prep.datasets.dreamer import (
    DREAMER_ELECTRODES,
    SHIMMER_ECG_MV_PER_COUNT,
    is_dreamer_mat,
    read_dreamer,
)
from biosig_prep.processing import process_dreamer_trial
from biosig_prep.readers import ReadError, SourceFile, discover, read_source

EEG_FS, ECG_FS = 128, 256


def _cell(items, shape):
    c = np.empty(shape, dtype=object)
    for i, x in enumerate(items):
        c.flat[i] = x
    return c


def write_tiny_dreamer(path: Path, n_subjects: int = 2, n_clips: int = 3,
                       clip_seconds=(25.0, 31.5, 12.0), baseline_seconds: float = 11.0,
                       seed: int = 0) -> dict:
    """A DREAMER.mat-format file; returns the arrays written, for comparison."""
    rng = np.random.default_rng(seed)
    written = {"eeg": {}, "ecg": {}, "eeg_b": {}, "ecg_b": {}, "scores": {}}
    subjects = []
    for s in range(n_subjects):
        parts = {"eeg": [], "ecg": [], "eeg_b": [], "ecg_b": []}
        for c in range(n_clips):
            secs = clip_seconds[c % len(clip_seconds)]
            for key, fs, n_ch, sec in (("eeg", EEG_FS, 14, secs), ("ecg", ECG_FS, 2, secs),
                                       ("eeg_b", EEG_FS, 14, baseline_seconds),
                                       ("ecg_b", ECG_FS, 2, baseline_seconds)):
                n = int(round(sec * fs))
                t = np.arange(n) / fs
                if key.startswith("eeg"):  # µV with an Emotiv-like DC offset
                    x = 4100 + 20 * np.sin(2 * np.pi * 10 * t)[:, None] \
                        + 5 * rng.standard_normal((n, n_ch))
                else:  # a 1.2 Hz "heartbeat" in mV, written as Shimmer ADC counts (as the
                    # real file holds the ECG: issue 10 item 3); `written` keeps the mV
                    x = np.sin(2 * np.pi * 1.2 * t)[:, None] * np.array([1.0, 0.6]) \
                        + 0.01 * rng.standard_normal((n, n_ch))
                    parts[key].append(x / SHIMMER_ECG_MV_PER_COUNT)
                    written[key][(s, c)] = x
                    continue
                parts[key].append(x)
                written[key][(s, c)] = x
        scores = {k: rng.integers(1, 6, n_clips).astype(float) for k in ("v", "a", "d")}
        for c in range(n_clips):
            written["scores"][(s, c)] = {k: int(v[c]) for k, v in scores.items()}
        subjects.append({
            "Age": str(22 + s), "Gender": "male" if s % 2 == 0 else "female",
            "EEG": {"baseline": _cell(parts["eeg_b"], (n_clips, 1)),
                    "stimuli": _cell(parts["eeg"], (n_clips, 1))},
            "ECG": {"baseline": _cell(parts["ecg_b"], (n_clips, 1)),
                    "stimuli": _cell(parts["ecg"], (n_clips, 1))},
            "ScoreValence": scores["v"].reshape(-1, 1),
            "ScoreArousal": scores["a"].reshape(-1, 1),
            "ScoreDominance": scores["d"].reshape(-1, 1),
        })
    dreamer = {
        "Data": _cell(subjects, (1, n_subjects)),
        "EEG_SamplingRate": EEG_FS, "ECG_SamplingRate": ECG_FS,
        "EEG_Electrodes": _cell(list(DREAMER_ELECTRODES), (1, 14)),
        "noOfSubjects": n_subjects, "noOfVideoSequences": n_clips,
        "Disclaimer": "test data", "Provider": "tests", "Version": "0", "Acknowledge": "none",
    }
    scipy.io.savemat(path, {"DREAMER": dreamer})
    return written


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("dreamer") / "DREAMER.mat"
    return path, write_tiny_dreamer(path)


def test_reader_shapes_rates_and_labels(tiny):
    path, written = tiny
    data = read_dreamer(path)
    assert (data.eeg_fs, data.ecg_fs) == (128.0, 256.0)
    assert data.electrodes == list(DREAMER_ELECTRODES)
    assert (data.n_subjects, data.n_clips, len(data)) == (2, 3, 6)
    assert data.info["provider"] == "tests"
    trials = list(data.trials())
    assert [(t.subject, t.clip) for t in trials] == [(s, c) for s in range(2) for c in range(3)]
    for t in trials:
        assert t.eeg.signals.shape == (14, written["eeg"][(t.subject, t.clip)].shape[0])
        assert t.ecg.signals.shape == (2, written["ecg"][(t.subject, t.clip)].shape[0])
        np.testing.assert_array_equal(t.eeg.signals, written["eeg"][(t.subject, t.clip)].T)
        np.testing.assert_allclose(t.ecg.signals, written["ecg"][(t.subject, t.clip)].T,
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(t.eeg_baseline.signals,
                                      written["eeg_b"][(t.subject, t.clip)].T)
        assert (t.eeg.fs, t.ecg.fs) == (128.0, 256.0)
        assert t.eeg.channels == list(DREAMER_ELECTRODES) and t.ecg.channels == ["ECG1", "ECG2"]
        assert t.eeg.units == ["µV"] * 14 and t.ecg.units == ["mV"] * 2
        expected = written["scores"][(t.subject, t.clip)]
        assert t.scores == {"valence": expected["v"], "arousal": expected["a"],
                            "dominance": expected["d"]}
        assert all(isinstance(v, int) and 1 <= v <= 5 for v in t.scores.values())
        assert t.metadata["age"] == 22 + t.subject
        assert t.metadata["gender"] == ("male" if t.subject == 0 else "female")
        assert t.record_id == f"dreamer/s{t.subject:02d}/c{t.clip:02d}"
    assert list(data.trials(subjects=[1]))[0].subject == 1


def test_ecg_scale(tiny):
    path, written = tiny
    t = next(read_dreamer(path, ecg_scale=0.5).trials())
    np.testing.assert_allclose(t.ecg.signals,
                               0.5 * written["ecg"][(0, 0)].T / SHIMMER_ECG_MV_PER_COUNT)


def test_reading_trials_again_gives_the_same_values(tiny):
    """The counts -> mV scaling works on a copy: a second pass over the same opened file is
    not scaled twice (loadmat's Fortran-ordered arrays made the transpose a view)."""
    path, written = tiny
    data = read_dreamer(path)
    first = [(t.ecg.signals.copy(), t.ecg_baseline.signals.copy(), t.eeg.signals.copy())
             for t in data.trials()]
    again = list(data.trials())
    for (ecg, ecg_b, eeg), t in zip(first, again, strict=True):
        np.testing.assert_array_equal(t.ecg.signals, ecg)
        np.testing.assert_array_equal(t.ecg_baseline.signals, ecg_b)
        np.testing.assert_array_equal(t.eeg.signals, eeg)
    np.testing.assert_allclose(again[0].ecg.signals, written["ecg"][(0, 0)].T, rtol=1e-12,
                               atol=1e-15)


def test_discover_finds_dreamer_and_ignores_unrelated_mat(tiny, tmp_path):
    path, _ = tiny
    assert is_dreamer_mat(path)
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.ones(3)})
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "DREAMER.mat").write_bytes(path.read_bytes())
    assert not is_dreamer_mat(tmp_path / "other.mat")
    assert discover([tmp_path]) == [SourceFile(str(tmp_path / "DREAMER.mat"), "dreamer",
                                               "DREAMER")]
    assert discover([tmp_path], fmt="dreamer")[0].format == "dreamer"
    with pytest.raises(ValueError, match="no records found"):
        discover([tmp_path], fmt="wfdb")
    with pytest.raises(ValueError, match="other.mat: not a DREAMER .mat file"):
        discover([tmp_path / "other.mat"])
    recs = read_source(discover([tmp_path])[0])
    assert len(recs) == 12 and recs[0].record_id == "dreamer/s00/c00/eeg"


def test_bad_dreamer_files(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.ones(3)})
    with pytest.raises(ReadError, match="no variable 'DREAMER'"):
        read_dreamer(tmp_path / "other.mat")
    (tmp_path / "broken.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    with pytest.raises(ReadError, match="broken.mat"):
        read_dreamer(tmp_path / "broken.mat")
    scipy.io.savemat(tmp_path / "partial.mat", {"DREAMER": {"Data": np.zeros(2)}})
    with pytest.raises(ReadError, match="no field 'EEG_Electrodes'"):
        read_dreamer(tmp_path / "partial.mat")
    with pytest.raises(ReadError):
        read_source(SourceFile(str(tmp_path / "partial.mat"), "dreamer", "partial"))


def test_one_subject_one_clip_survives_squeezing(tmp_path):
    path = tmp_path / "one.mat"
    write_tiny_dreamer(path, n_subjects=1, n_clips=1, clip_seconds=(20.0,))
    trials = list(read_dreamer(path).trials())
    assert len(trials) == 1 and trials[0].eeg.signals.shape == (14, 2560)
    assert trials[0].ecg.signals.shape == (2, 5120)


def test_paired_windows_are_aligned_and_labelled(tiny):
    path, written = tiny
    cfg = PrepConfig()
    for t in read_dreamer(path).trials():
        out = process_dreamer_trial(t, cfg)
        assert out.ok, out.status
        assert out.record_id == f"dreamer/s{t.subject:02d}/c{t.clip:02d}"
        eeg, ecg = out.streams["eeg@200"], out.streams["ecg@200"]
        seconds = min(t.eeg.n_times / 128, t.ecg.n_times / 256)
        # the pad tail policy: whole windows, plus the tail when it holds >= 5 whole seconds
        full, tail_patches = int(seconds // 10), int(seconds - 10 * (seconds // 10))
        n = full + (tail_patches >= 5)
        assert len(eeg) == len(ecg) == n
        valid = eeg.patch_mask.sum(axis=1).tolist()
        assert valid == [10] * full + ([tail_patches] if tail_patches >= 5 else [])
        np.testing.assert_array_equal(eeg.patch_mask, ecg.patch_mask)
        if tail_patches >= 5:  # padded patches are zero in both modalities
            assert not eeg.windows[-1, :, tail_patches:].any()
            assert not ecg.windows[-1, :, tail_patches:].any()
        assert eeg.windows.shape == (n, 14, 10, 200) and ecg.windows.shape == (n, 2, 10, 200)
        assert eeg.windows.dtype == ecg.windows.dtype == np.float32
        np.testing.assert_array_equal(eeg.start, ecg.start)
        assert eeg.start.tolist() == [2000 * i for i in range(n)]
        assert (eeg.units, ecg.units) == ("µV", "mV")
        # the DC offset (4100 µV) is gone, the 10 Hz alpha is kept
        assert np.abs(eeg.windows.mean()) < 5.0 and eeg.windows.std() > 5.0
        assert set(out.labels) == {"valence", "arousal", "dominance", "subject", "clip"}
        for v in out.labels.values():
            assert v.dtype == np.int64 and v.shape == (n,)
        s = written["scores"][(t.subject, t.clip)]
        assert out.labels["valence"].tolist() == [s["v"]] * n
        assert out.labels["dominance"].tolist() == [s["d"]] * n
        assert out.labels["subject"].tolist() == [t.subject] * n
        assert out.labels["clip"].tolist() == [t.clip] * n


def test_alignment_in_time(tmp_path):
    """A shared event at a known second appears at the same sample in both streams."""
    path = tmp_path / "DREAMER.mat"
    write_tiny_dreamer(path, n_subjects=1, n_clips=1, clip_seconds=(30.0,))
    trial = next(read_dreamer(path).trials())
    # put a 25 Hz burst at 13.0-13.5 s into both modalities
    # at physical sizes: 100 µV of EEG, 1 mV of ECG (100 mV would leave the int16 store's range)
    amp = {"eeg": 100.0, "ecg": 1.0}
    for rec, fs in ((trial.eeg, 128), (trial.ecg, 256)):
        t = np.arange(rec.n_times) / fs
        burst = ((t >= 13.0) & (t < 13.5)) * np.sin(2 * np.pi * 25 * t)
        noise = 0.01 * amp[rec.modality] * np.random.default_rng(0).standard_normal(
            rec.signals.shape)
        rec.signals = (amp[rec.modality] * burst[None, :] + 4100.0 * (rec.modality == "eeg")
                       + noise)
    out = process_dreamer_trial(trial, PrepConfig())
    assert out.ok, out.status
    eeg = out.streams["eeg@200"].windows[1].reshape(14, 2000)[0]
    ecg = out.streams["ecg@200"].windows[1].reshape(2, 2000)[0]
    # window 1 covers 10-20 s: the burst sits at samples 600-700 of it in both
    for x, a in ((eeg, amp["eeg"]), (ecg, amp["ecg"])):
        env = np.abs(x)
        assert env[610:690].max() > 0.5 * a
        assert env[:550].max() < 0.1 * a and env[760:].max() < 0.1 * a
    # same phase: the cross-correlation of the two bursts peaks at lag 0
    xc = np.correlate(eeg.astype(np.float64), ecg.astype(np.float64), mode="full")
    assert np.argmax(xc) - (len(ecg) - 1) == 0


def test_steps_baseline_and_short_trials(tiny):
    path, _ = tiny
    trial = next(read_dreamer(path).trials())  # 25 s clip, 11 s baseline
    out = process_dreamer_trial(trial, PrepConfig(dreamer=DreamerConfig(step_seconds=5.0)))
    # starts 0, 5, 10, 15 s, and the 20-25 s tail (5 of 10 patches: kept under the pad policy)
    assert out.streams["eeg@200"].start.tolist() == [0, 1000, 2000, 3000, 4000]
    assert out.streams["eeg@200"].patch_mask.sum(axis=1).tolist() == [10, 10, 10, 10, 5]
    out = process_dreamer_trial(trial, PrepConfig(dreamer=DreamerConfig(include_baseline=True)))
    assert out.ok
    # the 11 s baseline gives one window (its 1 s tail is too short), the 25 s clip 2 + a tail
    assert out.labels["baseline"].tolist() == [1, 0, 0, 0]
    assert out.streams["ecg@200"].start.tolist() == [-2200, 0, 2000, 4000]
    out = process_dreamer_trial(trial, PrepConfig(
        dreamer=DreamerConfig(include_baseline=True), tail={"policy": "drop"}))
    assert out.streams["ecg@200"].start.tolist() == [-2200, 0, 2000]  # the old behaviour
    short = list(read_dreamer(path).trials())[2]  # 12 s clip: one window
    assert len(process_dreamer_trial(short, PrepConfig()).streams["eeg@200"]) == 1
    short.eeg.signals = short.eeg.signals[:, :1000]  # ~7.8 s: one padded window, 7 patches
    out = process_dreamer_trial(short, PrepConfig())
    assert out.ok and out.streams["eeg@200"].patch_mask.sum(axis=1).tolist() == [7]
    out = process_dreamer_trial(short, PrepConfig(tail={"policy": "drop"}))
    assert out.status.startswith("too short") and out.streams == {} and out.labels is None
    short.eeg.signals = short.eeg.signals[:, :512]  # 4 s: under half a window either way
    out = process_dreamer_trial(short, PrepConfig())
    assert out.status.startswith("too short") and out.streams == {} and out.labels is None


def test_bad_trials_get_a_status_not_an_exception(tiny):
    path, _ = tiny
    trial = next(read_dreamer(path).trials())
    trial.ecg.signals[1, 50:60] = np.nan
    out = process_dreamer_trial(trial, PrepConfig())
    assert out.status == "qc: non-finite values in lead ECG2 (10 samples)"
    trial = next(read_dreamer(path).trials())
    cfg = PrepConfig.model_validate({"dreamer": {"eeg": {"h_freq": 70.0}}})
    assert process_dreamer_trial(trial, cfg).status == (
        "filter: eeg h_freq (70.0) must be less than the Nyquist frequency 64.0 "
        "(source rate 128 Hz)")


def test_on_the_generator_file(tmp_path):
    synth = pytest.importorskip("biosig_prep.synth.dreamer")
    path = tmp_path / "DREAMER.mat"
    truth = synth.write_dreamer_mat(path, n_subjects=3, n_clips=4, clip_seconds=21.0,
                                    baseline_seconds=4.0, seed=1)
    data = read_dreamer(path)
    assert (data.n_subjects, data.n_clips, data.eeg_fs, data.ecg_fs) == (3, 4, 128.0, 256.0)
    assert data.electrodes == list(DREAMER_ELECTRODES)
    trials = list(data.trials())
    assert len(trials) == 12
    for t in trials:
        assert t.eeg.signals.shape == (14, 21 * 128) and t.ecg.signals.shape == (2, 21 * 256)
        assert t.eeg_baseline.signals.shape == (14, 4 * 128)
        assert t.scores["valence"] == int(truth.score_valence[t.subject, t.clip])
        assert t.scores["arousal"] == int(truth.score_arousal[t.subject, t.clip])
        assert t.scores["dominance"] == int(truth.score_dominance[t.subject, t.clip])
        assert t.metadata["age"] == truth.ages[t.subject]
        assert t.metadata["gender"] == truth.genders[t.subject]
        out = process_dreamer_trial(t, PrepConfig())
        assert out.ok, out.status
        assert len(out.streams["eeg@200"]) == len(out.streams["ecg@200"]) == 2
        ecg = out.streams["ecg@200"].windows
        assert 0.3 < np.abs(ecg).max() < 5.0  # the generator's ECG is in mV
