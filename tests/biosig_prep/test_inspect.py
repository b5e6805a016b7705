"""``describe_store`` / ``render_text``: what a store holds, from the store itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biosig_prep import StoreError, convert
from biosig_prep.config import PrepConfig
from biosig_prep.store import STAGING, StoreWriter
from biosig_prep.summary import describe_store, render_text
from biosig_prep.synth.challenge import write_challenge_corpus
from biosig_prep.synth.dreamer import write_dreamer_mat


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inspect")
    write_challenge_corpus(d / "src", n_records=12, seed=2, long_seconds=30.0, broken=2)
    dst = d / "s.zarr"
    convert([d / "src"], dst, PrepConfig(rates=[200, 500]), workers=0, progress=False)
    return dst


def test_describe(store):
    desc = describe_store(str(store))
    json.dumps(desc)  # JSON-able as it is
    r = desc["records"]
    assert r["total"] == 12 and r["ok"] + r["skipped"] == 12 and r["skipped"] >= 2
    assert sum(r["skipped_reasons"].values()) == r["skipped"]
    assert sum(r["sources"].values()) == 12
    assert set(desc["streams"]) == {"ecg@200", "ecg@500"}
    s = desc["streams"]["ecg@500"]
    assert s["fs"] == 500 and s["units"] == "mV" and s["window_shape"] == [12, 10, 200]
    assert s["windows"] == desc["summary"]["windows"]["ecg@500"]
    assert 0 < s["records"] <= r["ok"] and 0 <= s["masked_channel_fraction"] < 1
    assert desc["labels"] is None and desc["complete"] and "progress" not in desc
    assert desc["bytes"] > 0 and desc["config"]["rates"] == [200, 500]


def test_render_text(store):
    desc = describe_store(str(store))
    text = render_text(desc)
    first_reason = next(iter(desc["records"]["skipped_reasons"]))
    for part in (str(store), "complete", f"{desc['records']['total']} in", first_reason,
                 "ecg@200", "ecg@500", "200 Hz", "ecg channels (12)", "rates 200, 500 Hz",
                 "ecg: 0.5-40 Hz, order 4, notch auto"):
        assert part in text, part


def test_incomplete_store_is_described_as_such(store, tmp_path):
    url = tmp_path / "half.zarr"
    w = StoreWriter(str(url))
    w.create({"schema": 2, "version": "x", "config": {}, "complete": False, "summary": None,
              "conversion": {"batches": 5}})
    w.ensure_group(STAGING)
    w.ensure_records()
    w.raw.put(f"{STAGING}/b000000/done.json", b"{}")
    desc = describe_store(str(url))
    assert desc["complete"] is False and desc["progress"] == {"batches": 5, "batches_done": 1}
    assert "INCOMPLETE" in render_text(desc) and "1 of 5 batches done" in render_text(desc)


def test_labels(tmp_path):
    mat = tmp_path / "DREAMER.mat"
    write_dreamer_mat(mat, n_subjects=2, n_clips=2, clip_seconds=21.0, baseline_seconds=2.0)
    convert([mat], tmp_path / "d.zarr", workers=0, progress=False)
    desc = describe_store(str(tmp_path / "d.zarr"))
    n = desc["streams"]["eeg@200"]["windows"]
    assert desc["labels"]["subject"] == {"count": n, "values": {"0": n // 2, "1": n // 2}}
    text = render_text(desc)
    assert "labels" in text and "valence" in text and "dreamer: 200 Hz" in text


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="not a biosig-prep store"):
        describe_store(str(tmp_path / "none"))
