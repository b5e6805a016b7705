"""discover(): recursive walk, pairing, formats, ids, errors."""

from __future__ import annotations

import shutil

import pytest

from biosig_prep.readers import SourceFile, discover


@pytest.fixture
def tree(shared_data, tmp_path):
    cinc = shared_data / "ecg" / "cinc2021"
    (tmp_path / "georgia" / "g1").mkdir(parents=True)
    (tmp_path / "ptbxl").mkdir()
    for name, folder in (("E07500", "georgia/g1"), ("E07501", "georgia/g1"),
                         ("HR06000", "ptbxl")):
        for suffix in (".hea", ".mat"):
            shutil.copyfile(cinc / f"{name}{suffix}", tmp_path / folder / f"{name}{suffix}")
    # a header whose .mat has another name: that .mat is paired, not a candidate DREAMER file
    text = (cinc / "JS20000.hea").read_text().replace("JS20000.mat", "signals_js.mat")
    (tmp_path / "ptbxl" / "JS20000.hea").write_text(text)
    shutil.copyfile(cinc / "JS20000.mat", tmp_path / "ptbxl" / "signals_js.mat")
    (tmp_path / "README.txt").write_text("unrelated")
    (tmp_path / "ptbxl" / "RECORDS").write_text("HR06000\n")
    shutil.copyfile(shared_data / "eeg" / "eegmat" / "Subject00_2.edf", tmp_path / "s.EDF")
    (tmp_path / ".hidden").mkdir()
    shutil.copyfile(cinc / "E07502.hea", tmp_path / ".hidden" / "E07502.hea")
    return tmp_path


@pytest.mark.real_data
def test_walks_recursively_pairs_and_sorts(tree):
    found = discover([tree])
    assert found == sorted(found, key=lambda s: s.path)
    assert [(s.record_id, s.format) for s in found] == [
        ("georgia/g1/E07500", "wfdb"), ("georgia/g1/E07501", "wfdb"),
        ("ptbxl/HR06000", "wfdb"), ("ptbxl/JS20000", "wfdb"), ("s", "edf")]
    assert found[0].path == str(tree / "georgia" / "g1" / "E07500.hea")
    assert discover([tree]) == found  # stable


@pytest.mark.real_data
def test_format_filter_and_single_files(tree):
    assert [s.format for s in discover([tree], fmt="edf")] == ["edf"]
    assert len(discover([tree], fmt="wfdb")) == 4
    one = tree / "georgia" / "g1" / "E07500.hea"
    assert discover([one]) == [SourceFile(str(one), "wfdb", "E07500")]
    # the record path without suffix, or its .mat, name the same record
    assert discover([one.with_suffix("")]) == discover([one.with_suffix(".mat")]) == discover(
        [one])
    # the same file given twice is read once; ids stay unique across roots
    both = discover([tree / "georgia", tree / "georgia" / "g1", one])
    assert [s.record_id for s in both] == ["g1/E07500", "g1/E07501"]
    two_roots = discover([tree / "georgia" / "g1", tree / "ptbxl"])
    assert len({s.record_id for s in two_roots}) == len(two_roots) == 4


@pytest.mark.real_data
def test_duplicate_ids_get_a_suffix(tree, tmp_path_factory):
    other = tmp_path_factory.mktemp("other") / "g1"
    other.mkdir()
    for suffix in (".hea", ".mat"):
        shutil.copyfile(tree / "georgia" / "g1" / f"E07500{suffix}", other / f"E07500{suffix}")
    found = discover([tree / "georgia", other.parent])
    assert sorted(s.record_id for s in found) == ["g1/E07500", "g1/E07500#2", "g1/E07501"]


def test_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        discover([tmp_path / "nowhere"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no records found in .* \(looked for \.hea, \.edf, "
                                         r"\.bdf, \.fif, \.vhdr, DREAMER \.mat\)"):
        discover([tmp_path])
    with pytest.raises(ValueError, match=r"notes.txt: unknown format \(expected \.hea"):
        discover([tmp_path / "notes.txt"])
    with pytest.raises(ValueError, match="format must be one of"):
        discover([tmp_path], fmt="csv")
    with pytest.raises(ValueError, match="no input paths"):
        discover([])
    with pytest.raises(ValueError, match=r"no records found in .* \(looked for \.hea\)"):
        discover([tmp_path], fmt="wfdb")


def test_source_files_and_errors_pickle():
    import pickle

    from biosig_prep.readers import ReadError

    src = SourceFile("/data/E00001.hea", "wfdb", "g1/E00001")
    assert pickle.loads(pickle.dumps(src)) == src
    err = pickle.loads(pickle.dumps(ReadError("/data/E00001.mat", "truncated signal file")))
    assert isinstance(err, ReadError)
    assert str(err) == "/data/E00001.mat: truncated signal file"
    assert (err.path, err.reason) == ("/data/E00001.mat", "truncated signal file")
