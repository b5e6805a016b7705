"""``import wfdb`` without the warnings it prints: the one place both WFDB readers get the library.

:mod:`biosig_prep.readers.wfdb_reader` (records) and :mod:`biosig_prep.readers.rhythm`
(annotations) both call :func:`import_wfdb`; it sits below them so that neither imports the
other for it. The import stays deferred to the first call (wfdb and pandas cost a noticeable
part of start-up, and the fast reading path never needs them).
"""

from __future__ import annotations

import warnings

__all__ = ["import_wfdb"]


def import_wfdb():
    """``import wfdb``, without the deprecation warnings its import triggers under pandas 3
    (``DataFrame.set_index(inplace=True)`` in ``wfdb.io.annotation``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import wfdb
    return wfdb
