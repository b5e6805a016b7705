"""``criss-cross embed``: parse the options, then :func:`criss_cross.embed.embed_store`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from criss_cross.commands._common import fail, note

__all__ = ["embed"]


def embed(
    checkpoint: Annotated[Path, typer.Option(
        "--checkpoint", help="Hub-format folder, run directory, checkpoint directory or model "
        ".safetensors.")],
    store: Annotated[str, typer.Option("--store", "-s", help="A biosig-prep store.")],
    stream: Annotated[str, typer.Option("--stream", help="Stream to embed, e.g. ecg@500.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output Zarr group.")],
    batch_size: Annotated[int, typer.Option("--batch-size", help="Windows per forward pass.")] = 256,
    pool: Annotated[str, typer.Option(help="none: (N,C,P,D); channels: (N,P,D); all: (N,D).")] = "none",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    max_params: Annotated[int | None, typer.Option(
        help="Ceiling on the encoder's parameters, checked before it is built [1e9].")] = None,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch", help="Embed even if the store's preprocessing differs.")] = False,
) -> None:
    """Write encoder embeddings of every window of a stream (Zarr v3)."""
    from criss_cross.bench.guards import check_stream_input
    from criss_cross.embed import embed_store

    try:
        bad = check_stream_input(str(checkpoint), store, stream)
        if bad and not allow_mismatch:
            fail(f"{bad}; reconvert the store or pass --allow-mismatch")
        if bad:
            note(bad)
        path = embed_store(checkpoint, store, stream, out, batch_size=batch_size, pool=pool,  # type: ignore[arg-type]
                           device=device, overwrite=overwrite, progress=progress, report=note,
                           max_params=max_params)
    except (ValueError, KeyError, OSError) as err:
        fail(str(err).strip('"'))
    typer.echo(f"embeddings written to {path}")


