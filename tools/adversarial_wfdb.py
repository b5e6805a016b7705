"""Cases of the class \"convert: bad WFDB records, paths, destinations\" (see
adversarial_inputs.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from adversarial_common import (  # noqa: F401 - shared helpers
    ECG,
    case,
    edf_copies,
    eeg_ok,
    ns_of,
    patch,
    run,
    want,
)

# ------------------------------------------------------------------ WFDB, paths, destinations
W = "convert: bad WFDB records, paths, destinations"


def wfdb(t: Path, n: int = 2, edit_hea=None, edit_mat=None, name: str = "E07500") -> Path:
    """Copies of real Challenge records in t/in; the first (``name``) edited."""
    folder = t / "in"
    folder.mkdir(exist_ok=True)
    for rid in ["E07500", "E07501", "E07502", "E07503"][:n]:
        for suffix in (".hea", ".mat"):
            shutil.copy(ECG / f"{rid}{suffix}", folder / f"{rid}{suffix}")
    if edit_hea:
        hea = folder / f"{name}.hea"
        hea.write_text(edit_hea(hea.read_text()))
    if edit_mat:
        edit_mat(folder / f"{name}.mat")
    return folder


def rec_line(fn):
    def edit(text):
        lines = text.splitlines()
        lines[0] = fn(lines[0].split())
        return "\n".join(lines) + "\n"
    return edit


def sig_line(k, fn):
    def edit(text):
        lines = text.splitlines()
        lines[1 + k] = " ".join(fn(lines[1 + k].split()))
        return "\n".join(lines) + "\n"
    return edit


def set_tok(i, value):
    return lambda tok: tok[:i] + [value] + tok[i + 1:]


RATES = ["--rates", "500"]
for _name, _edit, _says in [
    ("fs inf", rec_line(lambda t: " ".join(set_tok(2, "inf")(t))), "not finite"),
    ("fs 1e9", rec_line(lambda t: " ".join(set_tok(2, "1e9")(t))), "100000"),
    ("fs nan", rec_line(lambda t: " ".join(set_tok(2, "nan")(t))), "not finite"),
    ("fs 0", rec_line(lambda t: " ".join(set_tok(2, "0")(t))), "positive"),
    ("fs -500", rec_line(lambda t: " ".join(set_tok(2, "-500")(t))), "positive"),
    ("fs text", rec_line(lambda t: " ".join(set_tok(2, "fast")(t))), "sampling"),
    ("n_sig 0", rec_line(lambda t: " ".join(set_tok(1, "0")(t))), ""),
    ("n_sig 1e9", rec_line(lambda t: " ".join(set_tok(1, "1000000000")(t))), ""),
    ("n_sig 13 (12 lines)", rec_line(lambda t: " ".join(set_tok(1, "13")(t))), ""),
    ("sig_len 1e12", rec_line(lambda t: " ".join(set_tok(3, "1000000000000")(t))), ""),
    ("sig_len -5", rec_line(lambda t: " ".join(set_tok(3, "-5")(t))), ""),
    ("sig_len 100 (short)", rec_line(lambda t: " ".join(set_tok(3, "100")(t))), "short"),
    ("gain 0", sig_line(0, set_tok(2, "0/mV")), ""),
    ("gain inf", sig_line(0, set_tok(2, "inf/mV")), ""),
    ("gain nan", sig_line(0, set_tok(2, "nan/mV")), ""),
    ("gain 2000000/mV (PTB)", lambda x: x.replace("1000.0(0)/mV", "2000000(0)/mV"), ""),
    ("gain 1e-9", sig_line(0, set_tok(2, "1e-9/mV")), ""),
    ("units uV", lambda x: x.replace("/mV", "/uV"), ""),
    ("units lower-case mv", lambda x: x.replace("/mV", "/mv"), ""),
    ("adc_res 99", sig_line(0, set_tok(3, "99")), ""),
    ("format 999", lambda x: x.replace("16x1+24", "999"), ""),
    ("format 212 on a .mat", lambda x: x.replace("16x1+24", "212"), ""),
    ("signal lines missing", lambda x: x.splitlines()[0] + "\n", ""),
    ("empty header", lambda x: "", ""),
    ("NUL bytes in header", lambda x: x.replace(" ", "\0", 3), ""),
    ("Georgia bug (file name first)", rec_line(lambda t: "E07500.mat " + " ".join(t[1:])), ""),
    ("signal file absolute path", lambda x: x.replace("E07500.mat", "/etc/passwd"), "outside"),
    ("signal file ../", lambda x: x.replace("E07500.mat", "../x/E07500.mat"), "outside"),
    ("signal file missing", lambda x: x.replace("E07500.mat", "nothere.dat"), "not exist"),
    ("lead named ECG only", lambda x: x.replace(" I\n", " ECG\n"), ""),
    ("all leads unnamed", lambda x: "\n".join(
        " ".join(ln.split()[:8]) if i and not ln.startswith("#") else ln
        for i, ln in enumerate(x.splitlines())) + "\n", ""),
    ("duplicate lead names", lambda x: x.replace(" II\n", " I\n"), ""),
    ("binary junk header", lambda x: "\x01\x02junk\x7f", ""),
    ("Age -5, Sex ?", lambda x: x.replace("# Age:", "# Age: -5 #").replace("# Sex:", "# Sex: ?"),
     ""),
]:
    case(W, "header: " + _name)(lambda t, e=_edit, w=_says: (
        [wfdb(t, edit_hea=e), t / "s.zarr", *RATES], want({0, 3}, None, w)))


def mat_v4(path, arr, ptype=3, mtype=None):
    import struct
    arr = np.asarray(arr)
    m = mtype if mtype is not None else ptype * 10
    head = struct.pack("<iiiii", m, arr.shape[0], arr.shape[1], 0, 4)
    path.write_bytes(head + b"val\0" + np.asfortranarray(arr).tobytes(order="F"))


for _name, _mat in [
    ("mat truncated", lambda p: p.write_bytes(p.read_bytes()[:1000])),
    ("mat empty", lambda p: p.write_bytes(b"")),
    ("mat random bytes", lambda p: p.write_bytes(os.urandom(4000))),
    ("mat v4 float64", lambda p: mat_v4(p, np.zeros((12, 5000)) + 3.0, 0)),
    ("mat v4 rows 1e9 declared", lambda p: p.write_bytes(
        __import__("struct").pack("<iiiii", 30, 12, 1_000_000_000, 0, 4) + b"val\0" + bytes(100))),
    ("mat v4 text matrix", lambda p: mat_v4(p, np.zeros((12, 5000)), 3, 31)),
    ("mat v4 wrong rows (11)", lambda p: mat_v4(p, np.zeros((11, 5000), np.int16))),
    ("mat v5 via savemat", lambda p: __import__("scipy.io").io.savemat(
        p, {"val": np.zeros((12, 5000), np.int16) + 7})),
    ("mat v5 zlib bomb (16 MB / 0.12 MB declared)", None),
    ("mat v5 lying tag", None),
    ("mat v7.3 header", lambda p: p.write_bytes(b"MATLAB 7.3 MAT-file".ljust(128) + bytes(600))),
    ("mat all NaN (float64 v4)", lambda p: mat_v4(p, np.full((12, 5000), np.nan), 0)),
    ("mat all zeros", lambda p: mat_v4(p, np.zeros((12, 5000), np.int16))),
    ("mat 1e30 values", lambda p: mat_v4(p, np.full((12, 5000), 1e30), 0)),
    ("mat clipped lead", lambda p: mat_v4(p, np.clip(np.random.default_rng(0).normal(
        0, 900, (12, 5000)), -800, 800).astype(np.int16))),
]:
    def _setup(t, m=_mat, n=_name):
        if m is None:
            from test_dreamer_inputs import write_v5_zeros
            declare = 80_100 if "lying" in n else None
            def m(p, declare=declare):
                write_v5_zeros(p, "val", 12, 170_000, declare)
        return [wfdb(t, edit_mat=m), t / "s.zarr", *RATES], want({0, 3})
    case(W, _name)(_setup)


def _paths():
    def bad_root(t):
        d = os.path.join(os.fsencode(t), b"r\xffoot")
        os.mkdir(d)
        for s in (".hea", ".mat"):
            shutil.copy(ECG / f"E07500{s}", os.fsdecode(os.path.join(d, b"E07500" + s.encode())))
        return [os.fsdecode(d), t / "s.zarr", *RATES], want({1}, None, "\\xff")

    def bad_file(t):
        f = wfdb(t)
        os.rename(f / "E07500.hea", os.fsdecode(os.path.join(os.fsencode(f), b"E\xfe.hea")))
        return [f, t / "s.zarr", *RATES], want({3}, 1, "UTF-8")

    def bad_sub(t):
        f = wfdb(t)
        os.mkdir(os.path.join(os.fsencode(f), b"s\xfe"))
        return [f, t / "s.zarr", *RATES], want({0, 3}, 2)

    def symlink_out(t):
        f = wfdb(t)
        outside = t / "outside.mat"
        shutil.move(f / "E07500.mat", outside)
        os.symlink(outside, f / "E07500.mat")
        return [f, t / "s.zarr", *RATES], want({0}, 2)  # documented: links are followed

    def loop(t):
        f = wfdb(t)
        os.symlink(f, f / "loop")
        return [f, t / "s.zarr", *RATES], want({0}, 2)

    def twice(t):
        f = wfdb(t)
        return [f, f / "E07500.hea", t / "s.zarr", *RATES], want({0}, 2)

    def overlapping(t):
        f = wfdb(t)
        (f / "sub").mkdir()
        shutil.copy(ECG / "E07502.hea", f / "sub/E07502.hea")
        shutil.copy(ECG / "E07502.mat", f / "sub/E07502.mat")
        return [f, f / "sub", t / "s.zarr", *RATES], want({0}, 3)

    def spaces(t):
        f = wfdb(t)
        for s in (".hea", ".mat"):
            (f / f"E07500{s}").rename(f / f"rec one{s}")
        (f / "rec one.hea").write_text((f / "rec one.hea").read_text().replace("E07500", "rec one"))
        return [f, t / "s.zarr", *RATES], want({0, 3})

    def newline(t):
        f = wfdb(t)
        (f / "E07501.hea").rename(f / "E\n01.hea")
        return [f, t / "s.zarr", *RATES], want({0, 3})

    return [("root path not UTF-8", bad_root), ("file name not UTF-8", bad_file),
            ("sub-folder name not UTF-8", bad_sub),
            ("symlinked signal file from outside the tree", symlink_out),
            ("symlink loop", loop), ("same record given twice", twice),
            ("overlapping roots", overlapping), ("space in record name", spaces),
            ("newline in a file name", newline)]


for _n, _f in _paths():
    case(W, "path: " + _n)(_f)


def _simple(args_fn, exp):
    return lambda t: (args_fn(t), exp)


for _n, _args, _exp in [
    ("input does not exist", lambda t: [t / "nope", t / "s.zarr"], want({1}, None, "nope")),
    ("empty folder", lambda t: [(t / "e").mkdir() or t / "e", t / "s.zarr"],
     want({1}, None, "no records")),
    ("unknown suffix file", lambda t: [(t / "x.txt").write_text("x") and t / "x.txt",
                                       t / "s.zarr"], want({1})),
    ("one good, one missing input", lambda t: [wfdb(t), t / "nope", t / "s.zarr", *RATES],
     want({0, 3}, 2)),
]:
    case(W, "input: " + _n)(_simple(_args, _exp))


for _n, _dst, _exp in [
    ("destination is a file", lambda t: (t / "f").write_text("x") and t / "f", want({1})),
    ("destination non-empty, not a store", lambda t: ((t / "d").mkdir(), (t / "d/a").write_text(
        "x"), t / "d")[2], want({1}, None, "not a Zarr store")),
    ("destination path not UTF-8", lambda t: Path(os.fsdecode(os.path.join(
        os.fsencode(t), b"o\xffut.zarr"))), want({0, 1})),
    ("destination inside the input tree", lambda t: t / "in" / "s.zarr", want({0}, 2)),
    ("destination unwritable (/proc)", lambda t: Path("/proc/s.zarr"), want({1})),
    ("destination unknown URL scheme", lambda t: "nosuch://bucket/s.zarr", want({1})),
    ("destination trailing slash", lambda t: str(t / "s.zarr") + "/", want({0}, 2)),
    ("destination under a file", lambda t: (t / "f").write_text("x") and t / "f" / "s.zarr",
     want({1})),
]:
    case(W, "dst: " + _n)(lambda t, d=_dst, e=_exp: ([wfdb(t), d(t), *RATES], e))


@case(W, "dst: complete store, same plan (no-op)")
def _(t):
    f = wfdb(t)
    run([f, t / "s.zarr", *RATES], t)
    return [f, t / "s.zarr", *RATES], want({0}, 2)


@case(W, "dst: complete store, other plan, no --overwrite")
def _(t):
    f = wfdb(t)
    run([f, t / "s.zarr", *RATES], t)
    return [f, t / "s.zarr", "--rates", "200"], want({1})


@case(W, "dst: --overwrite a non-store folder")
def _(t):
    (t / "d").mkdir()
    (t / "d/keep.txt").write_text("x")
    def check(rc, out, rows, dst):
        return None if rc == 1 and (t / "d/keep.txt").exists() else ("severe", "deleted")
    return [wfdb(t), t / "d", *RATES, "--overwrite"], check
