"""The shard-aware loader: exactly once per epoch over ranks x workers, seeded shuffles, resume."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from biosig_prep import open_store
from criss_cross.data import (
    ShardReader,
    WindowDataset,
    epoch_pieces,
    make_loader,
    open_sources,
)


def write_contract_store(
    path: Path | str,
    streams: dict[str, tuple[int, int]],
    *,
    shard: int = 16,
    patches: int = 2,
    patch_size: int = 25,
    compressors: object = "auto",
    seed: int = 0,
) -> Path:
    """A Zarr v3 group in the store contract's layout, written directly with zarr.

    streams maps a stream name to (n_windows, n_channels). Window i of a stream holds the value
    i everywhere in its first patch, so a batch can be checked against its ids; a few windows
    have a zero-filled channel (channel_mask False).
    """
    rng = np.random.default_rng(seed)
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.create_group("records")
    counts = {}
    for name, (n, c) in streams.items():
        g = root.create_group(name)
        g.attrs.update(
            modality=name.split("@")[0],
            fs=int(name.split("@")[1]),
            channels=[f"ch{i}" for i in range(c)],
            units="mV",
        )
        w = rng.standard_normal((n, c, patches, patch_size)).astype(np.float32)
        w[:, :, 0, :] = np.arange(n, dtype=np.float32)[:, None, None]
        mask = np.ones((n, c), dtype=bool)
        mask[::7, -1] = False
        w[~mask] = 0.0
        kw = {} if compressors == "auto" else {"compressors": compressors}
        arr = g.create_array(
            "windows",
            shape=w.shape,
            chunks=(1, *w.shape[1:]),
            shards=(shard, *w.shape[1:]),
            dtype="float32",
            **kw,
        )
        arr[:] = w
        for key, val in (
            ("record", np.arange(n, dtype=np.int64) // 3),
            ("start", (np.arange(n, dtype=np.int64) % 3) * patches * patch_size),
        ):
            a = g.create_array(key, shape=(n,), chunks=(max(n, 1),), dtype="int64")
            a[:] = val
        m = g.create_array("channel_mask", shape=(n, c), chunks=(max(n, 1), c), dtype="bool")
        m[:] = mask
        counts[name] = n
    root.attrs.update(
        schema=2,
        complete=True,
        version="test",
        config={},
        summary={"records_in": 0, "records_ok": 0, "records_skipped": 0,
                 "skipped_reasons": {}, "windows": counts},
    )
    return path


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory) -> list[str]:
    base = tmp_path_factory.mktemp("loader")
    a = write_contract_store(base / "a.zarr", {"ecg@500": (203, 3), "ecg@100": (61, 3),
                                               "eeg@200": (45, 4)})
    b = write_contract_store(base / "b.zarr", {"ecg@500": (37, 3)}, shard=8, seed=1)
    return [str(a), str(b)]


def _ids(batch) -> list[tuple[int, int]]:
    return list(zip(batch["source"].tolist(), batch["index"].tolist(), strict=True))


def test_reader_matches_zarr_for_every_codec(tmp_path):
    from zarr.codecs import BloscCodec, GzipCodec

    codecs = {"zstd": "auto", "raw": None, "gzip": [GzipCodec()],
              "blosc": [BloscCodec(cname="lz4", shuffle="shuffle")]}
    for name, comp in codecs.items():
        path = write_contract_store(tmp_path / f"{name}.zarr", {"ecg@500": (50, 3)},
                                    compressors=comp)
        stream = open_store(str(path)).stream("ecg@500")
        fast = ShardReader(stream.windows)
        slow = ShardReader(stream.windows, fast=False)
        assert fast.fast and not slow.fast
        full = stream.read(0, 50)["windows"]
        np.testing.assert_array_equal(fast.read(0, 50), full)
        np.testing.assert_array_equal(fast.read(13, 37), full[13:37])  # straddles shards
        rows = np.array([49, 0, 17, 16, 3, 33])
        np.testing.assert_array_equal(fast.take(rows), full[rows])
        np.testing.assert_array_equal(slow.take(rows), full[rows])


def test_reader_on_an_fsspec_store(tmp_path):
    """Object-storage path: shards fetched together through zarr's async store API."""
    url = f"memory://criss-cross-test/{tmp_path.name}/s.zarr"
    write_contract_store(url, {"ecg@500": (50, 3)})
    stream = open_store(url).stream("ecg@500")
    reader = ShardReader(stream.windows)
    assert reader.fast
    np.testing.assert_array_equal(reader.read(0, 50), stream.read(0, 50)["windows"])
    ds = WindowDataset(open_sources([url], ["ecg@500"]), batch_size=8, num_epochs=1)
    assert sorted(i for b in ds for _, i in _ids(b)) == list(range(50))


def test_pieces_partition_every_epoch(two_stores):
    sources = open_sources(two_stores, ["ecg@500", "ecg@100", "eeg@200"])
    assert [s.n for s in sources] == [203, 37, 61, 45]
    for epoch in range(3):
        seen = Counter()
        for rank in range(3):
            for worker in range(2):
                p = epoch_pieces(sources, seed=5, epoch=epoch, rank=rank, world_size=3,
                                 worker=worker, num_workers=2)
                for s, lo, hi in p.tolist():
                    seen.update((s, i) for i in range(lo, hi))
        assert set(seen.values()) == {1}
        assert len(seen) == sum(s.n for s in sources)


def test_exactly_once_per_epoch_two_ranks_two_workers(two_stores):
    """Every (stream, index) exactly once per epoch over 2 ranks x 2 DataLoader workers."""
    sources = open_sources(two_stores, ["ecg@500", "ecg@100", "eeg@200"])
    total = sum(s.n for s in sources)
    per_epoch: dict[int, Counter] = {0: Counter(), 1: Counter()}
    sizes = []
    for rank in range(2):
        ds = WindowDataset(sources, batch_size=10, seed=3, rank=rank, world_size=2,
                           shuffle_windows=40, num_epochs=2)
        for batch in make_loader(ds, num_workers=2, prefetch_factor=2, workers="process"):
            w = batch["windows"]
            assert w.dtype == torch.float32 and w.shape[0] == batch["channel_mask"].shape[0]
            # the payload is the window the ids name
            idx = batch["index"].to(w.dtype)
            assert torch.equal(w[:, 0, 0, :], idx[:, None].expand(-1, w.shape[-1]))
            # one shape per batch: ecg streams mixed (3 channels), eeg apart (4 channels)
            kinds = {sources[s].modality for s in batch["source"].tolist()}
            assert len(kinds) == 1
            per_epoch[batch["epoch"]].update(_ids(batch))
            sizes.append(len(w))
    for epoch, seen in per_epoch.items():
        assert len(seen) == total, epoch
        assert set(seen.values()) == {1}, epoch
    assert max(sizes) == 10


def test_shuffle_differs_between_epochs_and_is_reproducible(two_stores):
    sources = open_sources(two_stores, ["ecg@500"])

    def order(seed, epoch):
        ds = WindowDataset(sources, batch_size=8, seed=seed, shuffle_windows=32,
                           start_epoch=epoch, num_epochs=1)
        return [i for b in ds for i in _ids(b)]

    e0, e1 = order(0, 0), order(0, 1)
    assert sorted(e0) == sorted(e1)
    assert e0 != e1
    assert order(0, 0) == e0
    assert order(1, 0) != e0
    # the shuffle crosses shard boundaries: a batch mixes several shards
    ds = WindowDataset(sources, batch_size=8, seed=0, shuffle_windows=32, num_epochs=1)
    first = next(iter(ds))
    assert len({(s, i // 16) for s, i in _ids(first)}) > 1


def test_mix_streams_false_keeps_one_stream_per_batch(two_stores):
    sources = open_sources(two_stores, ["ecg@500", "ecg@100"])
    ds = WindowDataset(sources, batch_size=8, seed=0, mix_streams=False, num_epochs=1)
    for batch in ds:
        assert len(set(batch["source"].tolist())) == 1


def test_skip_batches_resumes_the_same_sequence(two_stores):
    """Batch g onward of the endless stream equals a fresh stream started at skip_batches=g."""
    sources = open_sources(two_stores, ["ecg@500", "ecg@100"])
    kw = dict(batch_size=7, seed=11, shuffle_windows=30)
    def first(ds, n):
        it = iter(make_loader(ds, num_workers=2, prefetch_factor=2))
        return [_ids(next(it)) for _ in range(n)]

    full = first(WindowDataset(sources, **kw), 60)
    for g in (0, 5, 23, 47):  # 23: inside a worker's epoch; 47: in epoch 1 (44 per epoch)
        assert first(WindowDataset(sources, skip_batches=g, **kw), 60 - g) == full[g:], g


def test_threads_give_the_dataloader_order(two_stores):
    """Reader threads and DataLoader worker processes yield the same batches in the same order."""
    sources = open_sources(two_stores, ["ecg@500", "ecg@100", "eeg@200"])
    kw = dict(batch_size=9, seed=2, shuffle_windows=30, num_epochs=2, skip_batches=3)
    procs = [b for b in make_loader(WindowDataset(sources, **kw), num_workers=2,
                                    prefetch_factor=2, workers="process")]
    threads = [b for b in make_loader(WindowDataset(sources, **kw), num_workers=2,
                                      workers="thread")]
    assert [_ids(b) for b in threads] == [_ids(b) for b in procs]
    for a, b in zip(threads, procs, strict=True):
        assert torch.equal(a["windows"], b["windows"])
        assert torch.equal(a["channel_mask"], b["channel_mask"])
        assert torch.equal(a["patch_mask"], b["patch_mask"])


def test_scale_and_channel_mask(two_stores):
    sources = open_sources(two_stores[:1], ["ecg@500"])
    ds = WindowDataset(sources, batch_size=16, scale=0.5, num_epochs=1)
    raw = open_store(two_stores[0]).stream("ecg@500").read(0, 203)
    for batch in ds:
        idx = batch["index"].numpy()
        np.testing.assert_allclose(batch["windows"].numpy(), raw["windows"][idx] * 0.5)
        np.testing.assert_array_equal(batch["channel_mask"].numpy(), raw["channel_mask"][idx])


def test_errors_name_the_fix(two_stores):
    with pytest.raises(ValueError, match="in none of the stores"):
        open_sources(two_stores, ["ecg@250"])
    sources = open_sources(two_stores[1:], ["ecg@500"])
    ds = WindowDataset(sources, batch_size=64, drop_last=True, num_epochs=1)
    with pytest.raises(ValueError, match="no batch in epoch"):
        list(ds)


def test_make_loader_defaults_to_reader_threads(two_stores):
    from criss_cross.data import ThreadedLoader

    ds = WindowDataset(open_sources(two_stores, ["ecg@500"]), batch_size=8, num_epochs=1)
    assert isinstance(make_loader(ds), ThreadedLoader)


@pytest.mark.real_data
def test_batches_carry_the_patch_mask_of_padded_tails(shared_data, tmp_path):
    """Real 10 s records at 100 and 500 Hz: the loader's patch_mask is the store's, and the
    padded patches are zeros."""
    from biosig_prep import convert
    from biosig_prep.config import PrepConfig

    srcs = sorted((shared_data / "ecg" / "cinc2021").glob("*.hea"))[:6]
    dst = tmp_path / "pad.zarr"
    convert(srcs, dst, PrepConfig(rates=[100, 500]), workers=0, progress=False)
    sources = open_sources([str(dst)], ["ecg@100", "ecg@500"])
    stored = {s.stream: open_store(str(dst)).stream(s.stream).read() for s in sources}
    ds = WindowDataset(sources, batch_size=5, seed=1, num_epochs=1, shuffle_windows=8)
    n_padded = 0
    for batch in make_loader(ds, num_workers=2):
        pm, w = batch["patch_mask"], batch["windows"]
        assert pm.dtype == torch.bool and pm.shape == (len(w), w.shape[2])
        for j, (s, i) in enumerate(_ids(batch)):
            ref = stored[sources[s].stream]
            np.testing.assert_array_equal(pm[j].numpy(), ref["patch_mask"][i])
            np.testing.assert_array_equal(w[j].numpy(), ref["windows"][i])
        assert not w.permute(0, 2, 1, 3)[~pm].any()
        n_padded += int((~pm).any(dim=1).sum())
    assert n_padded == 6 + 6  # every record: its one 100 Hz window and its last 500 Hz one
