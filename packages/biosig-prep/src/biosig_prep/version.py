"""The installed version of biosig-prep (pyproject.toml is the one place it is written)."""

from biosig_prep.util.version import installed_version

__all__ = ["__version__"]

__version__ = installed_version("biosig-prep")
