"""Small helpers every package of the monorepo shares (no torch): atomic file writes,
config-file reading, validation messages, content hashes and installed versions. One place for each rule."""

from biosig_prep.util.configfile import ConfigFileError, read_mapping
from biosig_prep.util.files import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
)
from biosig_prep.util.hashing import file_sha256, sha256_json
from biosig_prep.util.messages import validation_lines
from biosig_prep.util.version import installed_version

__all__ = [
    "ConfigFileError",
    "read_mapping",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "file_sha256",
    "sha256_json",
    "validation_lines",
    "installed_version",
]
