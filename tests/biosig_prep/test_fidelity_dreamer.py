"""Issue 10 item 8: one bad DREAMER subject or clip is skipped with a reason naming the field;
NaN, text and out-of-range ratings are refused per trial; the rest of the file converts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from scipy.io.matlab import mat_struct

from biosig_prep import convert, open_store
from biosig_prep.config import PrepConfig
from biosig_prep.datasets.dreamer import read_dreamer
from biosig_prep.processing import process_dreamer_trial
from biosig_prep.synth.dreamer import write_dreamer_mat


def _plain(obj):
    """loadmat(squeeze_me, struct_as_record=False) output -> dicts savemat writes back."""
    if isinstance(obj, mat_struct):
        return {k: _plain(getattr(obj, k)) for k in obj._fieldnames}
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        out = np.empty(obj.shape, dtype=object)
        for i, v in np.ndenumerate(obj):
            out[i] = _plain(v)
        return out
    return obj


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dreamer")
    path = folder / "DREAMER.mat"
    write_dreamer_mat(path, n_subjects=4, n_clips=3, clip_seconds=12.0, baseline_seconds=2.0)
    d = _plain(scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["DREAMER"])
    subj = d["Data"]
    del subj[1]["ScoreArousal"]  # subject 2: no arousal ratings at all
    eeg = subj[0]["EEG"]["stimuli"]
    eeg[1] = eeg[1][:, :13]  # subject 1, clip 2: 13 EEG columns
    subj[0]["ECG"]["stimuli"][2] = np.zeros((0, 2))  # subject 1, clip 3: empty
    scores = subj[2]["ScoreValence"].astype(object)
    scores[0], scores[1], scores[2] = np.nan, "high", 7.0  # subject 3: NaN, text, 7
    subj[2]["ScoreValence"] = scores
    scipy.io.savemat(path, {"DREAMER": d})
    return path


EXPECTED = {
    "dreamer/s00/c00": "ok",
    "dreamer/s00/c01": "read: DREAMER.Data{1}.EEG.stimuli{2} has shape (1536, 13), expected "
                       "(samples, 14)",
    "dreamer/s00/c02": "read: DREAMER.Data{1}.ECG.stimuli{3} is empty",
    **{f"dreamer/s01/c0{c}": "read: not a DREAMER file: DREAMER.Data{2} has no field "
                             "'ScoreArousal'" for c in range(3)},
    "dreamer/s02/c00": "read: DREAMER.Data{3}.ScoreValence(1) is nan, expected a rating 1..5",
    "dreamer/s02/c01": "read: DREAMER.Data{3}.ScoreValence(2) is not a number ('high')",
    "dreamer/s02/c02": "read: DREAMER.Data{3}.ScoreValence(3) is 7, expected a whole rating "
                       "1..5",
    **{f"dreamer/s03/c0{c}": "ok" for c in range(3)},
}


def test_bad_trials_are_skipped_with_the_field_named(damaged):
    got = {}
    for trial in read_dreamer(damaged).trials():
        out = process_dreamer_trial(trial, PrepConfig())
        got[out.record_id] = out.status
    assert got == EXPECTED


def test_the_rest_of_the_file_converts(damaged, tmp_path):
    dst = tmp_path / "d.zarr"
    convert([damaged], dst, workers=0, progress=False)
    store = open_store(dst)
    r = store.records()
    assert dict(zip(r["id"].tolist(), r["status"].tolist(), strict=True)) == EXPECTED
    labels = store.labels()
    assert sorted(set(labels["subject"].tolist())) == [0, 3]
    assert set(labels["valence"].tolist()) <= {1, 2, 3, 4, 5}
    assert len(store.stream("eeg@200")) == len(store.stream("ecg@200")) == len(labels["clip"])
