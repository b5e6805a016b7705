"""PTB-XL in its published layout (written by synth.ptbxl), and identity of Challenge HR records."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest

from biosig_prep.config import PrepConfig
from biosig_prep.convert import convert
from biosig_prep.datasets.ptbxl import (
    DATABASE_COLUMNS,
    STATEMENT_COLUMNS,
    discover_ptbxl,
    label_sets,
    parse_scp_codes,
    read_ptbxl,
    read_tables,
)
from biosig_prep.errors import ReadError
from biosig_prep.readers import discover, read_wfdb
from biosig_prep.store import open_store
from biosig_prep.synth.ptbxl import write_ptbxl


@pytest.fixture(scope="module")
def ptbxl_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ptbxl")
    write_ptbxl(root, 6, n_patients=3, seed=1)
    return root


def test_layout_is_the_published_one(ptbxl_dir) -> None:
    with open(ptbxl_dir / "ptbxl_database.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == DATABASE_COLUMNS
    with open(ptbxl_dir / "scp_statements.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == STATEMENT_COLUMNS
    assert (ptbxl_dir / "records500/00000/00001_hr.dat").stat().st_size == 5000 * 12 * 2
    assert (ptbxl_dir / "records100/00000/00006_lr.hea").read_text().startswith(
        "00006_lr 12 100 1000\n00006_lr.dat 16 1000.0(0)/mV 16 0 ")


def test_label_sets_by_hand(ptbxl_dir) -> None:
    statements = read_tables(ptbxl_dir).statements
    codes = parse_scp_codes("{'IMI': 50.0, 'ASMI': 50.0, 'ISCAL': 50.0, 'ABQRS': 0.0, "
                            "'AFIB': 0.0, 'XYZ': 100.0}")
    sets = label_sets(codes, statements)
    assert sets == {
        "all": ["ABQRS", "AFIB", "ASMI", "IMI", "ISCAL", "XYZ"],
        "diag": ["ASMI", "IMI", "ISCAL"],
        "subdiag": ["AMI", "IMI", "ISCA"],  # ASMI -> AMI, ISCAL -> ISCA
        "superdiag": ["MI", "STTC"],
        "form": ["ABQRS"],  # likelihood 0 counts
        "rhythm": ["AFIB"],
    }
    # NDT is diagnostic and form at once
    assert label_sets({"NDT": 100.0}, statements)["form"] == ["NDT"]
    assert label_sets({"NDT": 100.0}, statements)["superdiag"] == ["STTC"]


def test_scp_codes_parsed_safely() -> None:
    with pytest.raises(ReadError, match="not a dict literal"):
        parse_scp_codes("__import__('os').system('echo hacked')")
    with pytest.raises(ReadError, match="not a number"):
        parse_scp_codes("{'NORM': 'x'}")
    assert parse_scp_codes("{'AFIB': 100}") == {"AFIB": 100.0}


def test_reader_matches_wfdb(ptbxl_dir) -> None:
    wfdb = pytest.importorskip("wfdb")
    rec = read_ptbxl(ptbxl_dir / "records500/00000/00002_hr.hea")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = wfdb.rdrecord(str(ptbxl_dir / "records500/00000/00002_hr"))
    np.testing.assert_array_equal(rec.signals, ref.p_signal.T)
    assert rec.fs == 500.0 and rec.record_id == "records500/00000/00002_hr"
    meta = rec.metadata
    assert meta["ecg_id"] == meta["ptbxl_ecg_id"] == 2 and rec.source == "ptb-xl"
    assert meta["scp_codes"] == {"IMI": 50.0, "ASMI": 50.0, "ISCAL": 50.0, "ABQRS": 0.0,
                                 "AFIB": 0.0}
    assert meta["ptbxl_superdiag"] == ["MI", "STTC"] and meta["sex"] in ("Male", "Female")
    with open(ptbxl_dir / "ptbxl_database.csv", newline="") as fh:
        row = list(csv.DictReader(fh))[1]
    assert meta["patient_id"] == str(int(float(row["patient_id"])))
    assert meta["strat_fold"] == int(row["strat_fold"]) and meta["age"] == int(float(row["age"]))


def test_discover_picks_the_rate_folder(ptbxl_dir) -> None:
    hr = discover([ptbxl_dir], "ptbxl")
    assert [s.record_id for s in hr] == [f"records500/00000/{i:05d}_hr" for i in range(1, 7)]
    assert {s.format for s in hr} == {"ptbxl"}
    assert discover([ptbxl_dir])[0].format == "ptbxl"  # auto: the CSV marks the folder
    lr = discover([ptbxl_dir / "records100"], "ptbxl")
    assert [s.record_id for s in lr] == [f"records100/00000/{i:05d}_lr" for i in range(1, 7)]
    with pytest.raises(ValueError, match="ptbxl_database.csv"):
        discover_ptbxl(ptbxl_dir.parent)


def test_bad_csv_is_one_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from biosig_prep.cli import app

    (tmp_path / "ptbxl_database.csv").write_text("ecg_id,foo\n1,2\n")
    result = CliRunner().invoke(app, ["convert", str(tmp_path), str(tmp_path / "o.zarr"),
                                      "--format", "ptbxl"])
    assert result.exit_code == 1 and result.exception is None or isinstance(
        result.exception, SystemExit)
    assert "ptbxl_database.csv: column(s) ['patient_id'" in result.output
    assert "Traceback" not in result.output


def test_convert_ptbxl(ptbxl_dir, tmp_path) -> None:
    (ptbxl_dir / "records500/00000/00004_hr.hea").rename(tmp_path / "gone.hea")
    try:
        s = convert([ptbxl_dir], tmp_path / "p.zarr", PrepConfig(rates=[100, 500]),
                    fmt="ptbxl", workers=0, progress=False)
    finally:
        (tmp_path / "gone.hea").rename(ptbxl_dir / "records500/00000/00004_hr.hea")
    assert s.records_ok == 5 and s.records_skipped == 1
    store = open_store(tmp_path / "p.zarr")
    rec = store.records()
    assert "00004_hr.hea is missing" in rec["status"][3]
    meta = [json.loads(m) for m in rec["metadata"]]
    assert [m.get("ptbxl_ecg_id") for m in meta] == [1, 2, 3, None, 5, 6]
    # 3 patients, folds by patient
    assert len({m["patient_id"] for m in meta if "patient_id" in m}) == 3
    assert store.stream("ecg@500").window_labels() == {}  # PTB-XL labels live in metadata
    assert len(store.stream("ecg@500")) == 5 * 3 and len(store.stream("ecg@100")) == 5


def test_challenge_hr_records_are_ptbxl(shared_data) -> None:
    folder = shared_data / "ecg" / "cinc2021"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    hr = read_wfdb(folder / "HR06003.hea")
    assert hr.source == "ptb-xl" and hr.metadata["ptbxl_ecg_id"] == 6003
    # the Challenge headers name no patient
    for name in ("HR06003", "E07500", "JS20000"):
        assert "patient_id" not in read_wfdb(folder / f"{name}.hea").metadata
    for name, source in (("E07500", "georgia"), ("JS20000", "chapman-ningbo")):
        rec = read_wfdb(folder / f"{name}.hea")
        assert rec.source == source and "ptbxl_ecg_id" not in rec.metadata
        assert rec.rhythms is None
