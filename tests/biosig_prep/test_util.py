"""The shared helpers: atomic writes, config files, validation messages, hashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from biosig_prep.util import (
    ConfigFileError,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    read_mapping,
    sha256_json,
    validation_lines,
)


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2, "y": [1, 2]})
    assert json.loads(target.read_text()) == {"x": 2, "y": [1, 2]}
    assert sorted(os.listdir(target.parent)) == ["a.json"]


def test_atomic_write_refuses_nan_and_keeps_old_file(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(ValueError):
        atomic_write_json(target, {"x": float("nan")})
    assert target.read_text() == "old\n"


def test_atomic_write_error_names_the_target(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="could not write .*file/x.json"):
        atomic_write_text(blocker / "x.json", "{}")


@pytest.mark.parametrize("text,suffix,expected", [
    ("", ".yaml", {}), ("", ".json", {}), ("a: 1\nb: [2, 3]\n", ".yaml", {"a": 1, "b": [2, 3]}),
    ('{"a": 1}', ".json", {"a": 1}), ('{"a": 1}', ".cfg", {"a": 1}),
])
def test_read_mapping_reads_yaml_and_json(tmp_path, text, suffix, expected):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    assert read_mapping(path) == expected


@pytest.mark.parametrize("text,match", [
    ("a: [1, 2\n", "could not be parsed"),
    ("!!python/object/apply:os.system ['echo hi']\n", "could not be parsed"),
    ("- 1\n- 2\n", "must hold a mapping of settings, got list"),
])
def test_read_mapping_refuses_bad_files_in_one_line(tmp_path, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=match) as info:
        read_mapping(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_read_mapping_missing_file(tmp_path):
    with pytest.raises(ConfigFileError, match="does not exist"):
        read_mapping(tmp_path / "none.yaml")


def test_validation_lines_give_loc_and_message():
    class M(BaseModel):
        n: int

    with pytest.raises(ValidationError) as info:
        M.model_validate({"n": "x"})
    assert validation_lines(info.value) == [
        "n: Input should be a valid integer, unable to parse string as an integer"]


def test_hashes_are_stable(tmp_path):
    assert sha256_json({"b": 1, "a": 2}) == sha256_json({"a": 2, "b": 1})
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_versions_come_from_each_pyproject():
    import tomllib

    import biosig_prep
    import criss_cross
    import fusion_emotion
    from biosig_prep.util import installed_version

    root = Path(__file__).resolve().parents[2] / "packages"
    for name, mod in (("biosig-prep", biosig_prep), ("criss-cross", criss_cross),
                      ("fusion-emotion", fusion_emotion)):
        written = tomllib.loads((root / name / "pyproject.toml").read_text())["project"]
        assert mod.__version__ == written["version"], name
    assert installed_version("no-such-distribution-here") == "0+unknown"
