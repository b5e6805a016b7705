"""Issue 10: one writer at a time, stale stores named, the destination root kept, integrity."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from biosig_prep import StoreError, convert, open_store
from biosig_prep.config import PrepConfig
from biosig_prep.store import LOCK
from biosig_prep.store.lock import LockedError

CFG = {"rates": [500]}


@pytest.fixture(scope="module")
def src(tmp_path_factory, shared_data):
    """Three real Challenge records, copied (the tests change them)."""
    base = tmp_path_factory.mktemp("safety") / "src"
    base.mkdir()
    for name in ("E07500", "E07501", "E07502"):
        for ext in (".hea", ".mat"):
            shutil.copy(shared_data / "ecg" / "cinc2021" / f"{name}{ext}", base)
    return base


def _convert(src, dst, **kw):
    return convert([src], dst, PrepConfig.model_validate(CFG), workers=0, progress=False, **kw)


def test_a_second_writer_is_refused_with_the_holders_pid_and_host(src, tmp_path):
    dst = tmp_path / "s.zarr"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (dst / "_meta").mkdir(parents=True)
        (dst / LOCK).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                            "started": "2026-01-01T00:00:00Z", "token": "x"}))
        with pytest.raises(LockedError, match=rf"being written by another conversion \(pid "
                           rf"{holder.pid} on host {socket.gethostname()}") as err:
            _convert(src, dst)
        assert "delete" not in str(err.value) and "rm " not in str(err.value)
        assert (dst / LOCK).exists() and not (dst / "zarr.json").exists()  # nothing touched
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_killed_run_is_reported_and_taken_over(src, tmp_path):
    dst = tmp_path / "s.zarr"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer exists: its run was killed (kill -9 leaves the lock)
    (dst / "_meta").mkdir(parents=True)
    (dst / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                        "started": "2026-01-01T00:00:00Z", "token": "x"}))
    s = _convert(src, dst)
    assert s.records_ok == 3
    assert f"took over a stale writer lock (pid {dead.pid} on host" in s.lock_note
    assert not (dst / LOCK).exists()  # released after the run
    assert open_store(dst).complete


def test_a_changed_source_file_is_named(src, tmp_path):
    dst = tmp_path / "s.zarr"
    _convert(src, dst)
    assert _convert(src, dst).already_complete  # unchanged: nothing to do
    mat = src / "E07501.mat"
    data = mat.read_bytes()
    mat.write_bytes(data[:-2] + bytes([data[-2] ^ 1, data[-1]]))  # same size, new content
    os.utime(mat, ns=(mat.stat().st_atime_ns, mat.stat().st_mtime_ns + 10**9))
    with pytest.raises(StoreError, match=r"converted from source files that have changed "
                       r"since: .*E07501.mat \(modified\)"):
        _convert(src, dst)
    _convert(src, dst, overwrite=True)
    assert open_store(dst).complete


def test_the_destination_root_itself_is_never_deleted(src, tmp_path, monkeypatch):
    """An empty destination may be a mount point: removing it fails with EBUSY. Converting
    into it (and overwriting it) must only ever empty it."""
    dst = tmp_path / "mnt"
    dst.mkdir()
    real_rmtree, real_rmdir = shutil.rmtree, os.rmdir

    def busy(path, *a, **k):
        if os.path.realpath(path) == os.path.realpath(dst):
            raise OSError(16, "Device or resource busy", str(path))
        return real_rmtree(path, *a, **k)

    def busy_rmdir(path, *a, **k):
        if os.path.realpath(path) == os.path.realpath(dst):
            raise OSError(16, "Device or resource busy", str(path))
        return real_rmdir(path, *a, **k)

    monkeypatch.setattr(shutil, "rmtree", busy)
    monkeypatch.setattr(os, "rmdir", busy_rmdir)
    assert _convert(src, dst).records_ok == 3
    _convert(src, dst, overwrite=True)
    assert open_store(dst).complete and dst.is_dir()


def test_verify_names_a_deleted_and_a_truncated_shard(src, tmp_path):
    from typer.testing import CliRunner

    from biosig_prep.cli import app
    from biosig_prep.store import DamagedShardError, verify_store

    dst = tmp_path / "s.zarr"
    convert([src], dst, PrepConfig(rates=[500, 1000]), workers=0, progress=False,
            shard_bytes=200_000)  # small shards: several per stream
    report = verify_store(dst)
    assert report["problems"] == [] and report["checked"] > 6
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", str(dst)])
    assert ok.exit_code == 0 and "objects intact" in ok.output
    shard1 = dst / "ecg@1000" / "windows" / "c" / "1" / "0" / "0" / "0"
    shard1.unlink()
    shard0 = dst / "ecg@500" / "windows" / "c" / "0" / "0" / "0" / "0"
    shard0.write_bytes(shard0.read_bytes()[:-7])
    assert verify_store(dst)["problems"] == [
        "ecg@1000 windows shard 1: missing (ecg@1000/windows/c/1/0/0/0)",
        f"ecg@500 windows shard 0: {shard0.stat().st_size} bytes, "
        f"{shard0.stat().st_size + 7} written (ecg@500/windows/c/0/0/0/0)"]
    for args in (["verify", str(dst)], ["inspect", "--verify", str(dst)]):
        bad = runner.invoke(app, args)
        assert bad.exit_code == 1
        assert "damaged: ecg@1000 windows shard 1: missing" in bad.output
    # the reader names the stream and the shard instead of giving zeros or a traceback
    store = open_store(dst)
    k = store.stream("ecg@1000").shard_size
    with pytest.raises(DamagedShardError, match=r"stream ecg@1000: shard 1 is damaged \(the "
                       "object is missing\\)"):
        store.stream("ecg@1000").read(k, k + 1)
    with pytest.raises(DamagedShardError, match=r"stream ecg@500: shard 0 is damaged"):
        store.stream("ecg@500").read(0, 1)


def test_overwrite_never_deletes_a_folder_with_an_unparseable_zarr_json(src, tmp_path):
    dst = tmp_path / "odd"
    dst.mkdir()
    (dst / "zarr.json").write_text("{not json")
    (dst / "precious.txt").write_text("keep me")
    with pytest.raises(StoreError, match="zarr.json that cannot be parsed.*refusing"):
        _convert(src, dst, overwrite=True)
    assert (dst / "precious.txt").read_text() == "keep me"
