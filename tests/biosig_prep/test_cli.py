"""``biosig-prep convert`` / ``inspect`` / ``synth`` end to end through typer's CliRunner, on a
generated corpus, on the real files in ../shared/data, and on bad inputs: each problem gets a
message naming the file, the other records are still converted, and the exit code says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from biosig_prep import open_store
from biosig_prep.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app
from biosig_prep.synth.challenge import write_challenge_corpus
from biosig_prep.synth.dreamer import write_dreamer_mat

runner = CliRunner()


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    write_challenge_corpus(out, n_records=10, seed=5, sources=["JS", "E"], durations=[10, 20],
                           quirks=False, broken=0)
    return out


def test_convert_then_inspect(clean, tmp_path):
    dst = tmp_path / "out.zarr"
    result = invoke("convert", clean, dst, "--workers", 0, "--no-progress")
    assert result.exit_code == EXIT_OK, result.output
    assert "converted 10 of 10 records" in result.output
    store = open_store(dst)
    assert store.summary["records_ok"] == 10
    assert store.stream_names == ["ecg@100", "ecg@200", "ecg@500", "ecg@1000"]

    text = invoke("inspect", dst)
    assert text.exit_code == 0
    for part in ("complete", "10 in, 10 ok, 0 skipped", "ecg@500", "12x10x200", "rates 100, "
                 "200, 500, 1000 Hz", "ecg channels (12): I, II, III, aVR"):
        assert part in text.output, part
    desc = json.loads(invoke("inspect", dst, "--json").output)
    assert desc["records"]["ok"] == 10 and desc["complete"] is True
    assert desc["streams"]["ecg@500"]["windows"] == len(store.stream("ecg@500"))
    assert desc["config"]["rates"] == [100, 200, 500, 1000]

    again = invoke("convert", clean, dst, "--workers", 0, "--no-progress")
    assert again.exit_code == EXIT_OK and "already complete" in again.output


def test_options_and_config_file_map_onto_the_config(clean, tmp_path):
    cfg = tmp_path / "prep.yaml"
    cfg.write_text("rates: [200, 1000]\necg:\n  h_freq: 35\nqc:\n  max_abs_mv: 15\n")
    dst = tmp_path / "out.zarr"
    result = invoke("convert", clean, dst, "--config", cfg, "--rates", "500", "--notch", "off",
                    "--workers", 0, "--no-progress")
    assert result.exit_code == EXIT_OK, result.output
    config = open_store(dst).config
    assert config["rates"] == [500] and config["ecg"]["h_freq"] == 35.0
    assert config["ecg"]["notch"] == config["eeg"]["notch"] == "off"
    assert config["qc"]["max_abs_mv"] == 15.0


@pytest.mark.parametrize(("args", "message"), [
    (["--rates", "0"], "rates: Value error, rates must be positive"),
    (["--rates", "a,b"], "rates: Value error, rates must be comma-separated integers"),
    (["--notch", "55"], "ecg.notch: Value error, notch must be 'auto', 'off', 50 or 60"),
])
def test_bad_option_values_print_loc_and_message(clean, tmp_path, args, message):
    result = invoke("convert", clean, tmp_path / "x.zarr", *args, "--no-progress")
    assert result.exit_code == EXIT_ERROR
    assert f"error: {message}" in result.output
    assert not (tmp_path / "x.zarr").exists()


def test_bad_config_file(clean, tmp_path):
    cfg = tmp_path / "bad.json"
    cfg.write_text('{"n_patches": -1, "colour": "blue"}')
    result = invoke("convert", clean, tmp_path / "x.zarr", "--config", cfg)
    assert result.exit_code == EXIT_ERROR
    assert "error: n_patches: Input should be greater than or equal to 1" in result.output
    assert "error: colour: Extra inputs are not permitted" in result.output
    missing = invoke("convert", clean, tmp_path / "x.zarr", "--config", tmp_path / "none.yaml")
    assert missing.exit_code == EXIT_ERROR and "none.yaml does not exist" in missing.output


def test_usage_errors(clean, tmp_path):
    assert invoke("convert", clean, tmp_path / "x", "--format", "xyz").exit_code == EXIT_USAGE
    both = invoke("convert", clean, tmp_path / "x", "--workers", 2, "--scheduler", "tcp://h:1")
    assert both.exit_code == EXIT_USAGE and "mutually exclusive" in both.output
    assert invoke("convert", clean).exit_code == EXIT_USAGE  # no DST
    assert "Exit codes: 0 every record converted" in invoke("convert", "--help").output


def test_bad_inputs_are_named_and_the_rest_converted(clean, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(clean, src)
    headers = sorted(src.glob("*.hea"))
    corrupt, truncated = headers[0], headers[1]
    corrupt.write_text("this is not a header\n")
    mat = truncated.with_suffix(".mat")
    mat.write_bytes(mat.read_bytes()[:1000])
    odd = tmp_path / "notes.xyz"
    odd.write_text("?")
    empty = tmp_path / "empty"
    empty.mkdir()
    dst = tmp_path / "out.zarr"
    result = invoke("convert", src, odd, empty, dst, "--workers", 0, "--no-progress")
    assert result.exit_code == EXIT_PARTIAL, result.output
    out = result.output
    assert "converted 8 of 10 records" in out
    assert f"{corrupt} ({corrupt.stem}): read: corrupt header" in out
    assert f"{truncated} ({truncated.stem}): read: truncated" in out
    assert f"{odd}: unknown format" in out
    assert f"no records found in {empty}" in out
    statuses = open_store(dst).records()["status"]
    assert sum(s.startswith("read: ") for s in statuses) == 2


def test_nothing_to_convert(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("convert", empty, tmp_path / "x.zarr")
    assert result.exit_code == EXIT_ERROR
    assert f"error: no records found in {empty}" in result.output
    odd = tmp_path / "a.xyz"
    odd.write_text("?")
    result = invoke("convert", odd, tmp_path / "x.zarr")
    assert result.exit_code == EXIT_ERROR and f"{odd}: unknown format" in result.output
    result = invoke("convert", tmp_path / "missing", tmp_path / "x.zarr")
    assert result.exit_code == EXIT_ERROR and "no such file or directory" in result.output


def test_a_rate_the_data_cannot_support(clean, tmp_path):
    result = invoke("convert", clean, tmp_path / "x.zarr", "--rates", "50,500", "--workers", 0,
                    "--no-progress")
    assert result.exit_code == EXIT_ERROR  # nothing converted
    assert "Nyquist frequency 25.0 (output rate 50 Hz)" in result.output
    assert "error: no record was converted" in result.output
    assert str(sorted(clean.glob("*.hea"))[0]) in result.output


def test_truncated_dreamer_file(tmp_path):
    good = tmp_path / "DREAMER.mat"
    write_dreamer_mat(good, n_subjects=1, n_clips=2, clip_seconds=12.0, baseline_seconds=2.0)
    bad = tmp_path / "bad" / "DREAMER.mat"
    bad.parent.mkdir()
    bad.write_bytes(good.read_bytes()[:4000])
    result = invoke("convert", bad, tmp_path / "x.zarr", "--format", "dreamer", "--no-progress")
    assert result.exit_code == EXIT_ERROR
    assert f"{bad} (DREAMER): read: " in result.output
    ok = invoke("convert", good, tmp_path / "d.zarr", "--format", "dreamer", "--no-progress")
    assert ok.exit_code == EXIT_OK, ok.output
    assert "labels" in invoke("inspect", tmp_path / "d.zarr").output


def test_inspect_errors_and_incomplete(tmp_path):
    result = invoke("inspect", tmp_path / "nothing.zarr")
    assert result.exit_code == EXIT_ERROR and "not a biosig-prep store" in result.output


def test_synth_is_mounted(tmp_path):
    assert invoke("synth", "--help").exit_code == 0
    result = invoke("synth", "challenge", tmp_path / "c", "-n", 3, "--broken", 0)
    assert result.exit_code == 0 and len(list((tmp_path / "c").glob("*.hea"))) == 3


@pytest.mark.real_data
def test_real_challenge_files(shared_data, tmp_path):
    """The 50 real CinC 2021 records and the two reduced-lead copies of JS20000."""
    ecg = shared_data / "ecg"
    dst = tmp_path / "real.zarr"
    result = invoke("convert", ecg / "cinc2021", ecg / "reduced-leads", dst, "--workers", 0,
                    "--no-progress")
    assert result.exit_code == EXIT_OK, result.output
    store = open_store(dst)
    records = store.records()
    assert len(records["id"]) == 52 and (records["status"] == "ok").all()
    assert set(records["source"]) == {"georgia", "ptb-xl", "chapman-ningbo"}
    s500 = store.stream("ecg@500")
    # 10 s records, tail policy pad: 3 windows at 500 Hz (the last with 5 of 10 patches), 5 at
    # 1000 Hz, and one at 100 Hz (1000 samples: 5 patches)
    assert len(s500) == 156 and len(store.stream("ecg@1000")) == 260
    s100 = store.stream("ecg@100")
    assert len(s100) == 52 and (s100.patch_mask[:].sum(axis=1) == 5).all()
    assert s500.patch_mask[:].sum(axis=1).tolist()[:3] == [10, 10, 5]
    ids = list(records["id"])
    six, two = ids.index("six/JS20000"), ids.index("two/JS20000")
    mask = s500.channel_mask[:]
    rec = s500.record[:]
    assert mask[rec == six].sum(axis=1).tolist() == [6, 6, 6]
    assert mask[rec == two][:, :2].all() and not mask[rec == two][:, 2:].any()
    full = ids.index("cinc2021/JS20000") if "cinc2021/JS20000" in ids else None
    if full is not None:  # the same record with all leads: the limb leads agree
        w_full = s500.windows[np.flatnonzero(rec == full)]
        w_two = s500.windows[np.flatnonzero(rec == two)]
        # int16 at 1 µV: equal to within one step
        np.testing.assert_allclose(w_two[:, :2], w_full[:, :2], atol=1e-3 + 1e-6)
    assert json.loads(records["metadata"][0])["dx"]
