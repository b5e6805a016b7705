"""Issue 10 item 3: DREAMER's ECG is Shimmer2 ADC counts; the default converts it to mV, the
amplitude QC applies to it, and ``inspect`` reports a robust amplitude per source, flagged when
it is implausible for the declared unit (real Challenge records for the plausible side)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from biosig_prep import convert, open_store
from biosig_prep.config import DreamerConfig, EncodingConfig, PrepConfig, QCConfig
from biosig_prep.datasets.dreamer import SHIMMER_ECG_MV_PER_COUNT
from biosig_prep.dsp.qc import amplitude_flag, robust_amplitude
from biosig_prep.summary import describe_store, render_text
from biosig_prep.synth.dreamer import write_dreamer_mat


@pytest.fixture(scope="module")
def counts_mat(tmp_path_factory):
    path = tmp_path_factory.mktemp("dreamer") / "DREAMER.mat"
    write_dreamer_mat(path, n_subjects=2, n_clips=2, clip_seconds=21.0, baseline_seconds=2.0)
    return path


def test_synth_dreamer_writes_counts_like_the_real_file(counts_mat):
    d = scipy.io.loadmat(counts_mat)["DREAMER"][0, 0]
    assert "Acknowledgement" in d.dtype.names and "Acknowledge" not in d.dtype.names
    ecg = d["Data"][0, 0]["ECG"][0, 0]["stimuli"][0, 0][0, 0]
    assert np.array_equal(ecg, np.rint(ecg))  # whole ADC counts
    assert 1900 < np.median(ecg) < 2200 and ecg.min() >= 0 and ecg.max() <= 4095
    assert SHIMMER_ECG_MV_PER_COUNT == pytest.approx(3000 / 175 / 4095)


def test_default_converts_counts_to_mv_with_amplitude_qc(counts_mat, tmp_path):
    dst = tmp_path / "mv.zarr"
    convert([counts_mat], dst, workers=0, progress=False)
    store = open_store(dst)
    r = store.records()
    assert list(r["status"]) == ["ok"] * 4
    ecg = store.stream("ecg@200").windows[:]
    p999 = float(np.percentile(np.abs(ecg), 99.9))
    assert 0.3 < p999 < 3.0, p999  # mV, as the Challenge ECG the encoder was trained on
    amps = [json.loads(m)["amplitude_p999"] for m in r["metadata"]]
    assert all(0.3 < a["ecg"] < 3.0 and 5 < a["eeg"] < 500 for a in amps)
    desc = describe_store(str(dst))
    assert desc["amplitude"]["dreamer"]["ecg"]["flag"] == ""
    assert "dreamer ecg: " in render_text(desc)

    # the old reading (counts labelled mV) now fails the amplitude check, record by record
    old = PrepConfig(dreamer=DreamerConfig(ecg_scale=1.0))
    convert([counts_mat], tmp_path / "counts.zarr", old, workers=0, progress=False)
    status = open_store(tmp_path / "counts.zarr").records()["status"]
    assert all(s.startswith("qc: implausible amplitude (max") for s in status)
    # ... and with the bounds lifted, inspect flags the source (float32 windows: counts read
    # as mV, ~2 V, would also leave the int16 store's range and skip each record)
    lifted = old.model_copy(update={"qc": QCConfig(max_abs_mv=1e5),
                                    "encoding": EncodingConfig(dtype="float32")})
    convert([counts_mat], tmp_path / "lifted.zarr", lifted, workers=0, progress=False)
    desc = describe_store(str(tmp_path / "lifted.zarr"))
    a = desc["amplitude"]["dreamer"]["ecg"]
    assert a["median"] > 100 and a["flag"].startswith("IMPLAUSIBLE for mV")
    assert "IMPLAUSIBLE for mV" in render_text(desc)


@pytest.mark.real_data
def test_real_challenge_sources_are_plausible(shared_data, tmp_path):
    dst = tmp_path / "c.zarr"
    convert([shared_data / "ecg" / "cinc2021"], dst, PrepConfig(rates=[500]), workers=0,
            progress=False)
    amp = describe_store(str(dst))["amplitude"]
    assert set(amp) == {"georgia", "ptb-xl", "chapman-ningbo"}
    for source, per in amp.items():
        assert 0.2 < per["ecg"]["median"] < 5.0 and per["ecg"]["flag"] == "", (source, per)


def test_robust_amplitude_and_flag():
    x = np.zeros((2, 10000))
    x[0, ::100] = 1.0  # 1 % of samples at 1 mV
    x[1, 5] = 1000.0  # one spike does not move it
    assert robust_amplitude(x) == 1.0
    assert amplitude_flag(1.0, "ecg") == "" and amplitude_flag(9.0, "ecg") == ""
    assert amplitude_flag(270.0, "ecg").startswith("IMPLAUSIBLE for mV: 270x")
    assert amplitude_flag(0.001, "ecg").startswith("IMPLAUSIBLE for mV: 1/1000")
    assert amplitude_flag(40.0, "eeg") == ""
