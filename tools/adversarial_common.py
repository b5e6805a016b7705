"""Shared parts of ``tools/adversarial_inputs.py``: the case registry, running a convert in a
fresh process or in this one, judging the outcome, and input builders."""


from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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
