"""The installed version of fusion-emotion (pyproject.toml is the one place it is written)."""

from biosig_prep.util.version import installed_version

__all__ = ["__version__"]

__version__ = installed_version("fusion-emotion")
