"""Moved: :class:`ReadError` lives in :mod:`biosig_prep.errors` (so that dataset modules can raise
it without importing the readers package). This module keeps the old import path working."""

from __future__ import annotations

from biosig_prep.errors import ReadError

__all__ = ["ReadError"]
