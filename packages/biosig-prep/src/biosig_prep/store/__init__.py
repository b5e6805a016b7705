"""The Zarr v3 store that ``biosig-prep convert`` writes and every other package reads.

One sub-package owns the format (see :mod:`biosig_prep.store.layout` for the layout):

* :mod:`~biosig_prep.store.layout`: names, keys, sizes, the schema version (no I/O);
* :mod:`~biosig_prep.store.codec`: the window encoding both ways (int16 through zarr's
  fixed-scale codec, or float32; the writer's shard assembly and the reader's shard decoder);
* :mod:`~biosig_prep.store.io`: whole-object I/O, the only place that touches zarr's internals;
* :mod:`~biosig_prep.store.reader`: :func:`open_store`, :class:`Store`, :class:`Stream`,
  :class:`ShardReader`;
* :mod:`~biosig_prep.store.writer`: :class:`StoreWriter` (metadata; used by the convert driver);
* :mod:`~biosig_prep.store.integrity`: the seal (manifest, metadata digests) readers check,
  and :mod:`~biosig_prep.store.checked`: small arrays read with every chunk checked.

``complete`` is written last; :func:`open_store` refuses a store without it unless asked.
"""

from biosig_prep.store.checked import CheckedArray
from biosig_prep.store.codec import EncodingRangeError, ShardDecoder, WindowCodec, codec_for
from biosig_prep.store.integrity import IntegrityError
from biosig_prep.store.io import RawIO, open_raw_store
from biosig_prep.store.layout import (
    EMPTY_CHUNK,
    LABELS,
    LABELS_CHUNK,
    LOCK,
    MANIFEST,
    META,
    RECORD_COLUMNS,
    RECORDS,
    RECORDS_CHUNK,
    SCHEMA_VERSION,
    SMALL_ARRAYS,
    SOURCES,
    STAGING,
    DamagedShardError,
    StreamSpec,
    auto_block_size,
    auto_shard_size,
    chunk_key,
    small_chunk_bytes,
)
from biosig_prep.store.reader import (
    ShardReader,
    Store,
    StoreChangedError,
    StoreError,
    Stream,
    open_store,
)
from biosig_prep.store.verify import verify_store
from biosig_prep.store.writer import StoreWriter

__all__ = [
    "SCHEMA_VERSION", "StoreError", "StoreChangedError", "DamagedShardError", "Store", "Stream",
    "open_store", "ShardReader", "ShardDecoder", "StreamSpec", "WindowCodec", "codec_for",
    "EncodingRangeError", "RawIO", "StoreWriter", "open_raw_store", "chunk_key",
    "RECORD_COLUMNS", "RECORDS", "RECORDS_CHUNK", "LABELS", "LABELS_CHUNK", "STAGING", "LOCK", "META", "SOURCES", "MANIFEST",
    "EMPTY_CHUNK", "verify_store", "CheckedArray", "IntegrityError", "SMALL_ARRAYS", "auto_block_size", "auto_shard_size", "small_chunk_bytes",
]
