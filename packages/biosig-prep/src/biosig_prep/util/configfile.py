"""Reading config files (YAML or JSON) with one set of rules for every package's ``--config``.

Rules: ``.json`` is parsed as JSON, anything else as YAML with ``yaml.safe_load`` (no
``!!python`` tags: such a file is refused, never executed); an empty file is an empty mapping;
the top level must be a mapping. Every failure is a :class:`ConfigFileError` whose message is
one line naming the file and the problem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["ConfigFileError", "read_mapping"]


class ConfigFileError(ValueError):
    """A config file that is missing, unreadable, not YAML/JSON or not a mapping."""


def read_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping of settings stored in a YAML or JSON file (an empty file gives ``{}``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigFileError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigFileError(f"config file {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"config file {path} could not be read: {exc}") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text) if text.strip() else None
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parser error becomes one clear line
        detail = " ".join(str(exc).split())
        raise ConfigFileError(f"config file {path} could not be parsed: {detail}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    return data
