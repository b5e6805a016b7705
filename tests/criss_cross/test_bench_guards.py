"""The bench's guards: preprocessing mismatches and leakage across datasets (Challenge HR =
PTB-XL), on stores converted from files in the datasets' own layouts."""

from __future__ import annotations

import json

import pytest
from tests.criss_cross.conftest import TINY_ENCODER, TINY_PREP
from typer.testing import CliRunner

from criss_cross.bench.guards import find_overlap, preprocessing_mismatches, record_keys

ECG = {"modality": "ecg", "rates_hz": [200], "units": "mV", "band_pass_hz": [0.5, 40.0],
       "notch": "auto", "channels": ["I", "II"]}


def test_preprocessing_guard_names_both_values_of_each_mismatch():
    declared = {**ECG, "rates_hz": [100, 200, 500, 1000], "input_scale": 1.0}
    assert preprocessing_mismatches(declared, ECG, 1.0) == []
    rate = preprocessing_mismatches(declared, {**ECG, "rates_hz": [250]})
    assert rate == ["sampling rate: the encoder was trained at 100/200/500/1000 Hz, the stream "
                    "is at 250 Hz"]
    units = preprocessing_mismatches(declared, {**ECG, "units": "µV"})
    assert units == ["units: the encoder takes mV, the stream is in µV"]
    modality = preprocessing_mismatches(declared, {**ECG, "modality": "eeg"})
    assert modality == ["modality: the encoder takes ecg, the stream holds eeg"]
    band = preprocessing_mismatches(declared, {**ECG, "band_pass_hz": [0.3, 75.0]})
    assert band == ["band-pass: the encoder's data were filtered 0.5-40 Hz, the stream's "
                    "0.3-75 Hz"]
    order = preprocessing_mismatches(declared, {**ECG, "channels": ["II", "I"]})
    assert order == ["lead order: the encoder takes I,II, the stream holds II,I"]
    assert preprocessing_mismatches({**declared, "units": "uV"}, {**ECG, "units": "µV"}) == []
    assert len(preprocessing_mismatches(declared, {**ECG, "modality": "eeg", "units": "uV",
                                                   "rates_hz": [256]})) == 3


@pytest.fixture(scope="module")
def ptbxl_and_hr(tmp_path_factory):
    """A PTB-XL-layout store (ecg_ids 1-20, 10 patients, strat_fold = patient + 1) and a
    Challenge store of HR00008-HR00013 (the same recordings as PTB-XL ecg_id 8-13)."""
    from biosig_prep import convert
    from biosig_prep.config import PrepConfig
    from biosig_prep.synth.challenge import write_challenge_corpus
    from biosig_prep.synth.ptbxl import write_ptbxl

    base = tmp_path_factory.mktemp("guards")
    write_ptbxl(base / "ptbxl", n_records=20, n_patients=10, lr=False)
    write_challenge_corpus(base / "hr", 6, sources=["HR"], quirks=False, broken=0,
                           start_index=8)
    cfg = PrepConfig.model_validate(TINY_PREP)
    convert([base / "ptbxl"], base / "ptbxl.zarr", cfg, workers=0, progress=False, fmt="ptbxl")
    convert([base / "hr"], base / "hr.zarr", cfg, workers=0, progress=False)
    return base


def test_leakage_guard_catches_a_challenge_hr_record_in_a_ptbxl_test_fold(ptbxl_and_hr):
    from biosig_prep import open_store

    ptbxl, hr = (open_store(str(ptbxl_and_hr / n)) for n in ("ptbxl.zarr", "hr.zarr"))
    identity = {"stores": [{"records": record_keys(hr)}]}
    metas = [json.loads(m) for m in ptbxl.records()["metadata"]]
    keys = record_keys(ptbxl)
    test = [k for k, m in zip(keys, metas, strict=True) if int(m["strat_fold"]) == 10]
    assert sorted(k[3] for k in test) == [10, 20]
    hit = find_overlap(identity, test)
    assert hit["n"] == 1 and list(hit["by_source"].values()) == [1]
    assert "by PTB-XL ecg_id" in next(iter(hit["by_source"]))
    assert find_overlap({"stores": []}, test)["n"] == 0


@pytest.mark.slow
def test_bench_refuses_leaked_test_records_then_stamps_the_report(ptbxl_and_hr, tmp_path):
    from criss_cross.cli import app
    from criss_cross.hub import export_run
    from criss_cross.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig.model_validate(dict(
        stores=[str(ptbxl_and_hr / "hr.zarr")], streams=["ecg@100"], encoder=TINY_ENCODER,
        batch_size=4, steps=2, warmup_steps=1, checkpoint_every=2, num_workers=0, threads=1))
    pretrain(cfg, tmp_path / "run", progress=False)
    hub = export_run(tmp_path / "run", tmp_path / "hub")
    saved = json.loads((hub / "pretraining_data.json").read_text())
    assert [r[1] for r in saved["stores"][0]["records"]][:2] == ["HR00008", "HR00009"]
    args = ["bench", "ptbxl-superdiag", "--store", str(ptbxl_and_hr / "ptbxl.zarr"),
            "--stream", "ecg@100", "--weights", str(hub), "--out", str(tmp_path / "b"),
            "--n-boot", "20", "--min-count", "1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1
    assert "leakage: 1 of 2 test records were in the encoder's pretraining data" in res.output
    assert "by PTB-XL ecg_id" in res.output and "--allow-overlap" in res.output
    assert not (tmp_path / "b" / "cache").exists()  # refused before anything was embedded
    res = CliRunner().invoke(app, [*args, "--allow-overlap"])
    assert res.exit_code == 0, res.output
    report = (tmp_path / "b" / "report.md").read_text()
    assert report.startswith("> **WARNING:** leakage: 1 of 2 test records")
    doc = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert doc["split"]["method"].startswith("PTB-XL strat_fold")
    assert doc["split"]["counts"]["test"] == {"records": 2, "groups": 1}


def test_bench_refuses_an_eeg_model_on_an_ecg_store(ptbxl_and_hr, tmp_path):
    from criss_cross.cli import app

    res = CliRunner().invoke(app, ["bench", "ptbxl-superdiag", "--store",
                                   str(ptbxl_and_hr / "ptbxl.zarr"), "--stream", "ecg@100",
                                   "--weights", "cbramod", "--out", str(tmp_path / "b")])
    assert res.exit_code == 1
    line = res.output.strip()
    assert line.count("\n") == 0 and line.startswith("error: preprocessing mismatch")
    assert "modality: the encoder takes eeg, the stream holds ecg" in line
    assert "sampling rate: the encoder was trained at 200 Hz, the stream is at 100 Hz" in line
    assert "units: the encoder takes uV, the stream is in mV" in line
    assert "--allow-mismatch" in line


@pytest.fixture(scope="module")
def hr_run(ptbxl_and_hr):
    """A one-step tiny pretraining run on the HR store (notch auto, i.e. 50 Hz)."""
    from criss_cross.pretrain import PretrainConfig, pretrain

    run = ptbxl_and_hr / "hr-run"
    pretrain(PretrainConfig.model_validate(dict(
        stores=[str(ptbxl_and_hr / "hr.zarr")], streams=["ecg@100"], encoder=TINY_ENCODER,
        batch_size=4, steps=1, warmup_steps=1, checkpoint_every=1, num_workers=0, threads=1)),
        run, progress=False)
    return run


def test_notch_guard_compares_the_notch_applied_not_the_setting(ptbxl_and_hr, hr_run, tmp_path):
    """'auto' resolves to 50 Hz for PTB-XL (HR) records: a store converted with --notch 50
    holds the same windows and passes; --notch 60 is a real difference and is refused."""
    import numpy as np

    from biosig_prep import convert, open_store
    from biosig_prep.config import PrepConfig
    from criss_cross.bench.guards import applied_notch, check_stream_input
    from criss_cross.hub import export_run

    auto = ptbxl_and_hr / "hr.zarr"
    for hz in (50, 60):
        cfg = PrepConfig.model_validate({**TINY_PREP, "ecg": {"notch": hz}})
        convert([ptbxl_and_hr / "hr"], tmp_path / f"hr{hz}.zarr", cfg, workers=0,
                progress=False)
    a, b = (open_store(str(p)) for p in (auto, tmp_path / "hr50.zarr"))
    assert np.array_equal(a.stream("ecg@100").read()["windows"],
                          b.stream("ecg@100").read()["windows"])
    assert applied_notch(a, "ecg") == ("50", True)
    assert applied_notch(open_store(str(tmp_path / "hr60.zarr")), "ecg") == ("60", False)

    run = hr_run
    hub = export_run(run, tmp_path / "hub")
    assert json.loads((hub / "config.json").read_text())["input"]["notch"] == "50"
    for weights in (hub, run):
        assert check_stream_input(str(weights), str(tmp_path / "hr50.zarr"), "ecg@100") is None
        line = check_stream_input(str(weights), str(tmp_path / "hr60.zarr"), "ecg@100")
        assert line is not None and "notch: the encoder's data used 50, the stream's 60" in line


def test_a_declared_auto_notch_agrees_only_with_what_auto_gives():
    declared = {**ECG, "notch": "auto"}
    assert preprocessing_mismatches(declared, {**ECG, "notch": "50", "notch_is_auto": True}) == []
    assert preprocessing_mismatches(declared, {**ECG, "notch": "60", "notch_is_auto": False}) == [
        "notch: the encoder's data used auto, the stream's 60"]
    assert preprocessing_mismatches({**ECG, "notch": "50.0"}, {**ECG, "notch": "50"}) == []
    assert preprocessing_mismatches({**ECG, "notch": "50"}, {**ECG, "notch": "off"}) == [
        "notch: the encoder's data used 50, the stream's off"]


def test_export_bench_and_stream_take_max_params(ptbxl_and_hr, hr_run, tmp_path, monkeypatch):
    """A model above the default ceiling (here a ceiling of 1000 parameters, as a model
    pretrained with --max-params above 1e9 would be) is refused in one line by export, bench
    and StreamEmbedder, and loads when --max-params / max_params raises the ceiling."""
    from criss_cross.checkpoint import size
    from criss_cross.checkpoint.size import ModelSizeError
    from criss_cross.cli import app
    from criss_cross.stream import StreamEmbedder

    monkeypatch.setattr(size, "DEFAULT_MAX_PARAMS", 1000)
    runner, hub = CliRunner(), tmp_path / "hub"
    res = runner.invoke(app, ["export", str(hr_run), str(hub)])
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "above the ceiling of 1 k" in res.output and "--max-params" in res.output
    res = runner.invoke(app, ["export", str(hr_run), str(hub), "--max-params", "1000000"])
    assert res.exit_code == 0, res.output
    args = ["bench", "ptbxl-superdiag", "--store", str(ptbxl_and_hr / "ptbxl.zarr"),
            "--stream", "ecg@100", "--weights", str(hub), "--out", str(tmp_path / "b")]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert "above the ceiling of 1 k" in res.output and "--max-params" in res.output
    res = runner.invoke(app, [*args, "--max-params", "1000000"])
    assert res.exit_code == 1 and "leakage:" in res.output  # loaded; the next guard speaks
    with pytest.raises(ModelSizeError, match="above the ceiling of 1 k"):
        StreamEmbedder(hub, channels=["I"], fs=100.0)
    assert StreamEmbedder(hub, channels=["I"], fs=100.0, max_params=10**6).model is not None
