"""The window encoding, both ways: what the writer puts in a shard and how a reader gets it out.

Windows are stored one per chunk inside ``sharding_indexed`` shards. Each chunk goes through
zarr's own codec chain, so plain zarr reads the physical values:

* ``int16`` (default): ``numcodecs.fixedscaleoffset`` (``round(x / step)`` as int16) ->
  ``bytes`` (little-endian) -> ``blosc`` (bit-shuffle + LZ4 level 9) -> ``crc32c``. Decoded as
  ``float32(q / scale)`` with ``scale = 1 / step``; largest error :meth:`WindowCodec.max_abs_error`
  (half a step, plus float32 rounding).
* ``float32``: ``bytes`` -> ``blosc`` (byte shuffle + LZ4) -> ``crc32c``: exact.

The last codec, the Zarr v3 core ``crc32c`` (4 bytes appended to every chunk), makes any Zarr
reader check every chunk it decodes; stores written before it (no ``crc32c`` in the chain) are
read as before.

:meth:`WindowCodec.encode` gives the bytes zarr itself would store for one window chunk and
:meth:`WindowCodec.shard` the bytes of one shard object (chunks back to back, then the
(offset, nbytes) index with a CRC32C), so a worker writes complete shards without zarr (the
tests check they are byte-identical to zarr's). :class:`ShardDecoder` reads that layout back
straight into a float32 destination; :meth:`ShardDecoder.from_metadata` recognises it from the
array's ``zarr.json`` (the v3 spec, no zarr internals) and returns None for anything else (the
reader then slices through zarr).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from biosig_prep.store.layout import EMPTY_CHUNK

__all__ = ["WindowCodec", "ShardDecoder", "EncodingRangeError", "codec_for", "with_crc32c"]


def with_crc32c(data: bytes) -> bytes:
    """``data`` followed by its CRC32C, little-endian: what zarr's ``crc32c`` codec stores."""
    import google_crc32c

    return data + int(google_crc32c.value(data)).to_bytes(4, "little")

_INT_MAX = {"int16": 32767}


class EncodingRangeError(ValueError):
    """Values that do not fit the integer encoding (never wrapped silently)."""


@dataclass(frozen=True)
class WindowCodec:
    """How the windows of a stream are encoded (picklable; part of a run's fingerprint).

    dtype : ``"int16"`` (a fixed ``step`` in the stream's units) or ``"float32"``.
    step : physical value of one integer unit (``int16`` only), e.g. 0.001 mV for ECG.
    cname / clevel / shuffle : the Blosc settings (shuffle None: bit-shuffle for int16, byte
        shuffle for float32).
    """

    dtype: str = "float32"
    step: float | None = None
    cname: str = "lz4"
    clevel: int = 5
    shuffle: str | None = None

    def __post_init__(self) -> None:
        if self.dtype not in ("int16", "float32"):
            raise ValueError(f"dtype must be 'int16' or 'float32', got {self.dtype!r}")
        if self.dtype == "int16" and not (self.step and self.step > 0):
            raise ValueError(f"int16 windows need a positive step, got {self.step!r}")

    # -- the zarr side ------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Integers per physical unit (``1 / step``), rounded so that steps like 0.001 give an
        exact 1000.0."""
        return float(round(1.0 / self.step, 9)) if self.step else 1.0

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "int16" else 4

    @property
    def blosc_shuffle(self) -> str:
        return self.shuffle or ("bitshuffle" if self.dtype == "int16" else "shuffle")

    def zarr_filters(self) -> list:
        if self.dtype == "float32":
            return []
        from zarr.codecs.numcodecs import FixedScaleOffset

        from biosig_prep.store.io import quiet

        with quiet():
            return [FixedScaleOffset(offset=0, scale=self.scale, dtype="<f4", astype="<i2")]

    def zarr_compressors(self) -> list:
        """The bytes-to-bytes codecs of a window chunk: Blosc, then the CRC32C checksum."""
        from zarr.codecs import Crc32cCodec

        return [self.zarr_codec(), Crc32cCodec()]

    def zarr_codec(self):
        from zarr.codecs import BloscCodec

        # zarr's BloscCodec parses the str names; its signature lists the literal names only
        return BloscCodec(cname=self.cname, clevel=self.clevel,  # type: ignore[arg-type]
                          shuffle=self.blosc_shuffle,  # type: ignore[arg-type]
                          typesize=self.itemsize, blocksize=0)

    def max_abs_error(self, max_abs: float | None = None) -> float:
        """Largest |decoded - float32 input| for inputs within the integer range: half a step,
        plus the float32 rounding of ``x * scale`` and of the decoded value."""
        if self.dtype == "float32":
            return 0.0
        assert self.step is not None  # int16 has a positive step (__post_init__)
        top = (max_abs if max_abs is not None else _INT_MAX[self.dtype] * self.step)
        return float(self.step / 2 + 2 * top * 2.0**-23)

    def describe(self, units: str) -> dict[str, Any]:
        """The ``encoding`` attribute of a stream."""
        return {"dtype": self.dtype, "step": self.step, "scale": self.scale if self.step else None,
                "units": units, "max_abs_error": self.max_abs_error(),
                "range": (None if self.dtype == "float32"
                          else _INT_MAX[self.dtype] * float(cast(float, self.step))),
                "compressor": {"cname": self.cname, "clevel": self.clevel,
                               "shuffle": self.blosc_shuffle}}

    # -- the writer side ----------------------------------------------------------------------
    def _blosc(self):
        blosc = getattr(self, "_blosc_cache", None)
        if blosc is None:
            from numcodecs import Blosc

            shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[self.blosc_shuffle]
            blosc = Blosc(cname=self.cname, clevel=self.clevel, shuffle=shuffle, blocksize=0,
                          typesize=self.itemsize)
            object.__setattr__(self, "_blosc_cache", blosc)
        return blosc

    def quantize(self, windows: np.ndarray) -> np.ndarray:
        """Integers zarr's fixed-scale codec would store (``around(x * scale)``, computed in
        float32 exactly as numcodecs does). Raises :class:`EncodingRangeError` for a value
        outside the integer range (never wraps)."""
        x = np.asarray(windows, dtype="<f4")
        q = np.around(x * self.scale)  # float32, as numcodecs computes it
        limit = _INT_MAX[self.dtype]
        assert self.step is not None  # int16 (the only integer dtype) has a positive step
        if q.size and (float(q.max()) > limit or float(q.min()) < -limit - 1
                       or not np.isfinite(q).all()):
            worst = float(np.nanmax(np.abs(x))) if np.isfinite(x).any() else math.inf
            raise EncodingRangeError(
                f"|x| reaches {worst:g}, outside the int16 range ±{limit * self.step:g} at step "
                f"{self.step:g}")
        return q.astype("<i2")

    def out_of_range(self, windows: np.ndarray) -> float | None:
        """The largest |value| if it does not fit the encoding, else None."""
        if self.dtype == "float32" or not windows.size:
            return None
        top = float(np.abs(windows).max())
        if not math.isfinite(top) or round(top * self.scale) > _INT_MAX[self.dtype]:
            return top
        return None

    def encode(self, window: np.ndarray) -> bytes:
        """Encoded bytes of one window, shape (C, P, S) (compressed, then its CRC32C)."""
        if self.dtype == "float32":
            w = np.ascontiguousarray(window, dtype="<f4")
        else:
            w = np.ascontiguousarray(self.quantize(window))
        return with_crc32c(self._blosc().encode(w.reshape(-1).view(np.uint8)))

    def encode_many(self, windows: np.ndarray) -> list[bytes]:
        """:meth:`encode` of every window of (N, C, P, S) (quantized in one pass)."""
        data = (np.ascontiguousarray(windows, dtype="<f4") if self.dtype == "float32"
                else self.quantize(windows))
        blosc = self._blosc()
        return [with_crc32c(blosc.encode(w.reshape(-1).view(np.uint8))) for w in data]

    @staticmethod
    def shard(chunks: Sequence[bytes | memoryview], n_slots: int) -> list[bytes | memoryview]:
        """One shard object holding ``chunks`` in slots ``0..len(chunks)-1`` of ``n_slots``, as
        a list of buffers to write one after the other (join them for the bytes)."""
        import google_crc32c

        if len(chunks) > n_slots:
            raise ValueError(f"{len(chunks)} chunks do not fit a shard of {n_slots}")
        index = np.full((n_slots, 2), EMPTY_CHUNK, dtype="<u8")
        sizes = np.fromiter((len(c) for c in chunks), dtype=np.uint64, count=len(chunks))
        offsets = np.zeros(len(chunks), dtype=np.uint64)
        if len(chunks) > 1:
            np.cumsum(sizes[:-1], out=offsets[1:])
        index[: len(chunks), 0] = offsets
        index[: len(chunks), 1] = sizes
        index_bytes = index.tobytes()
        crc = np.array([google_crc32c.value(index_bytes)], dtype="<u4").tobytes()
        return [*chunks, index_bytes + crc]


def codec_for(modality: str, dtype: str, steps: dict[str, float]) -> WindowCodec:
    """The codec of a modality's streams under an encoding config."""
    if dtype == "float32":
        return WindowCodec("float32")
    # LZ4 level 9 after bit-shuffle: on band-passed ECG at 1 µV, 0.34x float32's bytes at
    # 200 Hz (level 5: 0.35x; LZ4HC level 1: 0.33x but twice the encoding time, which made
    # convert ~14 % slower) and encoded as fast as float32 (tools/bench/bench_store.py)
    return WindowCodec("int16", float(steps[modality]), cname="lz4", clevel=9)


@functools.lru_cache(maxsize=32)
def _float32_exact(stored: np.dtype, scale: float) -> bool:
    """Whether float32 division by ``scale`` gives zarr's float32(float64(q) / scale) for every
    integer q of ``stored`` (checked exhaustively for int8/int16; true for the integer scales of
    the default steps, 1000 and 5)."""
    if stored.itemsize > 2 or float(np.float32(scale)) != scale:
        return False
    info = np.iinfo(stored)
    q = np.arange(info.min, info.max + 1).astype(stored)
    fast = q.astype(np.float32)
    fast /= np.float32(scale)
    return bool(np.array_equal(fast, (q / scale).astype(np.float32)))


class ShardDecoder:
    """Decodes shards of an (N, ...) array whose chunks hold one row each, into float32 rows.

    The layout it knows (anything else: :meth:`from_metadata` returns None): one
    ``sharding_indexed`` codec, inner chunk = one row; inner codecs an optional
    ``numcodecs.fixedscaleoffset`` (float32 from int8/16/32), ``bytes`` little-endian, and an
    optional zstd / gzip / blosc, then an optional ``crc32c`` (checked on every chunk decoded,
    unless the caller checked the whole object); index codecs ``bytes`` (+ ``crc32c``), at the
    start or end.
    """

    def __init__(self, k: int, row_shape: tuple[int, ...], stored: np.dtype,
                 decompress: Any | None, *, scale: float | None, offset: float,
                 index_at_end: bool, index_crc: bool, fill_value: float, where: str,
                 chunk_crc: bool = False) -> None:
        self.k, self.row_shape, self.stored = k, row_shape, stored
        self.row_size = int(np.prod(row_shape))
        self.decompress, self.scale, self.offset = decompress, scale, offset
        self.index_at_end, self.index_crc = index_at_end, index_crc
        self.index_nbytes = 16 * k + (4 if index_crc else 0)
        self.fill_value = fill_value
        self.where = where  # "<url> stream <name>" for messages
        self.chunk_crc = chunk_crc  # every chunk ends with its CRC32C (zarr's crc32c codec)
        self.float32_exact = scale is not None and not offset and _float32_exact(stored, scale)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], where: str = "") -> ShardDecoder | None:
        """A decoder for the array described by ``meta`` (its parsed ``zarr.json``)."""
        try:
            return cls._parse(meta, where)
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    @classmethod
    def _parse(cls, meta: dict[str, Any], where: str) -> ShardDecoder | None:
        shape = [int(d) for d in meta["shape"]]
        if meta.get("data_type") != "float32" or meta.get("zarr_format") != 3:
            return None
        if (meta.get("chunk_key_encoding") or {}).get("name") != "default":
            return None
        codecs = meta["codecs"]
        if len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed":
            return None
        conf = codecs[0]["configuration"]
        shard_shape = [int(d) for d in meta["chunk_grid"]["configuration"]["chunk_shape"]]
        if [int(d) for d in conf["chunk_shape"]] != [1, *shape[1:]] or shard_shape[1:] != shape[1:]:
            return None
        inner = list(conf["codecs"])
        scale, offset, stored = None, 0.0, np.dtype("<f4")
        if inner and inner[0]["name"] in ("numcodecs.fixedscaleoffset", "fixedscaleoffset"):
            c = inner.pop(0)["configuration"]
            stored = np.dtype(c.get("astype") or c.get("dtype"))
            if np.dtype(c.get("dtype", "<f4")) != np.dtype("<f4") or stored.kind != "i":
                return None
            scale, offset = float(c["scale"]), float(c.get("offset") or 0.0)
        chunk_crc = bool(inner) and inner[-1]["name"] == "crc32c"
        if chunk_crc:
            inner.pop()
        if not inner or inner[0]["name"] != "bytes":
            return None
        endian = (inner[0].get("configuration") or {}).get("endian", "little")
        if stored.itemsize > 1 and endian != "little":
            return None
        decompress = None
        if len(inner) == 2:
            name = inner[1]["name"]
            if name == "zstd":
                from numcodecs import zstd

                decompress = zstd.decompress
            elif name == "gzip":
                import numcodecs

                gz = numcodecs.GZip()
                decompress = lambda src, out: gz.decode(src, out=out)  # noqa: E731
            elif name == "blosc":
                from numcodecs import blosc

                decompress = blosc.decompress
            else:
                return None
        elif len(inner) > 2:
            return None
        idx = [c["name"] for c in conf.get("index_codecs", [{"name": "bytes"}, {"name": "crc32c"}])]
        if idx not in (["bytes"], ["bytes", "crc32c"]):
            return None
        fill = meta.get("fill_value", 0.0)
        return cls(shard_shape[0], tuple(shape[1:]), stored.newbyteorder("<"), decompress,
                   scale=scale, offset=offset,
                   index_at_end=conf.get("index_location", "end") == "end",
                   index_crc=len(idx) == 2, fill_value=float(fill or 0.0), where=where,
                   chunk_crc=chunk_crc)

    def _damaged(self, shard: int, why: str) -> OSError:
        from biosig_prep.store.layout import DamagedShardError

        return DamagedShardError(f"{self.where}: shard {shard} is damaged ({why}); run "
                                 "`biosig-prep verify` on the store, then re-run its convert")

    def index(self, raw: np.ndarray, shard: int) -> np.ndarray:
        """The (k, 2) offset/nbytes table of a fetched shard (checked)."""
        if len(raw) < self.index_nbytes:
            raise self._damaged(shard, f"{len(raw)} bytes, shorter than its index")
        idx = raw[len(raw) - self.index_nbytes:] if self.index_at_end else raw[:self.index_nbytes]
        if self.index_crc:
            import google_crc32c

            body, crc = idx[: 16 * self.k], idx[16 * self.k:]
            if google_crc32c.value(body.tobytes()) != int(crc.view("<u4")[0]):
                raise self._damaged(shard, "index checksum mismatch")
            idx = body
        table = idx.view("<u8").reshape(self.k, 2)
        used = table[:, 0] != np.uint64(EMPTY_CHUNK)
        if used.any() and int((table[used, 0] + table[used, 1]).max()) > len(raw):
            raise self._damaged(shard, "a chunk runs past the end of the object")
        return table

    def decode_rows(self, raw: np.ndarray | None, rows: Sequence[int],
                    dests: Sequence[np.ndarray | None], shard: int = -1, *,
                    present: int = 0, verified: bool = False) -> None:
        """Decode shard-local ``rows`` of one fetched shard, row i into ``dests[i]`` (a flat
        uint8 view of a float32 destination; None = not needed, not decoded). ``raw`` None (the
        shard object does not exist) gives the fill value.

        present : rows ``0..present-1`` of this shard must be stored (a missing one is damage,
            not the fill value). verified : the caller checked the whole object's checksum, so
            the per-chunk CRC32Cs are not computed again."""
        if raw is None:
            for d in dests:
                if d is not None:
                    d.view(np.float32)[...] = self.fill_value
            return
        table = self.index(raw, shard).tolist()
        scratch = None if self.scale is None else np.empty(self.row_size, self.stored)
        check_crc = self.chunk_crc and not verified
        trailer = 4 if self.chunk_crc else 0
        for r, d in zip(rows, dests, strict=True):
            if d is None:
                continue
            off, length = table[r]
            if off == EMPTY_CHUNK:
                if r < present:
                    raise self._damaged(shard, f"chunk {r} is missing from its index")
                d.view(np.float32)[...] = self.fill_value
                continue
            if length < trailer:
                raise self._damaged(shard, f"chunk {r}: {length} bytes, shorter than its checksum")
            body = raw[off:off + length - trailer]
            if check_crc:
                import google_crc32c

                stored = int(raw[off + length - 4:off + length].view("<u4")[0])
                if google_crc32c.value(body) != stored:
                    raise self._damaged(shard, f"chunk {r}: checksum mismatch")
            target = d if scratch is None else scratch.view(np.uint8)
            try:
                if self.decompress is None:
                    target[...] = body
                else:
                    self.decompress(body, target)
            except Exception as exc:  # noqa: BLE001 - any codec failure is a damaged shard
                raise self._damaged(shard, f"chunk {r}: {type(exc).__name__}: {exc}") from exc
            if scratch is not None:  # exactly zarr's float32(q / scale + offset)
                out = d.view(np.float32)
                if self.float32_exact:  # in place, in float32: ~5x faster, same values
                    out[...] = scratch
                    out /= np.float32(self.scale)
                elif self.offset:
                    out[...] = scratch / self.scale + self.offset
                else:
                    np.divide(scratch, cast(float, self.scale), out=out, casting="same_kind")
