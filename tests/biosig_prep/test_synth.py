"""The synthetic data generators: real file formats, physiology, quirks, broken files, effects."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy.signal import butter, find_peaks, sosfiltfilt, welch

with warnings.catch_warnings():
    # wfdb 4.3 calls DataFrame.set_index(inplace=True) at import (pandas >= 3.1 deprecates it)
    warnings.filterwarnings("ignore", "The inplace keyword", DeprecationWarning)
    import wfdb
from typer.testing import CliRunner

from biosig_prep.synth import (
    BROKEN_KINDS,
    QUIRKS,
    DreamerEffects,
    load_manifest,
    write_challenge_corpus,
    write_dreamer_mat,
    write_mat_v4,
)
from biosig_prep.synth.challenge import REDUCED_LEADS
from biosig_prep.synth.cli import synth_app
from biosig_prep.synth.dreamer import ALPHA_CHANNELS, DREAMER_CLIP_SECONDS, DREAMER_ELECTRODES
from biosig_prep.synth.signals import LEADS_12, EcgMorphology, EcgNoise, synth_ecg, synth_eeg

# wfdb fails on broken files with various exception types; any exception counts as "fails"
READ_ERRORS = Exception


def heart_rate(x: np.ndarray, fs: float) -> float:
    """Mean heart rate (bpm) from QRS complexes of one lead (Pan-Tompkins-like: 5-25 Hz band,
    squared slope, peaks at least 0.3 s apart)."""
    sos = butter(2, [5.0, 25.0], btype="bandpass", fs=fs, output="sos")
    energy = np.gradient(sosfiltfilt(sos, x)) ** 2
    peaks, _ = find_peaks(energy, distance=int(0.3 * fs), height=0.2 * np.percentile(energy, 99.5))
    return 60.0 * fs / float(np.mean(np.diff(peaks)))


# ------------------------------------------------------------------------------------------
# signal models
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hr", [48.0, 72.0, 110.0])
@pytest.mark.parametrize("fs", [257, 500, 1000])
def test_ecg_has_the_set_heart_rate(hr, fs):
    rng = np.random.default_rng(1)
    x = synth_ecg(fs, 30 * fs, rng=rng, hr_bpm=hr, leads=["II"])
    assert abs(heart_rate(x[0], fs) - hr) < 2.0


def test_ecg_amplitudes_and_limb_lead_laws():
    rng = np.random.default_rng(2)
    x = synth_ecg(500, 5000, rng=rng, hr_bpm=70, noise=EcgNoise(0, 0, 0, 0))
    lead = dict(zip(LEADS_12, x, strict=True))
    assert 0.6 < np.ptp(lead["II"]) < 3.0  # R ~ 1 mV
    np.testing.assert_allclose(lead["III"], lead["II"] - lead["I"], atol=1e-12)
    np.testing.assert_allclose(lead["aVR"], -(lead["I"] + lead["II"]) / 2, atol=1e-12)
    np.testing.assert_allclose(lead["aVL"], lead["I"] - lead["II"] / 2, atol=1e-12)
    np.testing.assert_allclose(lead["aVF"], lead["II"] - lead["I"] / 2, atol=1e-12)
    assert lead["aVR"].min() < -0.4  # aVR is mostly negative in a normal ECG


@pytest.mark.parametrize("cond", ["af", "pvc", "lbbb", "rbbb", "iavb", "pac"])
def test_ecg_conditions_render(cond):
    rng = np.random.default_rng(3)
    x, beats, kinds = synth_ecg(500, 10 * 500, rng=rng, hr_bpm=75, return_beats=True,
                                morph=EcgMorphology(conditions=frozenset({cond})))
    assert np.isfinite(x).all() and 0.3 < np.ptp(x[1]) < 6
    rr = np.diff(beats)
    if cond == "af":
        assert np.std(rr) / np.mean(rr) > 0.08  # irregularly irregular
    if cond in ("pvc", "pac"):
        assert (kinds == (2 if cond == "pvc" else 1)).sum() >= 1


def test_eeg_band_powers_are_controlled():
    rng = np.random.default_rng(4)
    fs, n = 128, 128 * 60
    alpha = np.array([2.0, 12.0])
    x = synth_eeg(fs, n, 2, rng=rng, background_uv=8.0, bands_uv={"alpha": alpha})
    f, p = welch(x, fs, nperseg=512)
    band = (f >= 8) & (f <= 12)
    power = p[:, band].sum(axis=1) * (f[1] - f[0])
    assert power[1] / power[0] > 10
    assert 5 < np.sqrt(np.mean(x[0] ** 2)) < 30  # tens of µV


# ------------------------------------------------------------------------------------------
# the Challenge corpus
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("challenge")
    write_challenge_corpus(out, n_records=30, seed=3, long_seconds=700.0)
    return out


@pytest.fixture(scope="module")
def clean_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    write_challenge_corpus(out, n_records=12, seed=5, sources=["JS", "E", "HR"],
                           durations=[10], quirks=False, broken=0)
    return out


def _records(out: Path) -> list[dict]:
    return load_manifest(out)["records"]


def test_manifest_lists_every_record_and_matches_wfdb(corpus):
    recs = _records(corpus)
    assert len(recs) == 30
    assert {r["source"] for r in recs} == {"A", "Q", "I", "S", "HR", "E", "JS"}
    fs_of = {"A": 500, "Q": 500, "I": 257, "S": 1000, "HR": 500, "E": 500, "JS": 500}
    for r in recs:
        assert r["fs"] == fs_of[r["source"]]
        assert (corpus / r["header"]).exists()
        if r["expected_status"] == "read_error" or "georgia_record_line" in r["quirks"]:
            continue
        rec = wfdb.rdrecord(str(corpus / r["record"]))
        assert rec.fs == r["fs"] and rec.sig_len == r["n_samples"]
        assert [s.upper() for s in rec.sig_name] == [s.upper() for s in r["leads"]]
        assert any(c.replace(" ", "").startswith("Dx:") for c in rec.comments)


def test_every_quirk_is_present(corpus):
    recs = _records(corpus)
    seen = {q for r in recs for q in r["quirks"]}
    assert seen == set(QUIRKS)
    for r in recs:
        text = (corpus / r["header"]).read_text() if r["broken"] != "corrupt_header" else ""
        first = text.splitlines()[0] if text else ""
        for q in r["quirks"]:
            if q == "georgia_record_line":
                assert first.startswith(f"{r['record']}.mat {len(r['leads'])} 500 ")
                with pytest.raises(wfdb.io.header.HeaderSyntaxError):
                    wfdb.rdrecord(str(corpus / r["record"]))
                # the rest of the record is fine once the record name is repaired
                fixed = corpus / "fixed"
                fixed.mkdir(exist_ok=True)
                (fixed / r["header"]).write_text(text.replace(".mat ", " ", 1))
                (fixed / r["mat"]).write_bytes((corpus / r["mat"]).read_bytes())
                assert wfdb.rdrecord(str(fixed / r["record"])).p_signal.shape == (5000, 12)
            elif q == "lowercase_units":
                assert "/mv " in text and "/mV" not in text
            elif q == "mat_name_differs":
                assert r["mat"] != f"{r['record']}.mat" and (corpus / r["mat"]).exists()
                assert f" {r['mat']} " not in f" {first} " and text.count(r["mat"]) == 12
                assert wfdb.rdrecord(str(corpus / r["record"])).sig_len == r["n_samples"]
            elif q == "ptb_gain_2000000":
                assert " 2000000/mV " in text and r["source"] == "S"
                sig = wfdb.rdrecord(str(corpus / r["record"])).p_signal
                assert np.abs(sig).max() < 0.02  # implausible: ~1000x too small
            elif q.startswith("reduced_leads_"):
                k = int(q.rsplit("_", 1)[1])
                rec = wfdb.rdrecord(str(corpus / r["record"]))
                assert rec.sig_name == list(REDUCED_LEADS[k])
                assert first.split()[1] == str(k)
            elif q == "lead_names_upper":
                assert " AVR\n" in text and "aVR" not in text
            elif q == "age_nan":
                assert "Age: NaN" in text
            elif q == "short_5s":
                assert r["n_samples"] == 5 * r["fs"]
            elif q == "long_record":
                assert r["duration_s"] >= 600 and r["source"] == "I"


def test_broken_files_are_broken(corpus):
    recs = [r for r in _records(corpus) if r["broken"]]
    assert {r["broken"] for r in recs} == set(BROKEN_KINDS)
    for r in recs:
        path = str(corpus / r["record"])
        if r["expected_status"] == "read_error":
            with pytest.raises(READ_ERRORS):
                wfdb.rdrecord(path)
        elif r["broken"] == "flat_lead":
            rec = wfdb.rdrecord(path)
            flat = np.ptp(rec.p_signal, axis=0) == 0
            assert flat.sum() == 1 and r["expected_reason"] == f"flat lead {r['leads'][flat.argmax()]}"
        elif r["broken"] == "saturated":
            d = scipy.io.loadmat(str(corpus / r["mat"]))["val"]
            at_limit = (d == d.max(axis=1, keepdims=True)).mean(axis=1)
            assert at_limit.max() > 0.5
            assert np.isfinite(wfdb.rdrecord(path).p_signal).all()


def test_clean_corpus_reads_everything(clean_corpus):
    recs = _records(clean_corpus)
    assert all(r["expected_status"] == "ok" and not r["quirks"] and r["broken"] is None
               for r in recs)
    for r in recs:
        rec = wfdb.rdrecord(str(clean_corpus / r["record"]))
        assert rec.p_signal.shape == (r["n_samples"], 12)
        assert rec.sig_name == list(LEADS_12) and rec.units == ["mV"] * 12
        assert 0.3 < np.ptp(rec.p_signal[:, 1]) < 8  # lead II in mV


def test_einthoven_holds_on_written_digital_values(clean_corpus):
    for r in _records(clean_corpus):
        d = scipy.io.loadmat(str(clean_corpus / r["mat"]))["val"].astype(int)
        lead = dict(zip(LEADS_12, d, strict=True))
        assert np.abs(lead["III"] - (lead["II"] - lead["I"])).max() <= 1
        assert np.abs(2 * lead["aVR"] + lead["I"] + lead["II"]).max() <= 2
        assert np.abs(2 * lead["aVL"] - 2 * lead["I"] + lead["II"]).max() <= 2
        assert np.abs(2 * lead["aVF"] - 2 * lead["II"] + lead["I"]).max() <= 2


def test_written_records_have_the_set_heart_rate_and_mains(clean_corpus):
    for r in _records(clean_corpus):
        rec = wfdb.rdrecord(str(clean_corpus / r["record"]))
        ii = rec.p_signal[:, 1]
        if r["dx"][0] in ("426783006", "426177001", "427084000", "270492004"):  # regular rhythms
            assert abs(heart_rate(ii, r["fs"]) - r["hr_bpm"]) < 2.0, r["record"]
        f, p = welch(rec.p_signal[:, 0], r["fs"], nperseg=2048)
        band = (f > 40) & (f < 70)
        peak = f[band][np.argmax(p[band])]
        assert abs(peak - r["mains_hz"]) < 0.5, (r["record"], peak)
        assert p[band].max() > 20 * np.median(p[band])


def test_mat_v4_layout_matches_scipy_and_the_challenge(tmp_path):
    val = (np.arange(36, dtype=np.int16) - 18).reshape(3, 12)
    write_mat_v4(tmp_path / "ours.mat", val)
    scipy.io.savemat(tmp_path / "scipy.mat", {"val": val}, format="4")
    assert (tmp_path / "ours.mat").read_bytes() == (tmp_path / "scipy.mat").read_bytes()
    np.testing.assert_array_equal(scipy.io.loadmat(tmp_path / "ours.mat")["val"], val)


def test_generated_record_reads_like_a_real_one(clean_corpus, shared_data):
    real_dir = shared_data / "ecg" / "cinc2021"
    real = wfdb.rdrecord(str(real_dir / "JS20000"))
    name = _records(clean_corpus)[0]["record"]
    ours = wfdb.rdrecord(str(clean_corpus / name))
    for attr in ("fmt", "byte_offset", "sig_name", "units", "adc_res", "adc_zero", "baseline"):
        assert getattr(ours, attr) == getattr(real, attr), attr
    assert ours.adc_gain == real.adc_gain == [1000.0] * 12
    assert ours.p_signal.dtype == real.p_signal.dtype and ours.p_signal.shape == real.p_signal.shape
    assert ours.fs == real.fs and ours.n_sig == real.n_sig
    assert [c.split(":")[0] for c in ours.comments][:5] == [c.split(":")[0] for c in real.comments][:5]
    real_mat = scipy.io.loadmat(str(real_dir / "JS20000.mat"))["val"]
    our_mat = scipy.io.loadmat(str(clean_corpus / f"{name}.mat"))["val"]
    assert our_mat.dtype == real_mat.dtype == np.int16 and our_mat.shape == real_mat.shape
    real_bytes = (real_dir / "JS20000.mat").read_bytes()
    our_bytes = (clean_corpus / f"{name}.mat").read_bytes()
    assert len(our_bytes) == len(real_bytes) == 24 + 12 * 5000 * 2
    assert our_bytes[:24] == real_bytes[:24]  # identical v4 header: type 30, 12 x 5000, 'val'
    # checksums and initial values in our headers agree with the data, as in the real ones
    d = our_mat.astype(np.int64)
    assert ours.init_value == list(d[:, 0])
    assert ours.checksum == list(((d.sum(axis=1) + 32768) % 65536) - 32768)


def test_fast_path_is_clean_and_uniform(tmp_path):
    paths = write_challenge_corpus(tmp_path, n_records=20, sources=["JS"], durations=[10],
                                   quirks=False, broken=0)
    assert len(paths) == 20
    recs = _records(tmp_path)
    assert all(r["fs"] == 500 and r["n_samples"] == 5000 and len(r["leads"]) == 12 for r in recs)
    assert all((tmp_path / f"{r['record']}.mat").stat().st_size == 120024 for r in recs)


@pytest.mark.parametrize("fmt", ["16", "212"])
def test_classic_wfdb_formats(tmp_path, fmt):
    paths = write_challenge_corpus(tmp_path, n_records=2, sources=["JS"], durations=[10],
                                   signal_format=fmt)
    rec = wfdb.rdrecord(str(paths[0].with_suffix("")))
    assert rec.fmt == [fmt] * 12 and rec.file_name[0].endswith(".dat")
    assert rec.p_signal.shape == (5000, 12) and 0.3 < np.ptp(rec.p_signal[:, 1]) < 8


def test_corpus_is_reproducible(tmp_path):
    a = write_challenge_corpus(tmp_path / "a", n_records=8, seed=11, durations=[10], broken=2)
    b = write_challenge_corpus(tmp_path / "b", n_records=8, seed=11, durations=[10], broken=2)
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()


def test_bad_arguments_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown source"):
        write_challenge_corpus(tmp_path, sources=["ZZ"])
    with pytest.raises(ValueError, match="broken=9"):
        write_challenge_corpus(tmp_path, n_records=3, broken=9)


# ------------------------------------------------------------------------------------------
# DREAMER
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dreamer(tmp_path_factory):
    path = tmp_path_factory.mktemp("dreamer") / "DREAMER.mat"
    truth = write_dreamer_mat(path, n_subjects=4, clip_seconds=12, baseline_seconds=3, seed=0)
    return path, truth


def test_dreamer_has_the_real_nesting(dreamer):
    path, truth = dreamer
    d = scipy.io.loadmat(path)["DREAMER"]
    assert d.shape == (1, 1)
    d = d[0, 0]
    assert set(d.dtype.names) == {"Data", "EEG_SamplingRate", "ECG_SamplingRate",
                                  "EEG_Electrodes", "noOfSubjects", "noOfVideoSequences",
                                  "Disclaimer", "Provider", "Version", "Acknowledgement"}
    assert d["EEG_SamplingRate"].item() == 128 and d["ECG_SamplingRate"].item() == 256
    assert d["noOfSubjects"].item() == 4 and d["noOfVideoSequences"].item() == 18
    assert [e.item() for e in d["EEG_Electrodes"][0]] == list(DREAMER_ELECTRODES)
    assert d["Data"].shape == (1, 4)
    for s in range(4):
        subj = d["Data"][0, s]  # as the published loaders index it
        assert subj["Gender"][0, 0].item() in ("male", "female")
        assert 18 <= int(subj["Age"][0, 0].item()) <= 60
        for k in range(18):
            eeg = subj["EEG"][0, 0]["stimuli"][0, 0][k, 0]
            ecg = subj["ECG"][0, 0]["stimuli"][0, 0][k, 0]
            assert eeg.shape == (12 * 128, 14) and eeg.dtype == np.float64
            assert ecg.shape == (12 * 256, 2) and ecg.dtype == np.float64
            assert subj["EEG"][0, 0]["baseline"][0, 0][k, 0].shape == (3 * 128, 14)
            assert subj["ECG"][0, 0]["baseline"][0, 0][k, 0].shape == (3 * 256, 2)
        for key in ("ScoreValence", "ScoreArousal", "ScoreDominance"):
            sc = subj[key][0, 0]
            assert sc.shape == (18, 1) and sc.dtype == np.float64
            assert set(np.unique(sc)) <= {1, 2, 3, 4, 5}
        np.testing.assert_array_equal(subj["ScoreValence"][0, 0][:, 0], truth.score_valence[s])


def test_dreamer_loads_with_squeeze_me(dreamer):
    path, _ = dreamer
    d = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["DREAMER"]
    assert d.EEG_SamplingRate == 128 and len(d.Data) == 4
    s0 = d.Data[0]
    assert s0.EEG.stimuli.shape == (18,) and s0.EEG.stimuli[5].shape == (12 * 128, 14)
    assert s0.ECG.baseline[0].shape == (3 * 256, 2) and s0.ScoreArousal.shape == (18,)
    assert list(d.EEG_Electrodes) == list(DREAMER_ELECTRODES)


def test_dreamer_real_durations_by_default():
    assert len(DREAMER_CLIP_SECONDS) == 18
    assert min(DREAMER_CLIP_SECONDS) == 65 and max(DREAMER_CLIP_SECONDS) == 393


def test_dreamer_scores_follow_the_latent_states(dreamer):
    _, t = dreamer
    for hi, sc in ((t.valence_high, t.score_valence), (t.arousal_high, t.score_arousal),
                   (t.dominance_high, t.score_dominance)):
        assert ((sc >= 3) == hi).all()
    np.testing.assert_array_equal(t.dominance_high, t.valence_high & t.arousal_high)


def _alpha_power(eeg: np.ndarray) -> float:
    f, p = welch(eeg - eeg.mean(axis=0), 128, nperseg=256, axis=0)
    cols = [DREAMER_ELECTRODES.index(c) for c in ALPHA_CHANNELS]
    return float(p[(f >= 8) & (f <= 12)][:, cols].mean())


def test_planted_effects_are_measurable_in_the_raw_signals(dreamer):
    path, t = dreamer
    data = scipy.io.loadmat(path)["DREAMER"][0, 0]["Data"]
    alpha = np.zeros(t.valence_high.shape)
    hr = np.zeros(t.valence_high.shape)
    for s in range(t.n_subjects):
        for k in range(t.n_clips):
            alpha[s, k] = _alpha_power(data[0, s]["EEG"][0, 0]["stimuli"][0, 0][k, 0])
            hr[s, k] = heart_rate(data[0, s]["ECG"][0, 0]["stimuli"][0, 0][k, 0][:, 1], 256)
    v, a = t.valence_high, t.arousal_high
    assert alpha[v].mean() / alpha[~v].mean() > 1.5
    assert hr[a].mean() - hr[~a].mean() > 15
    np.testing.assert_allclose(hr, t.heart_rate_bpm, atol=4.0)
    # no cross-talk: alpha does not follow arousal, heart rate does not follow valence
    assert 0.7 < alpha[a].mean() / alpha[~a].mean() < 1.4
    assert abs(hr[v].mean() - hr[~v].mean()) < 8


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    pos, neg = score[label], score[~label]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_no_effects_gives_chance(tmp_path):
    t = write_dreamer_mat(tmp_path / "none.mat", n_subjects=12, clip_seconds=2,
                          baseline_seconds=1, effects="none", seed=1)
    assert not t.planted and t.effects is None
    for label in (t.valence_high, t.arousal_high, t.dominance_high):
        assert abs(_auc(t.alpha_uv.ravel(), label.ravel()) - 0.5) < 0.1
        assert abs(_auc(t.heart_rate_bpm.ravel(), label.ravel()) - 0.5) < 0.1


def test_planted_truth_aucs(tmp_path):
    t = write_dreamer_mat(tmp_path / "p.mat", n_subjects=12, clip_seconds=2, baseline_seconds=1,
                          seed=2, effects=DreamerEffects(strength=1.0))
    assert _auc(t.alpha_uv.ravel(), t.valence_high.ravel()) > 0.95
    assert _auc(t.heart_rate_bpm.ravel(), t.arousal_high.ravel()) > 0.95
    # dominance ("and"): each modality alone stays clearly below both together
    single = _auc(t.alpha_uv.ravel(), t.dominance_high.ravel())
    both = _auc((t.alpha_uv / t.alpha_uv.std() + t.heart_rate_bpm / t.heart_rate_bpm.std()).ravel(),
                t.dominance_high.ravel())
    assert single < 0.88 and both > 0.95


def test_labels_do_not_follow_the_clip_unless_asked(tmp_path):
    def per_clip_majority_acc(t):
        hi = t.valence_high
        maj = hi.mean(axis=0) >= 0.5
        return float((hi == maj[None, :]).mean())

    free = write_dreamer_mat(tmp_path / "a.mat", n_subjects=10, clip_seconds=1,
                             baseline_seconds=1, seed=3)
    tied = write_dreamer_mat(tmp_path / "b.mat", n_subjects=10, clip_seconds=1,
                             baseline_seconds=1, seed=3,
                             effects=DreamerEffects(clip_effect=1.0))
    assert per_clip_majority_acc(tied) == 1.0
    assert per_clip_majority_acc(free) < 0.75  # in-sample majority: ~0.62 at chance


def test_xor_rule(tmp_path):
    t = write_dreamer_mat(tmp_path / "x.mat", n_subjects=2, n_clips=4, clip_seconds=1,
                          baseline_seconds=1, effects={"dominance_rule": "xor"})
    np.testing.assert_array_equal(t.dominance_high, t.valence_high ^ t.arousal_high)


def test_dreamer_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="clip_seconds has 2"):
        write_dreamer_mat(tmp_path / "x.mat", n_subjects=1, n_clips=3, clip_seconds=[5, 5])
    with pytest.raises(ValueError, match="effects"):
        write_dreamer_mat(tmp_path / "x.mat", n_subjects=1, effects="strong")


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------

def test_cli_challenge_and_dreamer(tmp_path):
    runner = CliRunner()
    res = runner.invoke(synth_app, ["challenge", str(tmp_path / "c"), "--n-records", "6",
                                    "--sources", "JS,E", "--durations", "10", "--no-quirks",
                                    "--broken", "1"])
    assert res.exit_code == 0, res.output
    recs = _records(tmp_path / "c")
    assert len(recs) == 6 and {r["source"] for r in recs} == {"JS", "E"}
    assert sum(r["broken"] is not None for r in recs) == 1
    res = runner.invoke(synth_app, ["dreamer", str(tmp_path / "d.mat"), "--subjects", "2",
                                    "--clips", "3", "--clip-seconds", "2", "--baseline-seconds",
                                    "1", "--effects", "none", "--truth", str(tmp_path / "t.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "t.json").read_text())["planted"] is False
    assert scipy.io.loadmat(tmp_path / "d.mat")["DREAMER"][0, 0]["Data"].shape == (1, 2)
    res = runner.invoke(synth_app, ["dreamer", str(tmp_path / "e.mat"), "--strength", "2"])
    assert res.exit_code == 2 and "strength" in res.output
