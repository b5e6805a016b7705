"""Streaming: real CPSC 2021 records fed in random chunk sizes give the windows ``convert``
stores and the embeddings ``embed`` writes for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biosig_prep.config import PrepConfig
from biosig_prep.dsp.stream import StreamingPrep

# two real records: 41 s (8235 samples) and 134 s, two leads (I, II) at 200 Hz
RECORDS = ("data_8_4", "data_35_6")
# window geometry of the tiny test encoder: 4 patches x 50 samples (1 s at 200 Hz)
GEOMETRY = {"rates": [200], "n_patches": 4, "patch_size": 50,
            "dreamer": {"window_seconds": 1.0}}
TINY = {"d_model": 50, "patch_size": 50, "n_heads": 2, "n_layers": 1, "dim_feedforward": 100,
        "proj_out": False}
# stream vs store: the int16 step (1 uV for ECG; a stored value is within half a step) plus the
# segment edge effect at the default 6 s lookahead (0.23 uV at most over the 12 CPSC records,
# 500 Hz, see docs/onnx-stream.md): 1 uV in all
WINDOW_TOL_MV = 1e-3


def _chunks(x: np.ndarray, seed: int, high: int = 1500):
    rng = np.random.default_rng(seed)
    i = 0
    while i < x.shape[1]:
        n = int(rng.integers(1, high))
        yield x[:, i:i + n]
        i += n


@pytest.fixture(scope="module")
def cpsc(shared_data: Path, tmp_path_factory):
    """The two records as read, and a store ``convert`` wrote from them."""
    from biosig_prep import convert
    from biosig_prep.readers import read_wfdb

    src = shared_data / "annotated" / "cpsc2021"
    if not src.is_dir():
        pytest.skip(f"{src} is absent")
    recs = [read_wfdb(src / f"{r}.hea", r) for r in RECORDS]
    dst = tmp_path_factory.mktemp("cpsc") / "cpsc.zarr"
    paths = [src / f"{r}.hea" for r in RECORDS]
    summary = convert(paths, dst, PrepConfig.model_validate(GEOMETRY), workers=0,
                      progress=False)
    assert summary.records_ok == len(RECORDS)
    return recs, str(dst)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    from criss_cross import CrissCrossEncoder, EncoderConfig, save_pretrained

    torch.manual_seed(0)
    model = CrissCrossEncoder(EncoderConfig.model_validate(TINY)).eval()
    folder = tmp_path_factory.mktemp("hub") / "tiny"
    spec = {"modality": "ecg", "n_patches": 4, "patch_size": 50, "rates_hz": [200],
            "units": "mV", "input_scale": 1.0,
            "preprocessing": {**GEOMETRY, "ecg": {"l_freq": 0.5, "h_freq": 40.0, "order": 4,
                                                  "notch": "auto"}}}
    return save_pretrained(model, folder, name="tiny", input_spec=spec)


def _row(store_url: str, record_id: str) -> int:
    from biosig_prep import open_store

    return list(open_store(store_url).records()["id"]).index(record_id)


def _stored(store_url: str, record_id: str):
    from biosig_prep import open_store

    s = open_store(store_url).stream("ecg@200")
    rows = np.flatnonzero(np.asarray(s.record[:]) == _row(store_url, record_id))
    w = s.reader().read(int(rows[0]), int(rows[-1]) + 1)
    return w, np.asarray(s.start[:])[rows], np.asarray(s.channel_mask[:])[rows], rows


def _stream(rec, seed: int, lookahead_s: float = 6.0):
    sp = StreamingPrep(rec.channels, rec.fs, 200, PrepConfig.model_validate(GEOMETRY),
                       source=rec.source, record_id=rec.record_id, lookahead_s=lookahead_s)
    out, peak = [], 0
    for chunk in _chunks(rec.signals, seed):
        out += sp.push(chunk)
        peak = max(peak, sp.buffered)
    out += sp.flush()
    return out, peak, sp


@pytest.mark.real_data
def test_streamed_windows_equal_stored_windows(cpsc):
    recs, store = cpsc
    for row, rec in enumerate(recs):
        wins, peak, sp = _stream(rec, seed=row)
        stored, starts, cmask, _ = _stored(store, rec.record_id)
        assert [w.start for w in wins] == starts.tolist()  # same grid, tail window included
        got = np.stack([w.window for w in wins])
        assert got.shape == stored.shape
        assert (np.stack([w.channel_mask for w in wins]) == cmask).all()
        assert cmask[0].sum() == 2  # leads I and II; the ten others zero-filled
        diff = np.abs(got - stored)[:, cmask[0]].max()
        assert diff <= WINDOW_TOL_MV, f"{rec.record_id}: {diff * 1e3:.3f} uV"
        # bounded memory: one window plus twice the lookahead plus one chunk, at the source rate
        assert peak <= 200 + 2 * sp.lookahead + 1500


@pytest.mark.real_data
def test_chunking_does_not_change_a_bit(cpsc):
    recs, _ = cpsc
    a, _, _ = _stream(recs[0], seed=10)
    b, _, _ = _stream(recs[0], seed=11)
    assert len(a) == len(b)
    assert all(np.array_equal(x.window, y.window) for x, y in zip(a, b, strict=True))


@pytest.mark.real_data
def test_latency_is_the_lookahead(cpsc):
    """Fed one sample at a time, a regular window comes out exactly ``lookahead`` samples
    after its last sample."""
    recs, _ = cpsc
    rec = recs[0]
    sp = StreamingPrep(rec.channels, rec.fs, 200, PrepConfig.model_validate(GEOMETRY),
                       lookahead_s=2.5)
    seen = []
    for i in range(2000):
        seen += sp.push(rec.signals[:, i:i + 1])
    assert sp.latency_s == 2.5
    assert seen and all(w.ready_at == w.start + 200 + 500 for w in seen)


@pytest.mark.real_data
def test_stream_embeddings_equal_embed(cpsc, tiny_folder, tmp_path):
    """Stream embeddings against ``embed`` on the stored windows, within the floor the int16
    storage itself sets: embed on convert's float windows (before int16) vs on the stored ones.
    Against those float windows the stream is closer still (0.23 uV of input difference)."""
    from biosig_prep.processing import process_recording
    from criss_cross.embed import embed_store, read_embeddings
    from criss_cross.hub import from_pretrained
    from criss_cross.stream import StreamEmbedder

    recs, store = cpsc
    model = from_pretrained(tiny_folder)
    ref = read_embeddings(embed_store(model, store, "ecg@200", tmp_path / "emb", pool="all",
                                      batch_size=64))
    for rec in recs:
        emb = StreamEmbedder(tiny_folder, channels=rec.channels, fs=rec.fs,
                             source=rec.source, record_id=rec.record_id)
        assert emb.rate == 200 and emb.prep_source.startswith("model card")
        res = []
        for chunk in _chunks(rec.signals, seed=len(rec.record_id)):
            res += emb.push(chunk)
        res += emb.flush()
        got = np.stack([r.embedding for r in res])
        want = ref["embeddings"][ref["record"] == _row(store, rec.record_id)]
        sw = process_recording(rec, PrepConfig.model_validate(GEOMETRY)).streams["ecg@200"]
        with torch.inference_mode():
            unrounded = model.embed(torch.from_numpy(sw.windows), pool="all",
                                    valid_channels=torch.from_numpy(sw.channel_mask),
                                    valid_patches=torch.from_numpy(sw.patch_mask)).numpy()
        floor = float(np.abs(unrounded - want).max())  # what int16 storage alone changes
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) <= 1.5 * floor
        assert float(np.abs(got - unrounded).max()) <= 0.5 * floor


@pytest.mark.real_data
def test_cli_stream_writes_embeddings(shared_data, tiny_folder, tmp_path):
    from criss_cross.cli import app

    hea = shared_data / "annotated" / "cpsc2021" / "data_8_4.hea"
    if not hea.is_file():
        pytest.skip(f"{hea} is absent")
    out = tmp_path / "s.npz"
    res = CliRunner().invoke(app, ["stream", str(hea), "-w", str(tiny_folder), "--out",
                                   str(out), "--chunk-s", "0.37"])
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        assert z["embeddings"].shape == (41, 50)  # 41 s: 41 windows of 1 s, the last a tail
        assert int(z["rate"]) == 200


def test_cli_stream_bad_file_is_one_line(tmp_path, tiny_folder):
    from criss_cross.cli import app

    bad = tmp_path / "x.csv"
    bad.write_text("1,2\n")
    res = CliRunner().invoke(app, ["stream", str(bad), "-w", str(tiny_folder)])
    assert res.exit_code == 1
    assert "not a WFDB (.hea) or EDF (.edf) file" in res.output


def test_push_rejects_wrong_shape_and_nan():
    sp = StreamingPrep(["I", "II"], 200.0, 200, PrepConfig.model_validate(GEOMETRY))
    with pytest.raises(ValueError, match="n_channels=2"):
        sp.push(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        sp.push(np.full((2, 10), np.nan))
