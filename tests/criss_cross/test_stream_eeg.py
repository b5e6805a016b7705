"""``criss-cross stream`` and the Hub card on a real EEG recording (EEGMAT Subject00_2.edf:
20 EEG channels and one ECG channel at 500 Hz, 62 s): the EEG signals are streamed, placed by
name in the store's ``eeg_channels`` as ``convert`` places them, and the card records them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.criss_cross.conftest import TINY_ENCODER
from typer.testing import CliRunner

# the store's montage: four of the file's channels out of file order, and one it lacks
MONTAGE = ["EEG Cz", "EEG Fz", "EEG Pz", "EEG O2", "EEG Oz"]
# stream vs store: half the int16 step (0.1 uV of the 0.2 uV EEG step) plus the segment edge
# effect at the default 6 s lookahead (measured 0.26 uV in all on this record, windows up to
# 84 uV): 0.5 uV
DIFF_TOL_UV = 0.5
PREP = {"rates": [200], "n_patches": 4, "patch_size": 50, "dreamer": {"window_seconds": 1.0}}


@pytest.fixture(scope="module")
def eeg(shared_data: Path, tmp_path_factory):
    """The EDF, a store converted from it with ``MONTAGE``, one with Fz and Cz swapped, and a
    Hub folder exported from a 2-step run on the first."""
    from biosig_prep import convert
    from biosig_prep.config import PrepConfig
    from criss_cross.hub import export_run
    from criss_cross.pretrain import PretrainConfig, pretrain

    edf = shared_data / "eeg" / "eegmat" / "Subject00_2.edf"
    if not edf.is_file():
        pytest.skip(f"{edf} is absent")
    base = tmp_path_factory.mktemp("eeg")
    stores = {}
    for name, montage in (("a", MONTAGE), ("b", [MONTAGE[1], MONTAGE[0], *MONTAGE[2:]])):
        stores[name] = str(base / f"{name}.zarr")
        summary = convert([edf], stores[name],
                          PrepConfig.model_validate({**PREP, "eeg_channels": montage}),
                          workers=0, progress=False)
        assert summary.records_ok >= 1
    cfg = PretrainConfig.model_validate(dict(
        stores=[stores["a"]], streams=["eeg@200"], encoder=TINY_ENCODER, batch_size=4, steps=2,
        warmup_steps=1, checkpoint_every=2, num_workers=0, threads=1))
    pretrain(cfg, base / "run", progress=False)
    hub = export_run(base / "run", base / "hub")
    return edf, stores, hub


@pytest.mark.real_data
def test_card_records_the_stores_eeg_channels(eeg):
    _, _, hub = eeg
    inp = json.loads((hub / "config.json").read_text())["input"]
    assert inp["modality"] == "eeg"
    assert inp["channels"] == MONTAGE
    assert inp["preprocessing"]["eeg_channels"] == MONTAGE


@pytest.mark.real_data
def test_guard_refuses_a_hub_eeg_encoder_on_another_channel_order(eeg):
    from criss_cross.bench.guards import check_stream_input

    _, stores, hub = eeg
    assert check_stream_input(str(hub), stores["a"], "eeg@200") is None
    bad = check_stream_input(str(hub), stores["b"], "eeg@200")
    assert bad is not None
    assert "lead order: the encoder takes EEG Cz,EEG Fz,EEG Pz,EEG O2,EEG Oz, the stream holds EEG Fz,EEG Cz," in bad


@pytest.mark.real_data
def test_streamed_eeg_is_placed_as_convert_places_it(eeg):
    """The stream reads the EDF's EEG (not its ECG), places it in the card's montage by name
    (Oz zero-filled and masked) and gives the stored windows within the int16 step."""
    from biosig_prep import open_store
    from criss_cross.stream import StreamEmbedder, read_chunks

    edf, stores, hub = eeg
    rec, chunks = read_chunks(edf, chunk_s=0.7, modality="eeg")
    emb = StreamEmbedder(hub, channels=rec.channels, fs=rec.fs)
    assert emb.channels == MONTAGE and emb.prep.missing == ["EEG Oz"]
    res = []
    for chunk in chunks:
        res += emb.push(chunk)
    res += emb.flush()
    s = open_store(stores["a"]).stream("eeg@200")
    stored = s.reader().read(0, len(s))
    cmask = np.asarray(s.channel_mask[:])
    assert stored.shape == (len(res), 5, 4, 50)
    got = np.stack([r.window for r in res])
    assert (np.stack([r.channel_mask for r in res]) == cmask).all()
    assert cmask[0].tolist() == [True, True, True, True, False]
    assert not got[:, 4].any()
    diff = float(np.abs(got - stored)[:, :4].max())
    assert diff <= DIFF_TOL_UV, diff


@pytest.fixture(scope="module")
def tiny_eeg_folder(tmp_path_factory) -> Path:
    """A Hub folder of an untrained tiny EEG encoder (no ONNX graphs)."""
    import torch

    from criss_cross import CrissCrossEncoder, EncoderConfig, save_pretrained

    torch.manual_seed(0)
    model = CrissCrossEncoder(EncoderConfig.model_validate(TINY_ENCODER)).eval()
    spec = {"modality": "eeg", "n_patches": 4, "patch_size": 50, "rates_hz": [200],
            "units": "uV", "input_scale": 1.0, "preprocessing": PREP}
    return save_pretrained(model, tmp_path_factory.mktemp("hub") / "tiny-eeg", name="tiny-eeg",
                           input_spec=spec)


def _run(*args: str):
    from criss_cross.cli import app

    return CliRunner().invoke(app, ["stream", *args])


@pytest.mark.real_data
def test_cli_streams_the_eeg_of_an_edf(eeg, tmp_path):
    edf, _, hub = eeg
    res = _run(str(edf), "-w", str(hub), "--out", str(tmp_path / "s.npz"))
    assert res.exit_code == 0, res.output
    assert "20 channels at 500 Hz -> 200 Hz windows" in res.output  # not the 1 ECG channel
    with np.load(tmp_path / "s.npz") as z:
        assert z["embeddings"].shape == (62, 50)


@pytest.mark.real_data
def test_cli_rate_outside_the_cards_rates(eeg):
    edf, _, hub = eeg
    res = _run(str(edf), "-w", str(hub), "--rate", "250")
    assert res.exit_code == 1
    line = res.output.strip()
    assert line.count("\n") == 0 and line.startswith("error: --rate 250 Hz")
    assert "rates_hz 200" in line and "--allow-mismatch" in line
    res = _run(str(edf), "-w", str(hub), "--rate", "250", "--allow-mismatch")
    assert res.exit_code == 0, res.output
    assert "warning: --rate 250 Hz" in res.output


def test_cli_missing_file_is_one_line(tmp_path, tiny_eeg_folder):
    res = _run(str(tmp_path / "nofile.edf"), "-w", str(tiny_eeg_folder))
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)  # no ReadError traceback
    assert res.output.strip().count("\n") == 0 and "nofile.edf" in res.output


def test_cli_missing_int8_graph_names_both_flags(shared_data, tiny_eeg_folder):
    pytest.importorskip("onnxruntime")
    edf = shared_data / "eeg" / "eegmat" / "Subject00_2.edf"
    if not edf.is_file():
        pytest.skip(f"{edf} is absent")
    res = _run(str(edf), "-w", str(tiny_eeg_folder), "--backend", "onnx-int8")
    assert res.exit_code == 1
    assert "`criss-cross export SRC OUT --onnx --int8`" in res.output
