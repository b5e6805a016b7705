"""Issue 10 item 9 (input paths): non-UTF-8 names are skipped with a reason, a header's signal
file is confined to the record's folder, symlinked sub-folders are followed once. Real
Challenge records."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from biosig_prep import convert, open_store
from biosig_prep.readers import ReadError, discover
from biosig_prep.readers.wfdb_reader import read_wfdb

pytestmark = pytest.mark.real_data


def _copy(shared: Path, stem: str, dst_dir: bytes | Path, new: bytes | None = None) -> None:
    src = os.fsencode(shared / "ecg" / "cinc2021")
    dst_dir = os.fsencode(dst_dir)
    os.makedirs(dst_dir, exist_ok=True)
    name = new or stem.encode()
    text = open(os.path.join(src, stem.encode() + b".hea"), "rb").read()
    open(os.path.join(dst_dir, name + b".hea"), "wb").write(text.replace(stem.encode(), name))
    shutil.copyfile(os.path.join(src, stem.encode() + b".mat"),
                    os.path.join(dst_dir, name + b".mat"))


def _statuses(dst: Path) -> dict[str, str]:
    r = open_store(dst).records()
    return dict(zip(r["id"].tolist(), r["status"].tolist(), strict=True))


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
def test_non_utf8_names_are_skipped_with_a_reason(shared_data, tmp_path):
    src = tmp_path / "src"
    _copy(shared_data, "E07500", src)
    _copy(shared_data, "E07501", src, b"E\xff7501")
    _copy(shared_data, "E07502", os.fsencode(src) + b"/d\xfe")
    dst = tmp_path / "out.zarr"
    convert([src], dst, workers=0, progress=False)
    assert _statuses(dst) == {
        "E07500": "ok",
        "E\\xff7501": "read: file name is not valid UTF-8 (rename it)",
        "d\\xfe": "read: folder name is not valid UTF-8 (not searched; rename it)",
    }
    assert open_store(dst).complete


@pytest.mark.parametrize("name", ["../E07500.mat", "/etc/passwd", "sub/../../E07500.mat"])
def test_signal_file_outside_the_record_folder_is_refused(shared_data, tmp_path, name):
    _copy(shared_data, "E07500", tmp_path)  # the real file sits one level up
    rec = tmp_path / "rec"
    _copy(shared_data, "E07500", rec)
    hea = rec / "E07500.hea"
    hea.write_text(hea.read_text().replace("E07500.mat", name))
    (rec / "E07500.mat").unlink()
    with pytest.raises(ReadError, match="outside the record's folder"):
        read_wfdb(hea)
    with pytest.raises(ReadError, match="outside the record's folder"):
        read_wfdb(hea, fast=False)


def test_signal_file_in_a_sub_folder_is_read(shared_data, tmp_path):
    _copy(shared_data, "E07500", tmp_path / "sub")
    hea = tmp_path / "E07500.hea"
    hea.write_text((tmp_path / "sub" / "E07500.hea").read_text().replace(
        "E07500.mat", "sub/E07500.mat"))
    (tmp_path / "sub" / "E07500.hea").unlink()
    assert read_wfdb(hea).signals.shape == (12, 5000)


def test_symlinked_sub_folder_is_followed_once(shared_data, tmp_path):
    root = tmp_path / "root"
    _copy(shared_data, "E07500", root / "a")
    _copy(shared_data, "JS20000", tmp_path / "elsewhere")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # a loop
    found = discover([root])
    assert [s.record_id for s in found] == ["a/E07500", "linked/JS20000"]
    dst = tmp_path / "out.zarr"
    convert([root], dst, workers=0, progress=False)
    assert _statuses(dst) == {"a/E07500": "ok", "linked/JS20000": "ok"}
