"""Moved: the DREAMER dataset lives in :mod:`biosig_prep.datasets.dreamer` (one place for all of
it). This module keeps the old import path working."""

from __future__ import annotations

from biosig_prep.datasets.dreamer import *  # noqa: F403
from biosig_prep.datasets.dreamer import __all__  # noqa: F401
