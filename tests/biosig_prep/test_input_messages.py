"""Bad inputs give one line naming the path or field and the fix (issue 17 item 9, input
side): a non-UTF-8 input folder, sampling rates that are infinite or absurdly high in a header
or a config."""

from __future__ import annotations

import os
import shutil
import sys

import pytest
from pydantic import ValidationError

from biosig_prep.cli import app
from biosig_prep.config import PrepConfig
from biosig_prep.errors import ReadError
from biosig_prep.readers import read_wfdb
from biosig_prep.recording import rate_problem


def _run(args):
    from typer.testing import CliRunner

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
@pytest.mark.real_data
def test_a_non_utf8_input_folder_is_named_with_the_fix(shared_data, tmp_path):
    bad = os.path.join(os.fsencode(tmp_path), b"in\xffput")
    os.mkdir(bad)
    for suffix in (".hea", ".mat"):
        shutil.copy(shared_data / "ecg/cinc2021" / f"E07500{suffix}",
                    os.fsdecode(os.path.join(bad, b"E07500" + suffix.encode())))
    result = _run(["convert", os.fsdecode(bad), tmp_path / "s.zarr", "--rates", "500"])
    assert result.exit_code == 1, result.output  # was: 1 with a bare UnicodeEncodeError
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "in\\xffput: input folder path is not valid UTF-8" in lines[0]
    assert "rename the folder" in lines[0] and not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("fs, says", [("inf", "not finite"), ("1e9", "above 100000 Hz"),
                                      ("nan", "not finite"), ("0", "must be positive")])
def test_a_header_rate_that_is_not_a_rate(tmp_path, fs, says):
    (tmp_path / "r.hea").write_text(f"r 1 {fs} 10\nr.dat 16 1000/mV 16 0 0 0 0 I\n")
    (tmp_path / "r.dat").write_bytes(bytes(20))
    with pytest.raises(ReadError, match=f"r.hea: corrupt header: sampling rate .*{says}"):
        read_wfdb(tmp_path / "r.hea")


def test_config_rates_are_bounded():
    assert rate_problem(500) is None and "not a number" in rate_problem("x")
    with pytest.raises(ValidationError, match="rates must be at most 100000 Hz"):
        PrepConfig(rates=[1_000_000_000])
    with pytest.raises(ValidationError, match="less than or equal to 100000"):
        PrepConfig.model_validate({"dreamer": {"rate": 10**9}})


def test_a_negative_signal_length_is_refused(tmp_path):
    (tmp_path / "r.hea").write_text("r 1 500 -5\nr.dat 16 1000/mV 16 0 0 0 0 I\n")
    (tmp_path / "r.dat").write_bytes(bytes(20))
    with pytest.raises(ReadError, match="signal length -5 is negative"):  # was: read, cut
        read_wfdb(tmp_path / "r.hea")


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
@pytest.mark.real_data
def test_a_non_utf8_destination_is_named_with_the_fix(shared_data, tmp_path):
    dst = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"o\xffut.zarr"))
    result = _run(["convert", shared_data / "ecg/cinc2021/E07500.hea", dst, "--rates", "500"])
    assert result.exit_code == 1, result.output  # was: a UnicodeEncodeError traceback
    assert result.output.strip() == (f"error: {tmp_path}/o\\xffut.zarr: destination path is "
                                     "not valid UTF-8 (the bytes shown as \\xNN); choose a "
                                     "destination with a UTF-8 name")


def test_the_old_flat_std_names_its_replacements():
    with pytest.raises(ValidationError, match="flat_std_mv .ECG, default 1e-4. and flat_std_uv"):
        PrepConfig.model_validate({"qc": {"flat_std": 1e-6}})
