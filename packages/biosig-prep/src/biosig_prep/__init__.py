"""biosig-prep: raw WFDB/MAT/EDF/DREAMER recordings to validated, windowed Zarr stores."""

from biosig_prep.recording import ProcessedRecord, Recording, StreamWindows, stream_name

__version__ = "0.1.0"

__all__ = ["ProcessedRecord", "Recording", "StreamWindows", "stream_name", "__version__"]
