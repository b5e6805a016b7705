"""``criss-cross export``: parse the options, then :func:`criss_cross.hub.export_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from criss_cross.commands._common import fail

__all__ = ["export"]


def export(
    run_dir: Annotated[Path, typer.Argument(help="A pretraining run directory.")],
    out_dir: Annotated[Path, typer.Argument(help="Hub-format folder to write.")],
    name: Annotated[str | None, typer.Option(help="Model name in config.json and the card.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a model already in OUT_DIR.")] = False,
) -> None:
    """Write a run's newest checkpoint as config.json + model.safetensors + README.md."""
    from criss_cross.hub import export_run

    try:
        out = export_run(run_dir, out_dir, name=name, overwrite=overwrite)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as err:
        fail(str(err).strip('"'))
    typer.echo(f"exported to {out} (load with criss_cross.from_pretrained({str(out)!r}))")
