"""A distribution's installed version, from its package metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["installed_version"]


def installed_version(distribution: str) -> str:
    """The version pip installed ``distribution`` at (its pyproject.toml is the one place the
    version is written); ``"0+unknown"`` when run from a source tree that is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0+unknown"
