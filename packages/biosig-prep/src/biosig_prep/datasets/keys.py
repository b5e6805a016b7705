"""Names shared by the readers that write them and the benchmarks that read them.

Record metadata (``records/metadata``, JSON text), beside what every reader writes (``age``,
``sex``, ``dx``, ...):

* :data:`PATIENT_ID` ``"patient_id"`` (str): the patient a record comes from, where the source
  says it: PTB-XL's ``patient_id`` column as an integer string (``"15709"``), CPSC 2021 from the
  file name ``data_<patient>_<record>``. Absent where unknown (the Challenge 2021 headers carry
  no patient id).
* :data:`PTBXL_ECG_ID` ``"ptbxl_ecg_id"`` (int): the PTB-XL ``ecg_id`` of the recording, for
  PTB-XL records and for the Challenge 2021 ``HR`` records, which *are* PTB-XL records
  (``HR00001`` is ``ecg_id`` 1): identity across datasets, for leakage checks.
* PTB-XL records also carry ``ecg_id`` (int), ``strat_fold`` (int, 1-10), ``scp_codes``
  ({code: likelihood}), and the label sets of the PTB-XL benchmark as lists of codes under
  :data:`PTBXL_LABEL_KEYS` (see :mod:`biosig_prep.datasets.ptbxl` for their definitions).

Per-window labels (``<stream>/labels/<name>``, int64 (N,), attribute ``classes``; read with
:meth:`biosig_prep.store.Stream.window_labels` and :meth:`~biosig_prep.store.Stream.label_classes`):
:data:`AF_LABEL` ``"af"`` (classes :data:`AF_CLASSES`) and :data:`RHYTHM_LABEL` ``"rhythm"``,
from rhythm annotations (:mod:`biosig_prep.readers.rhythm`). :data:`UNLABELLED` (-1) marks a
window with no label (a record without annotations in a stream where others have them).
"""

from __future__ import annotations

import re

__all__ = ["PATIENT_ID", "PTBXL_ECG_ID", "PTBXL_LABEL_SETS", "PTBXL_LABEL_KEYS", "AF_LABEL",
           "RHYTHM_LABEL", "AF_CLASSES", "UNLABELLED", "ptbxl_ecg_id_of"]

PATIENT_ID = "patient_id"
PTBXL_ECG_ID = "ptbxl_ecg_id"
# label set -> metadata key (the task names of `criss-cross bench`: ptbxl-all, ...)
PTBXL_LABEL_SETS = ("all", "diag", "subdiag", "superdiag", "form", "rhythm")
PTBXL_LABEL_KEYS = {name: f"ptbxl_{name}" for name in PTBXL_LABEL_SETS}

AF_LABEL = "af"
RHYTHM_LABEL = "rhythm"
AF_CLASSES = ("non-AF", "AF")
UNLABELLED = -1

_HR_NAME = re.compile(r"^HR(\d+)$")


def ptbxl_ecg_id_of(record_name: str) -> int | None:
    """The PTB-XL ``ecg_id`` of a Challenge 2021 record name (``"HR00001"`` -> 1), else None.

    Only the last path component counts (``"ptb-xl/g1/HR06000"`` -> 6000).
    """
    name = record_name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _HR_NAME.match(name)
    return int(match.group(1)) if match else None
