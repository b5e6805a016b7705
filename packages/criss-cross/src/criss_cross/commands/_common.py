"""Shared pieces of the commands: one-line failures and config building."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

__all__ = ["build_config", "fail", "fail_validation", "note"]


def fail(message: str) -> NoReturn:
    """Print ``error: message`` (one line) to stderr and exit with status 1."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(1)


def fail_validation(err: Exception) -> NoReturn:
    """A pydantic ValidationError as ``loc: msg`` lines, exit 1."""
    from biosig_prep.util import validation_lines

    for line in validation_lines(err):
        typer.echo(line, err=True)
    raise typer.Exit(1)


def note(message: str) -> None:
    """A one-line note on stderr (a damaged checkpoint passed over, say)."""
    typer.echo(f"note: {message}", err=True)


def build_config(
    options: dict[str, Any],
    *,
    config_file: Path | None = None,
    small: bool = False,
):
    """A PretrainConfig from the ``--small`` preset, a config file and the options given."""
    from biosig_prep.util import read_mapping
    from criss_cross.config import SMALL_PRESET, PretrainConfig, apply_preset

    data: dict[str, Any] = dict(SMALL_PRESET) if small else {}
    if config_file is not None:
        data = apply_preset(read_mapping(config_file), data)
    given = {k: v for k, v in options.items() if v is not None}
    data = apply_preset(given, data)
    return PretrainConfig.model_validate(data)
