"""DREAMER inputs: ECG already in mV (issue 19 item 2), what `inspect` prints for a DREAMER store,
and sizes checked before anything is allocated (issue 17 item 7): a huge noOfVideoSequences,
compressed MATLAB v5 variables that declare or hold far more than the file or its header."""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from biosig_prep import synth
from biosig_prep.config import PrepConfig
from biosig_prep.convert import convert
from biosig_prep.datasets.dreamer import ecg_units_of, read_dreamer
from biosig_prep.errors import ReadError
from biosig_prep.readers import read_wfdb
from biosig_prep.readers.matfile import check_v5_bounds
from biosig_prep.store import open_store
from biosig_prep.summary import describe_store, render_text

SMALL = dict(n_subjects=2, n_clips=2, clip_seconds=12.0, baseline_seconds=2.0, seed=3)


def write_v5_zeros(path: Path, name: str, rows: int, cols: int,
                   declare: int | None = None) -> None:
    """A MATLAB v5 file with one zlib-compressed double matrix of zeros, written as a stream
    (a few hundred KB on disk for hundreds of MB inside). ``declare``: the byte count its
    ``miMATRIX`` tag states (default: the true one)."""
    nm = name.encode()
    flags = struct.pack("<IIII", 6, 8, 6, 0)  # miUINT32 array flags: class double
    dims = struct.pack("<IIii", 5, 8, rows, cols)  # miINT32 dimensions
    name_el = struct.pack("<II", 1, len(nm)) + nm + b"\0" * (-len(nm) % 8)
    n_data = rows * cols * 8
    data_tag = struct.pack("<II", 9, n_data)  # miDOUBLE
    body = len(flags) + len(dims) + len(name_el) + len(data_tag) + n_data
    head = struct.pack("<II", 14, body if declare is None else declare)
    comp = zlib.compressobj(6)
    parts = [comp.compress(head + flags + dims + name_el + data_tag)]
    block, left = bytes(1 << 20), n_data
    while left:
        parts.append(comp.compress(block[:min(left, len(block))]))
        left -= min(left, len(block))
    parts.append(comp.flush())
    payload = b"".join(parts)
    header = b"MATLAB 5.0 MAT-file, written by tests".ljust(116) + bytes(8) \
        + struct.pack("<H", 0x0100) + b"IM"
    path.write_bytes(header + struct.pack("<II", 15, len(payload)) + payload)


def test_the_v5_writer_writes_what_loadmat_reads(tmp_path):
    write_v5_zeros(tmp_path / "z.mat", "val", 2, 3)
    assert scipy.io.loadmat(tmp_path / "z.mat")["val"].shape == (2, 3)
    assert check_v5_bounds(tmp_path / "z.mat") > 48


def test_ecg_units_judged_from_the_values():
    rng = np.random.default_rng(0)
    mv = np.sin(np.linspace(0, 60, 5000))[:, None] * [1.0, 0.6] + 0.01 * rng.standard_normal((5000, 2))
    counts = np.clip(np.rint(mv / 0.0041863 + 2060), 0, 4095)
    assert ecg_units_of(counts) == "counts"
    assert ecg_units_of(mv) == "mV"
    assert ecg_units_of(mv / 0.0041863) == "counts"  # fractional but far too large for mV
    assert ecg_units_of(np.rint(mv * 30) + 5000) is None  # whole, outside the ADC, small


def test_an_ecg_already_in_mv_is_not_scaled_again(tmp_path):
    counts, mv = tmp_path / "counts.mat", tmp_path / "mv.mat"
    synth.write_dreamer_mat(counts, **SMALL)
    synth.write_dreamer_mat(mv, **SMALL, ecg_units="mV")
    cfg = PrepConfig()
    convert([counts], tmp_path / "c.zarr", cfg, workers=0, progress=False)
    convert([mv], tmp_path / "m.zarr", cfg, workers=0, progress=False)  # was: every trial
    sc, sm = open_store(tmp_path / "c.zarr"), open_store(tmp_path / "m.zarr")  # implausible
    rm = sm.records()
    assert list(rm["status"]) == ["ok"] * 4
    meta = [json.loads(m) for m in rm["metadata"]]
    assert {(m["ecg_units_in"], m["ecg_scale"]) for m in meta} == {("mV", 1.0)}
    assert {json.loads(m)["ecg_units_in"] for m in sc.records()["metadata"]} == {"counts"}
    # the same mV either way, to the ADC's step (0.0042 mV) after the filters
    a, b = sc.stream("ecg@200").windows[:], sm.stream("ecg@200").windows[:]
    assert a.shape == b.shape and np.abs(a - b).max() < 0.01
    desc = describe_store(str(tmp_path / "m.zarr"))
    assert desc["ecg_units_in"] == {"mV x 1": 4}
    text = render_text(desc)
    assert "eeg: 0.3-45 Hz" in text and "eeg: 0.3-75 Hz" not in text  # what was applied
    assert "0.0041863 mV per count" in text and "records read as mV x 1 (4)" in text


def test_an_unclear_ecg_names_the_settings(tmp_path, monkeypatch):
    import biosig_prep.synth.dreamer as sd

    path = tmp_path / "odd.mat"  # whole numbers outside the ADC, a spread neither can explain
    monkeypatch.setattr(sd, "ecg_as_written", lambda ecg, units: np.rint(ecg * 10) + 5000.0)
    synth.write_dreamer_mat(path, **SMALL)
    trial = next(read_dreamer(path).trials())
    assert "dreamer.ecg_units" in trial.problem and "dreamer.ecg_scale" in trial.problem
    assert next(read_dreamer(path, ecg_units="counts").trials()).problem is None


def test_a_huge_clip_count_is_refused_before_allocating(tmp_path):
    path = tmp_path / "DREAMER.mat"
    synth.write_dreamer_mat(path, **SMALL)
    mat = scipy.io.loadmat(path)
    d = mat["DREAMER"][0, 0]
    d["noOfVideoSequences"][0, 0] = 1e9
    scipy.io.savemat(path, {"DREAMER": d})
    t0 = time.perf_counter()
    with pytest.raises(ReadError, match="noOfVideoSequences is 1000000000 but no subject's "
                                        "EEG.stimuli holds more than 2 clips"):
        read_dreamer(path)
    assert time.perf_counter() - t0 < 5


def test_a_compressed_dreamer_bomb_is_refused(tmp_path):
    path = tmp_path / "DREAMER.mat"
    write_v5_zeros(path, "DREAMER", 1, 2_500_000)  # 20 MB of zeros in ~20 KB
    with pytest.raises(ReadError, match=r"declares 20 MB decompressed from .* more than the "
                                        r".* \(at most 50x the"):
        read_dreamer(path)
    s = convert([path], tmp_path / "s.zarr", PrepConfig(), workers=0, progress=False)
    assert s.records_ok == 0 and "declares 20 MB" in s.skipped[0].status


def test_a_compressed_wfdb_mat_larger_than_its_header_is_refused(tmp_path):
    (tmp_path / "r.hea").write_text("r 2 500 5000\n" + "".join(
        f"r.mat 16+24 1000/mV 16 0 0 0 0 {lead}\n" for lead in ("I", "II")))
    write_v5_zeros(tmp_path / "r.mat", "val", 2, 1_000_000)  # 16 MB against 80 KB declared
    with pytest.raises(ReadError, match="the size the record's header declares"):
        read_wfdb(tmp_path / "r.hea")
    # a variable that decompresses to more than its own tag says
    write_v5_zeros(tmp_path / "r.mat", "val", 2, 1_000_000, declare=80_100)
    with pytest.raises(ReadError, match="decompresses to more than"):
        read_wfdb(tmp_path / "r.hea")


def test_discovery_reads_variable_names_without_decompressing(tmp_path):
    from biosig_prep.datasets.dreamer import is_dreamer_mat
    from biosig_prep.readers.matfile import v5_variable_names

    scipy.io.savemat(tmp_path / "n.mat", {"DREAMER": {"a": 1.0}, "xy": np.ones(3),
                                          "abcdefghijk": 2.0}, do_compression=True)
    assert v5_variable_names(tmp_path / "n.mat") == ["DREAMER", "xy", "abcdefghijk"]
    write_v5_zeros(tmp_path / "b.mat", "DREAMER", 1, 2_500_000, declare=100)  # lies, too
    assert v5_variable_names(tmp_path / "b.mat") == ["DREAMER"]
    assert is_dreamer_mat(tmp_path / "b.mat")  # from its first bytes only
