"""Where convert's tasks run by default: forked worker processes (one per core) when that is
safe, threads of this process otherwise; the store is the same byte for byte either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from biosig_prep import convert
from biosig_prep.convert import DEFAULT_BATCH_BYTES, Layout, plan_batches
from biosig_prep.convert.executors import ForkExecutor, fork_workers
from biosig_prep.convert.plan import source_sizes, source_stats
from biosig_prep.convert.types import Batch
from biosig_prep.dsp.qc import _longest_runs
from biosig_prep.readers import SourceFile
from biosig_prep.synth.challenge import write_challenge_corpus

from .test_convert import assert_same_store

BATCHES = [Batch(i, ()) for i in range(3)]


def test_default_forks_one_worker_per_core(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert fork_workers(None, None, None, BATCHES, "/data/x.zarr") == 2
    # anything asked for explicitly is not the default
    assert fork_workers(0, None, None, BATCHES, "/data/x.zarr") == 0
    assert fork_workers(2, None, None, BATCHES, "/data/x.zarr") == 0
    assert fork_workers(None, "tcp://h:1", None, BATCHES, "/data/x.zarr") == 0
    assert fork_workers(None, None, False, BATCHES, "/data/x.zarr") == 0
    # one batch runs in this process; a URL's client may hold threads and sockets
    assert fork_workers(None, None, None, BATCHES[:1], "/data/x.zarr") == 0
    assert fork_workers(None, None, None, BATCHES, "s3://bucket/x.zarr") == 0
    monkeypatch.setattr(sys, "platform", "darwin")
    assert fork_workers(None, None, None, BATCHES, "/data/x.zarr") == 0
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert fork_workers(None, None, None, BATCHES, "/data/x.zarr") == 0


def test_no_fork_while_other_threads_run(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert fork_workers(None, None, None, BATCHES, "/data/x.zarr") == 0
    with pytest.raises(RuntimeError, match="single thread"):
        ForkExecutor(2)


def test_threads_where_fork_is_not_safe(tmp_path):
    """With another thread running (a test runner's, zarr's event loop) the default falls
    back to threads of this process (to this process alone on one core)."""
    corpus = tmp_path / "c"
    write_challenge_corpus(corpus, n_records=4, seed=3, durations=[10.0], quirks=False,
                           broken=0)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        s = convert([corpus], tmp_path / "x.zarr", progress=False, batch_size=2)
    finally:
        release.set()
        other.join()
    n = os.cpu_count() or 1
    assert s.records_ok == 4 and s.executor == (f"{n} threads" if n > 1 else "this process")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: nothing is forked")
def test_forked_workers_write_the_same_store(tmp_path):
    """A fresh, single-threaded interpreter forks its workers; small batches and a small
    memory budget make the workers spill to the staging area too. Same store as workers=0."""
    corpus = tmp_path / "c"
    write_challenge_corpus(corpus, n_records=12, seed=5, long_seconds=40.0, broken=2)
    forked, here = tmp_path / "forked.zarr", tmp_path / "here.zarr"
    code = ("import json, sys; from biosig_prep import convert; "
            "s = convert([sys.argv[1]], sys.argv[2], progress=False, batch_size=3, "
            "memory_bytes=100_000); print(json.dumps(s.to_dict()))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code, str(corpus), str(forked)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["executor"] == f"{os.cpu_count()} forked processes"
    assert summary["batches"] == 4 and summary["records_skipped"] >= 2
    convert([corpus], here, workers=0, progress=False, batch_size=3, memory_bytes=100_000)
    assert_same_store(here, forked)


def test_longest_runs_against_a_loop_per_lead():
    """The vectorised run finder equals the obvious loop on random masks."""

    def loop(hit: np.ndarray) -> np.ndarray:
        out = np.zeros(hit.shape[0], np.int64)
        for i, row in enumerate(hit):
            t, n = 0, len(row)
            while t < n:
                if row[t]:
                    u = t
                    while u < n and row[u]:
                        u += 1
                    if t > 0 and u < n:
                        out[i] = max(out[i], u - t)
                    t = u
                else:
                    t += 1
        return out

    rng = np.random.default_rng(0)
    for _ in range(300):
        hit = rng.random((int(rng.integers(1, 13)), int(rng.integers(0, 40)))) < rng.random()
        np.testing.assert_array_equal(_longest_runs(hit), loop(hit))
    hit = np.array([[0, 1, 1, 0, 1, 1, 1, 0], [1, 1, 0, 1, 0, 0, 1, 1], [0] * 8], bool)
    np.testing.assert_array_equal(_longest_runs(hit), [3, 1, 0])


def test_summary_says_where_tasks_ran(tmp_path):
    corpus = tmp_path / "c"
    write_challenge_corpus(corpus, n_records=2, seed=1, durations=[10.0], quirks=False,
                           broken=0)
    s = convert([corpus], tmp_path / "x.zarr", workers=0, progress=False)
    assert s.executor == "this process" and s.to_dict()["executor"] == "this process"
    assert Path(s.url).name == "x.zarr"


def _sources(n: int) -> list[SourceFile]:
    return [SourceFile(path=f"/d/r{i}.hea", format="wfdb", record_id=f"r{i}") for i in range(n)]


def test_batches_are_cut_by_input_bytes_too():
    src = _sources(6)
    sizes = [1, 1, 5, 1, 1, 1]
    cut = plan_batches(src, batch_size=2, batch_bytes=3, sizes=sizes)
    assert [[s.record_id for s in b] for b in cut] == [["r0", "r1"], ["r2"], ["r3", "r4"],
                                                        ["r5"]]
    assert plan_batches(src, 32, batch_bytes=3, sizes=None) == [tuple(src)]  # sizes unknown
    assert plan_batches(src, 32, batch_bytes=None, sizes=sizes) == [tuple(src)]
    dreamer = SourceFile(path="/d/DREAMER.mat", format="dreamer", record_id="DREAMER")
    cut = plan_batches([src[0], dreamer, src[1]], 32, batch_bytes=10, sizes=[1, 20, 1])
    assert [len(b) for b in cut] == [1, 1, 1]
    with pytest.raises(ValueError, match="2 sizes given for 6 sources"):
        plan_batches(src, 32, batch_bytes=3, sizes=[1, 1])
    assert Layout().fingerprint()["batch_bytes"] == DEFAULT_BATCH_BYTES == 4 << 20
    with pytest.raises(ValueError, match="batch_bytes must be a positive integer"):
        Layout(batch_bytes=-1)


def test_source_sizes_count_header_and_signal_file(tmp_path):
    corpus = tmp_path / "c"
    write_challenge_corpus(corpus, n_records=2, seed=1, durations=[10.0], quirks=False,
                           broken=0)
    from biosig_prep.readers import discover

    found = discover([corpus])
    sizes = source_sizes(found, source_stats(found))
    for src, size in zip(found, sizes, strict=True):
        hea = Path(src.path)
        assert size == hea.stat().st_size + hea.with_suffix(".mat").stat().st_size
    assert 120_000 < sizes[0] < 125_000  # 12 leads x 5000 samples x int16, and the header
