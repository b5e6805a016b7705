"""Windows of (C, n_patches, patch_size): exact counts at every rate, step and pad policies."""

from __future__ import annotations

import numpy as np
import pytest

from biosig_prep.config import PrepConfig
from biosig_prep.dsp.windows import cut_windows, plan_windows, window_starts
from biosig_prep.processing import process_recording
from biosig_prep.recording import Recording


@pytest.mark.parametrize("n_times, window, step, expected", [
    (5000, 2000, None, 2), (4000, 2000, None, 2), (3999, 2000, None, 1), (1999, 2000, None, 0),
    (0, 2000, None, 0), (5000, 2000, 1000, 4), (2000, 2000, 500, 1), (2500, 2000, 500, 2),
])
def test_window_counts(n_times, window, step, expected):
    starts = window_starts(n_times, window, step)
    assert len(starts) == expected
    if expected:
        assert starts.dtype == np.int64
        assert starts[-1] + window <= n_times
        assert np.all(np.diff(starts) == (step or window))


def test_pad_zero_gives_one_window_for_a_short_record():
    assert window_starts(1500, 2000, pad="zero").tolist() == [0]
    assert window_starts(0, 2000, pad="zero").tolist() == []
    x = np.arange(2 * 1500, dtype=np.float64).reshape(2, 1500)
    win, starts = cut_windows(x, 10, 200, pad="zero")
    assert win.shape == (1, 2, 10, 200) and starts.tolist() == [0]
    flat = win[0].reshape(2, 2000)
    np.testing.assert_array_equal(flat[:, :1500], x)
    assert not flat[:, 1500:].any()


def test_window_content_is_the_slice_reshaped_into_patches():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4321))
    win, starts = cut_windows(x, 10, 200)
    assert win.shape == (2, 3, 10, 200) and win.dtype == np.float32
    for i, s in enumerate(starts):
        np.testing.assert_array_equal(win[i], x[:, s:s + 2000].reshape(3, 10, 200).astype(np.float32))
        # patch p of channel c holds samples [s + 200p, s + 200(p+1))
        np.testing.assert_array_equal(win[i, 1, 3], x[1, s + 600:s + 800].astype(np.float32))


def test_overlapping_windows():
    x = np.arange(5000, dtype=np.float64)[None, :]
    win, starts = cut_windows(x, 10, 200, step=700)
    assert starts.tolist() == [0, 700, 1400, 2100, 2800]
    for i, s in enumerate(starts):
        assert win[i, 0, 0, 0] == s and win[i, 0, -1, -1] == s + 1999


def test_explicit_starts():
    x = np.arange(3000, dtype=np.float64)[None, :]
    win, starts = cut_windows(x, 2, 100, starts=np.array([5, 900]))
    assert win[:, 0, 0, 0].tolist() == [5.0, 900.0]
    with pytest.raises(ValueError, match="runs past the end"):
        cut_windows(x, 2, 100, starts=np.array([2900]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="step"):
        window_starts(100, 10, step=0)
    with pytest.raises(ValueError, match="pad"):
        window_starts(100, 10, pad="edge")
    with pytest.raises(ValueError, match="n_channels, n_times"):
        cut_windows(np.zeros(10), 1, 5)


def _ecg(seconds: float, fs: float) -> Recording:
    t = np.arange(int(round(seconds * fs))) / fs
    leads = np.stack([np.sin(2 * np.pi * (1.0 + 0.1 * k) * t) for k in range(12)])
    return Recording(record_id="E00001", source="georgia", path="-", modality="ecg", fs=fs,
                     signals=leads, channels=list(PrepConfig().leads),
                     units=["mV"] * 12)


@pytest.mark.parametrize("fs", [257.0, 500.0, 1000.0])
def test_a_10_s_record_gives_exact_counts_at_every_rate(fs):
    # a window is always 10 x 200 = 2000 samples at the *output* rate
    # tail policy drop (schema 1's behaviour): only whole windows
    out = process_recording(_ecg(10.0, fs), PrepConfig(tail={"policy": "drop"}))
    assert out.ok, out.status
    counts = {name: len(s) for name, s in out.streams.items()}
    assert counts == {"ecg@100": 0, "ecg@200": 1, "ecg@500": 2, "ecg@1000": 5}
    for name, s in out.streams.items():
        assert s.windows.shape == (counts[name], 12, 10, 200)
        assert s.windows.dtype == np.float32
        assert s.start.tolist() == [2000 * i for i in range(counts[name])]
        assert s.channel_mask.shape == (counts[name], 12)
        assert s.patch_mask.shape == (counts[name], 10) and s.patch_mask.all()
    # tail policy pad (the default): every second kept, the last window zero-padded
    out = process_recording(_ecg(10.0, fs), PrepConfig())
    counts = {name: len(s) for name, s in out.streams.items()}
    assert counts == {"ecg@100": 1, "ecg@200": 1, "ecg@500": 3, "ecg@1000": 5}
    valid = {name: s.patch_mask.sum(axis=1).tolist() for name, s in out.streams.items()}
    assert valid == {"ecg@100": [5], "ecg@200": [10], "ecg@500": [10, 10, 5],
                     "ecg@1000": [10] * 5}
    for name, s in out.streams.items():
        assert s.start.tolist() == [2000 * i for i in range(counts[name])]
        for w, m in zip(s.windows, s.patch_mask, strict=True):
            assert not w[:, ~m].any()  # a padded patch is all zeros
            assert np.abs(w[:, m]).max() > 0.1  # and the valid ones hold the signal


def test_tail_needs_min_valid_fraction():
    # 5 s at 500 Hz: ecg@100 has 500 samples = 2 whole patches (< 5): no window; 0.2 keeps it
    rec = _ecg(5.0, 500.0)
    counts = {n: len(s) for n, s in process_recording(rec, PrepConfig()).streams.items()}
    assert counts == {"ecg@100": 0, "ecg@200": 1, "ecg@500": 1, "ecg@1000": 3}
    cfg = PrepConfig(tail={"policy": "pad", "min_valid_fraction": 0.2})
    s = process_recording(rec, cfg).streams["ecg@100"]
    assert len(s) == 1 and s.patch_mask[0].tolist() == [True] * 2 + [False] * 8
    # the partly covered third patch (samples 400..499) is zeroed with the padding
    assert not s.windows[0, :, 2:].any()


def test_plan_windows_with_a_step():
    starts, valid = plan_windows(5000, 10, 200, step=1000, tail="pad")
    assert starts.tolist() == [0, 1000, 2000, 3000, 4000]
    assert valid.tolist() == [10, 10, 10, 10, 5]
    starts, valid = plan_windows(5000, 10, 200, step=1000, tail="drop")
    assert starts.tolist() == [0, 1000, 2000, 3000]


def test_counts_for_longer_records_and_steps():
    drop = {"policy": "drop"}
    out = process_recording(_ecg(65.0, 500.0), PrepConfig(tail=drop))
    assert {n: len(s) for n, s in out.streams.items()} == {
        "ecg@100": 3, "ecg@200": 6, "ecg@500": 16, "ecg@1000": 32}
    # pad: 65 s leaves 5 s at 200 Hz (5 patches) and 1 s at 1000 Hz (5 patches) for a tail
    out = process_recording(_ecg(65.0, 500.0), PrepConfig())
    assert {n: len(s) for n, s in out.streams.items()} == {
        "ecg@100": 3, "ecg@200": 7, "ecg@500": 16, "ecg@1000": 33}
    out = process_recording(_ecg(30.0, 500.0), PrepConfig(window_step=1000, tail=drop))
    # (T - 2000) // 1000 + 1 at each rate: T = 3000, 6000, 15000, 30000
    assert {n: len(s) for n, s in out.streams.items()} == {
        "ecg@100": 2, "ecg@200": 5, "ecg@500": 14, "ecg@1000": 29}


def test_pad_policy_on_a_short_record():
    rec = _ecg(5.0, 500.0)
    drop = PrepConfig(tail={"policy": "drop"})
    counts = {n: len(s) for n, s in process_recording(rec, drop).streams.items()}
    assert counts == {"ecg@100": 0, "ecg@200": 0, "ecg@500": 1, "ecg@1000": 2}
    padded = process_recording(rec, PrepConfig(pad="zero", tail={"policy": "drop"})).streams
    assert {n: len(s) for n, s in padded.items()} == {
        "ecg@100": 1, "ecg@200": 1, "ecg@500": 1, "ecg@1000": 2}
    w = padded["ecg@100"].windows[0].reshape(12, 2000)
    assert np.abs(w[:, :500]).max() > 0.1 and not w[:, 500:].any()
