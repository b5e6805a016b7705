"""biosig-prep: raw WFDB/MAT/EDF/DREAMER recordings to validated, windowed Zarr stores.

``open_store`` reads a store (:mod:`biosig_prep.store`); ``convert`` writes one
(:mod:`biosig_prep.convert`).
"""

from biosig_prep.recording import ProcessedRecord, Recording, StreamWindows, stream_name

__version__ = "0.1.0"

from biosig_prep.convert import convert  # noqa: E402  (the function shadows its module name)
from biosig_prep.store import Store, StoreError, Stream, open_store  # noqa: E402

__all__ = ["ProcessedRecord", "Recording", "StreamWindows", "stream_name", "__version__",
           "open_store", "Store", "Stream", "StoreError", "convert"]
