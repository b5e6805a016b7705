"""Kill ``biosig-prep convert`` with SIGKILL mid-run, twice, and resume it with the same command.

The killed store must never look complete; the resumed runs must not redo the batches the
killed run finished (their ``done.json`` markers are neither rewritten nor counted as work
again); and the final store must equal, array by array and byte for byte, the store of an
uninterrupted run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zarr

from biosig_prep import StoreError, convert, open_store
from biosig_prep.synth.challenge import write_challenge_corpus

from .test_convert import assert_same_store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

BATCH = 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume-corpus")
    write_challenge_corpus(out, n_records=36, seed=11, sources=["JS", "HR", "E", "A"],
                           durations=[30.0, 20.0, 60.0], broken=2)
    return out


def _command(corpus: Path, dst: Path) -> list[str]:
    return [sys.executable, "-m", "biosig_prep.cli", "convert", str(corpus), str(dst),
            "--workers", "0", "--batch-size", str(BATCH), "--no-progress"]


def _markers(dst: Path) -> dict[str, tuple[int, bytes]]:
    return {p.parent.name: (p.stat().st_mtime_ns, p.read_bytes())
            for p in (dst / "_convert").glob("b*/done.json")}


def _run_and_kill(cmd: list[str], dst: Path, at_least: int, timeout: float = 120.0
                  ) -> dict[str, tuple[int, bytes]]:
    """Start ``cmd``; SIGKILL its whole process group once ``at_least`` batch markers exist
    beyond those there at the start. Returns the markers present after the kill."""
    before = len(_markers(dst)) if dst.exists() else 0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the run finished before it could be killed (make the corpus "
                            f"bigger)\n{out.decode()}\n{err.decode()}")
            if dst.exists() and len(_markers(dst)) >= before + at_least:
                break
            if time.monotonic() > deadline:
                pytest.fail("no batch marker appeared")
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return _markers(dst)


def _assert_incomplete(dst: Path) -> None:
    assert zarr.open_group(dst, mode="r").attrs["complete"] is False
    with pytest.raises(StoreError, match="incomplete"):
        open_store(dst)


def test_kill_and_resume_equals_an_uninterrupted_run(corpus, tmp_path):
    dst = tmp_path / "killed.zarr"
    cmd = _command(corpus, dst)

    first = _run_and_kill(cmd, dst, at_least=1)
    _assert_incomplete(dst)
    n_batches = -(-36 // BATCH)
    assert 1 <= len(first) < n_batches

    second = _run_and_kill(cmd, dst, at_least=2)  # resumed, then killed again
    _assert_incomplete(dst)
    for name, (mtime, content) in first.items():  # finished batches were not redone
        assert second[name] == (mtime, content), f"{name} was written again"
    assert len(second) > len(first)

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr  # the two broken records are skipped
    found = re.search(r"resumed: (\d+) of (\d+) batches were already done", done.stdout)
    assert found, done.stdout
    assert int(found.group(1)) == len(second) and int(found.group(2)) == n_batches
    assert not (dst / "_convert").exists()

    reference = tmp_path / "uninterrupted.zarr"
    convert([corpus], reference, workers=0, progress=False, batch_size=BATCH)
    assert_same_store(reference, dst)
    assert open_store(dst).attrs == open_store(reference).attrs
    # the record of what was written covers the blocks of every run, killed or not
    from biosig_prep.store import MANIFEST, verify_store

    assert verify_store(dst)["problems"] == []
    assert (dst / MANIFEST).read_bytes() == (reference / MANIFEST).read_bytes()
