"""``criss-cross models``: parse the options, then :data:`criss_cross.registry.MODELS`."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["models"]


def models(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Input and weights too.")] = False,
) -> None:
    """List the named encoders of criss_cross.create_model."""
    from criss_cross.registry import MODELS

    for name in sorted(MODELS):
        spec = MODELS[name]
        typer.echo(f"{name}: {spec.description}")
        if verbose:
            typer.echo(f"    input: {spec.input_spec()}")
            typer.echo(f"    weights: {spec.weights}")
