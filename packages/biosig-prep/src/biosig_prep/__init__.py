"""biosig-prep: raw WFDB/MAT/EDF/DREAMER recordings to validated, windowed Zarr stores.

``open_store`` reads a store (:mod:`biosig_prep.store`); ``convert`` writes one
(:mod:`biosig_prep.convert`).
"""

from biosig_prep.convert import convert  # the function shadows its module name
from biosig_prep.recording import ProcessedRecord, Recording, StreamWindows, stream_name
from biosig_prep.store import Store, StoreError, Stream, open_store
from biosig_prep.version import __version__

__all__ = ["ProcessedRecord", "Recording", "StreamWindows", "stream_name", "__version__",
           "open_store", "Store", "Stream", "StoreError", "convert"]
