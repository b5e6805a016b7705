"""Cases of the classes \"EDF / EEG\" and \"DREAMER files\" (see adversarial_inputs.py)."""

from __future__ import annotations

import os
import shutil
import sys
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
