"""Adversarial re-run of the input classes of issue 17's table: EDF / EEG, DREAMER files, and
"convert: bad WFDB records, paths, destinations". Each case builds its input in a temporary
folder, runs ``biosig-prep convert`` in a fresh process (3 GB address-space cap, 180 s), and is
judged:

* severe: killed, timed out, out of memory, or a wrong result stored silently;
* defect: a traceback, an undocumented exit code, an error that is not one line, an empty or
  unnamed skip reason, or a result other than the one the docs promise;
* held: otherwise.

    python tools/adversarial_inputs.py [--only CLASS] [--real ../shared/data]

Prints one line per case and a table per class (tried / held / defect / severe).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

CAP = 3 << 30
Case = tuple[str, str, Callable[[Path], tuple[list, Callable | None]]]
CASES: list[Case] = []


def case(cls: str, name: str):
    def deco(fn):
        CASES.append((cls, name, fn))
        return fn
    return deco


# ------------------------------------------------------------------------------ running ----
def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


INPROCESS = False  # --inprocess: the CLI in this process (no start-up cost per case)


def _run_here(args: list) -> tuple[int, str]:
    import traceback

    from typer.testing import CliRunner

    from biosig_prep.cli import app

    result = CliRunner().invoke(app, ["convert", *map(os.fsdecode, args), "--no-progress",
                                      "--workers", "0"])
    text = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text += "\nTraceback (in process)\n" + "".join(traceback.format_exception(
            result.exception))[-400:]
    return result.exit_code, text


def run(args: list, cwd: Path) -> tuple[int, str]:
    if INPROCESS:
        return _run_here(args)
    cmd = [sys.executable, "-m", "biosig_prep.cli", "convert", *map(os.fsdecode, args),
           "--no-progress", "--workers", "0"]
    try:
        out = subprocess.run(cmd, capture_output=True, cwd=cwd, timeout=180, preexec_fn=_limit)
    except subprocess.TimeoutExpired:
        return -9, "timeout"
    text = out.stdout.decode("utf-8", "replace") + out.stderr.decode("utf-8", "replace")
    return out.returncode, text


def records(dst: Path) -> list[dict]:
    from biosig_prep.store import open_store

    r = open_store(dst, allow_incomplete=True).records()
    return [{"id": i, "status": str(s), "meta": json.loads(str(m) or "{}")}
            for i, s, m in zip(r["id"], r["status"], r["metadata"], strict=True)]


def judge(rc: int, out: str, dst: Path, expect: Callable | None) -> tuple[str, str]:
    if rc < 0 or "MemoryError" in out or rc == 137:
        return "severe", f"killed/timeout rc={rc}"
    if "Traceback" in out:
        return "defect", "traceback: " + out.strip().splitlines()[-1][:120]
    if rc not in (0, 1, 3):
        return "defect", f"exit {rc}"
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    nothing = rc == 1 and lines and lines[-1] == "error: no record was converted"
    if rc == 1 and not nothing and (len(lines) != 1 or not lines[0].startswith("error:")):
        return "defect", f"exit 1 with {len(lines)} lines: {out.strip()[:160]}"
    rows = []
    if (rc in (0, 3) or nothing) and dst.exists():
        rows = records(dst)
        empty = [r for r in rows if not r["status"].strip() or r["status"].strip()[-1] == ":"]
        if empty:
            return "defect", f"empty skip reason for {empty[0]['id']}"
    if expect is not None:
        verdict = expect(rc, out, rows, dst)
        if verdict:
            return verdict
    note = lines[-1] if rc == 1 else (f"{sum(r['status'] == 'ok' for r in rows)} ok / "
                                      f"{len(rows)}: " + "; ".join(sorted(
                                          {r['status'][:70] for r in rows if r['status'] != 'ok'}))[:150])
    return "held", note[:170]


def want(rc_ok: set[int], ok: int | None = None, says: str = "", level: str = "defect"):
    """An expectation: exit code in ``rc_ok``, ``ok`` records ok, ``says`` in the output or a
    skip reason."""
    def check(rc, out, rows, dst):
        if rc not in rc_ok:
            return level, f"exit {rc}, expected {sorted(rc_ok)}: {out.strip()[-150:]}"
        if ok is not None and sum(r["status"] == "ok" for r in rows) != ok:
            return level, f"{sum(r['status'] == 'ok' for r in rows)} ok, expected {ok}"
        text = out + " ".join(r["status"] for r in rows)
        if says and says not in text:
            return level, f"message lacks {says!r}: {text.strip()[-150:]}"
        return None
    return check


# ------------------------------------------------------------------------------ inputs -----
REAL = Path(os.environ.get("BIOSIG_SHARED_DATA", "/work/shared/data"))
EDF = REAL / "eeg/eegmat/Subject00_2.edf"
ECG = REAL / "ecg/cinc2021"


def edf_copies(tmp: Path, change=None, n: int = 2) -> Path:
    folder = tmp / "in"
    folder.mkdir()
    for i in range(n):
        shutil.copy(EDF, folder / f"B{i}.edf")
    shutil.copy(EDF, folder / "A0.edf")
    if change:
        change(folder / "A0.edf")
    return folder


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def ns_of(path: Path) -> int:
    return int(path.read_bytes()[252:256])


def eeg_ok(n):
    return lambda rc, out, rows, dst: (None if sum(r["status"] == "ok" for r in rows
                                                  if r["id"].endswith("/eeg")) == n
                                       else ("severe", "EEG records ok: " + str(
                                           [r["status"][:60] for r in rows if r["id"].endswith("/eeg")])))


@case("EDF / EEG", "first file relabelled EEG Fp1-REF")
def _(t):
    return [edf_copies(t, lambda p: patch(p, 256, b"EEG Fp1-REF".ljust(16))), t / "s.zarr",
            "--rates", "200"], eeg_ok(3)


@case("EDF / EEG", "first file two channels swapped")
def _(t):
    def swap(p):
        b = p.read_bytes()
        patch(p, 256, b[272:288] + b[256:272])
    def check(rc, out, rows, dst):
        from biosig_prep.store import open_store
        s = open_store(dst)
        w, rec = s.stream("eeg@200").windows[:], s.stream("eeg@200").record[:]
        ids = [r["id"] for r in rows]
        a, b = w[rec == ids.index("A0/eeg")], w[rec == ids.index("B0/eeg")]
        return eeg_ok(3)(rc, out, rows, dst) or (
            None if np.array_equal(a[:, 1], b[:, 0]) else ("severe", "swapped not by name"))
    return [edf_copies(t, swap), t / "s.zarr", "--rates", "200"], check


@case("EDF / EEG", "first file 15 of 20 channels renamed")
def _(t):
    def ren(p):
        for i in range(15):
            patch(p, 256 + 16 * i, f"X{i}".ljust(16).encode())
    return [edf_copies(t, ren), t / "s.zarr", "--rates", "200"], want({3}, 2, "channels:")


@case("EDF / EEG", "dead channel (physical min = max)")
def _(t):
    def dead(p):
        ns = ns_of(p)
        lo = p.read_bytes()[256 + 104 * ns + 8: 256 + 104 * ns + 16]
        patch(p, 256 + 112 * ns + 8, lo)
    def check(rc, out, rows, dst):
        a0 = [r for r in rows if r["id"] == "A0/eeg"][0]
        return None if a0["meta"].get("flat_leads") == ["EEG Fp2"] else (
            "severe", f"dead channel not masked: {a0['meta'].get('flat_leads')}")
    return [edf_copies(t, dead, 0), t / "s.zarr", "--rates", "200"], check


@case("EDF / EEG", "all channels dead")
def _(t):
    def dead(p):
        ns = ns_of(p)
        b = p.read_bytes()
        patch(p, 256 + 112 * ns, b[256 + 104 * ns: 256 + 112 * ns])
    return [edf_copies(t, dead, 0), t / "s.zarr", "--rates", "200"], want({1, 3}, 0, "flat")


@case("EDF / EEG", "truncated to half")
def _(t):
    def trunc(p):
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return [edf_copies(t, trunc), t / "s.zarr", "--rates", "200"], want({0, 3})


@case("EDF / EEG", "garbage header")
def _(t):
    return [edf_copies(t, lambda p: patch(p, 0, os.urandom(256))), t / "s.zarr", "--rates",
            "200"], want({3}, 2)


@case("EDF / EEG", "empty file")
def _(t):
    return [edf_copies(t, lambda p: p.write_bytes(b"")), t / "s.zarr", "--rates", "200"], \
        want({3}, 2)


@case("EDF / EEG", "record duration 1e-9 (fs 5e11)")
def _(t):
    return [edf_copies(t, lambda p: patch(p, 244, b"1e-9    ")), t / "s.zarr", "--rates",
            "200"], want({3}, 2, "sampling rate")


@case("EDF / EEG", "number of signals 0")
def _(t):
    return [edf_copies(t, lambda p: patch(p, 252, b"0   ")), t / "s.zarr", "--rates", "200"], \
        want({3}, 2)


@case("EDF / EEG", "physical min/max swapped (inverted calibration)")
def _(t):
    def inv(p):
        ns = ns_of(p)
        b = p.read_bytes()
        lo, hi = b[256 + 104 * ns: 256 + 112 * ns], b[256 + 112 * ns: 256 + 120 * ns]
        patch(p, 256 + 104 * ns, hi + lo)
    return [edf_copies(t, inv), t / "s.zarr", "--rates", "200"], eeg_ok(3)


@case("EDF / EEG", "declared montage with a channel no file has")
def _(t):
    cfg = t / "c.yaml"
    cfg.write_text("eeg_channels: [EEG Cz, EEG Fp1, EEG Oz]\nrates: [200]\n")
    def check(rc, out, rows, dst):
        from biosig_prep.store import open_store
        m = open_store(dst).stream("eeg@200").channel_mask[:]
        return None if m[:, 2].sum() == 0 and m[:, :2].all() else ("severe", "mask wrong")
    return [edf_copies(t), t / "s.zarr", "--config", cfg], check


@case("EDF / EEG", "declared montage repeating a channel")
def _(t):
    cfg = t / "c.yaml"
    cfg.write_text("eeg_channels: [EEG Cz, eeg cz]\n")
    return [edf_copies(t), t / "s.zarr", "--config", cfg], want({1}, None, "eeg_channels")


@case("EDF / EEG", "two files, disjoint channel sets (union)")
def _(t):
    def ren(p):
        for i in range(19):
            patch(p, 256 + 16 * i, f"Y{i}".ljust(16).encode())
    return [edf_copies(t, ren, 1), t / "s.zarr", "--rates", "200"], eeg_ok(2)


@case("EDF / EEG", "EDF named .bdf")
def _(t):
    folder = edf_copies(t)
    (folder / "A0.edf").rename(folder / "A0.bdf")
    return [folder, t / "s.zarr", "--rates", "200"], want({3}, 2)


@case("EDF / EEG", "latin-1 byte in a label")
def _(t):
    return [edf_copies(t, lambda p: patch(p, 256 + 16, "EEG Fp2\xe9".ljust(16).encode("latin-1"))),
            t / "s.zarr", "--rates", "200"], eeg_ok(3)


@case("EDF / EEG", "two channels with the same label")
def _(t):
    return [edf_copies(t, lambda p: patch(p, 256 + 16, b"EEG Fp1".ljust(16))), t / "s.zarr",
            "--rates", "200"], eeg_ok(3)


# ------------------------------------------------------------------------------ DREAMER ----
SMALL = dict(n_subjects=2, n_clips=2, clip_seconds=12.0, baseline_seconds=2.0, seed=1)


def dreamer(t: Path, edit=None, **kw) -> Path:
    """A small synthetic DREAMER.mat, optionally edited through loadmat/savemat."""
    import scipy.io

    from biosig_prep import synth

    path = t / "DREAMER.mat"
    synth.write_dreamer_mat(path, **{**SMALL, **kw})
    if edit is not None:
        d = scipy.io.loadmat(path)["DREAMER"][0, 0]
        edit(d)
        scipy.io.savemat(path, {"DREAMER": d}, do_compression=kw.get("compress", False))
    return path


def field(name, value):
    def edit(d):
        d[name] = np.array([[value]], dtype=object) if isinstance(value, str) else \
            np.array([[value]], dtype=float)
    return edit


def subj_field(s, name, fn):
    def edit(d):
        holder = d["Data"][0, s][name]  # (1, 1) object array around the value
        holder[0, 0] = fn(np.asarray(holder[0, 0]))
    return edit


def cell_edit(s, mod, part, c, fn):
    def edit(d):
        cells = d["Data"][0, s][mod][0, 0][part][0, 0]  # (n_clips, 1) cell array
        cells[c, 0] = fn(np.asarray(cells[c, 0], dtype=float))
    return edit


D = "DREAMER files"
for _name, _kw, _exp in [
    ("normal (ECG counts)", {}, want({0}, 4)),
    ("ECG already in mV", {"ecg_units": "mV"}, want({0}, 4)),
    ("compressed (v7 zlib)", {"compress": True}, want({0}, 4)),
    ("one clip, one subject", {"n_subjects": 1, "n_clips": 1}, want({0}, 1)),
]:
    case(D, _name)(lambda t, kw=_kw, exp=_exp: ([dreamer(t, **kw), t / "s.zarr"], exp))

for _name, _edit, _says in [
    ("noOfVideoSequences 1e9", field("noOfVideoSequences", 1e9), "noOfVideoSequences"),
    ("noOfVideoSequences 0", field("noOfVideoSequences", 0.0), "noOfVideoSequences"),
    ("noOfVideoSequences NaN", field("noOfVideoSequences", np.nan), "noOfVideoSequences"),
    ("noOfVideoSequences 1.5", field("noOfVideoSequences", 1.5), "noOfVideoSequences"),
    ("noOfSubjects 1e9", field("noOfSubjects", 1e9), "noOfSubjects"),
    ("noOfSubjects 1 (file holds 2)", field("noOfSubjects", 1.0), "noOfSubjects"),
    ("EEG_SamplingRate inf", field("EEG_SamplingRate", np.inf), "EEG_SamplingRate"),
    ("EEG_SamplingRate 1e9", field("EEG_SamplingRate", 1e9), "EEG_SamplingRate"),
    ("ECG_SamplingRate 0", field("ECG_SamplingRate", 0.0), "ECG_SamplingRate"),
    ("EEG_SamplingRate text", field("EEG_SamplingRate", "fast"), "EEG_SamplingRate"),
]:
    case(D, _name)(lambda t, e=_edit, w=_says: ([dreamer(t, e), t / "s.zarr"],
                                                 want({1, 3}, 0, w)))

for _name, _edit, _ok, _says in [
    ("a rating NaN", subj_field(0, "ScoreValence", lambda v: v * np.nan), 2, "ScoreValence"),
    ("a rating 7", subj_field(0, "ScoreArousal", lambda v: v * 0 + 7), 2, "ScoreArousal"),
    ("EEG stimulus empty", cell_edit(0, "EEG", "stimuli", 0, lambda x: np.zeros((0, 14))), 3,
     "empty"),
    ("EEG stimulus 13 channels", cell_edit(0, "EEG", "stimuli", 0, lambda x: x[:, :13]), 3,
     "shape"),
    ("ECG stimulus all NaN", cell_edit(0, "ECG", "stimuli", 0, lambda x: x * np.nan), 3, ""),
    ("ECG stimulus constant", cell_edit(0, "ECG", "stimuli", 0, lambda x: x * 0 + 2000), 3,
     "flat"),
    ("EEG stimulus 1e6 µV", cell_edit(0, "EEG", "stimuli", 0, lambda x: x * 1000), 3,
     "implausible"),
    ("ECG units unclear", cell_edit(0, "ECG", "stimuli", 0, lambda x: np.rint(x / 100) + 9000),
     3, "dreamer.ecg_scale"),
    ("3 clip cells, 2 declared", subj_field(1, "ScoreDominance", lambda v: np.vstack([v, v[:1]])),
     2, "ScoreDominance"),
    ("Age is text", subj_field(0, "Age", lambda v: np.array(["unknown"])), 4, ""),
]:
    case(D, _name)(lambda t, e=_edit, k=_ok, w=_says: ([dreamer(t, e), t / "s.zarr"],
                                                         want({0, 3}, k, w)))


@case(D, "DREAMER variable is a number")
def _(t):
    import scipy.io
    scipy.io.savemat(t / "DREAMER.mat", {"DREAMER": 3.0})
    return [t / "DREAMER.mat", t / "s.zarr"], want({1, 3}, 0, "DREAMER")


@case(D, "truncated to half")
def _(t):
    p = dreamer(t)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return [p, t / "s.zarr"], want({1, 3}, 0)


@case(D, "zlib bomb: 4 MB declaring 4.3 GB")
def _(t):
    sys.path.insert(0, str(Path(__file__).parent / "bench"))
    from bench_input_bounds import write_bomb
    write_bomb(t / "DREAMER.mat", 536_000_000)
    return [t / "DREAMER.mat", t / "s.zarr"], want({1, 3}, 0, "50x")


@case(D, "MATLAB v7.3 header")
def _(t):
    (t / "DREAMER.mat").write_bytes(b"MATLAB 7.3 MAT-file".ljust(128) + bytes(1024))
    return [t / "DREAMER.mat", t / "s.zarr", "--format", "dreamer"], want({1, 3})


@case(D, "not MATLAB at all")
def _(t):
    (t / "DREAMER.mat").write_bytes(os.urandom(4096))
    return [t / "DREAMER.mat", t / "s.zarr"], want({1})


@case(D, "ecg_units mV forced on a counts file")
def _(t):
    (t / "c.yaml").write_text("dreamer: {ecg_units: mV}\n")
    return [dreamer(t), t / "s.zarr", "--config", t / "c.yaml"], want({1, 3}, 0, "implausible")


@case(D, "include_baseline")
def _(t):
    (t / "c.yaml").write_text("dreamer: {include_baseline: true}\n")
    return [dreamer(t), t / "s.zarr", "--config", t / "c.yaml"], want({0}, 4)


@case(D, "ecg_units bogus in config")
def _(t):
    (t / "c.yaml").write_text("dreamer: {ecg_units: volts}\n")
    return [dreamer(t), t / "s.zarr", "--config", t / "c.yaml"], want({1}, None, "ecg_units")


@case(D, "DREAMER and WFDB in one run")
def _(t):
    shutil.copy(ECG / "E07500.hea", t / "E07500.hea")
    shutil.copy(ECG / "E07500.mat", t / "E07500.mat")
    dreamer(t)
    return [t, t / "s.zarr"], want({1}, None, "DREAMER")


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


# --------------------------------------------------------------------------------- main ---
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="")
    ap.add_argument("-k", default="")
    ap.add_argument("--inprocess", action="store_true",
                    help="run the CLI in this process (fast; no memory cap or timeout per case)")
    args = ap.parse_args()
    global INPROCESS
    INPROCESS = args.inprocess
    if INPROCESS:
        _limit()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "biosig_prep"))
    table: dict[str, Counter] = {}
    for cls, name, setup in CASES:
        if args.only and args.only.lower() not in cls.lower():
            continue
        if args.k and args.k.lower() not in name.lower():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            try:
                cmd, expect = setup(t)
            except Exception as exc:  # noqa: BLE001 - a broken case is reported, not fatal
                print(f"[setup failed] {cls} | {name}: {exc!r}")
                continue
            dst = next((Path(os.fsdecode(a)) for a in cmd[1:] if str(a).endswith(
                (".zarr", ".zarr/"))), Path(os.fsdecode(cmd[1])))
            rc, out = run(cmd, t)
            try:
                level, note = judge(rc, out, dst, expect)
            except Exception as exc:  # noqa: BLE001
                level, note = "defect", f"judge failed: {exc!r}"[:170]
        table.setdefault(cls, Counter())[level] += 1
        print(f"{level:7s} {cls[:12]:12s} | {name}: rc={rc} {note}", flush=True)
    print("\n| class | tried | held | defect | severe |\n|---|---:|---:|---:|---:|")
    for cls, c in table.items():
        print(f"| {cls} | {sum(c.values())} | {c['held']} | {c['defect']} | {c['severe']} |")


if __name__ == "__main__":
    main()
