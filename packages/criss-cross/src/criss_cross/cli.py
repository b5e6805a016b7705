"""``criss-cross``: the root command-line app (entry point ``criss_cross.cli:app``).

Each command lives in its own module of :mod:`criss_cross.commands`, parses its options and
calls a plain importable function: ``pretrain`` (:func:`criss_cross.pretrain.pretrain`),
``embed`` (:func:`criss_cross.embed.embed_store`), ``models`` (the registry), ``export``
(:func:`criss_cross.hub.export_run`), ``probe`` (:func:`criss_cross.probe.run_probe`), ``bench``
(:func:`criss_cross.bench.run_bench`), ``stream`` (:class:`criss_cross.stream.StreamEmbedder`).
Every failure is one line on stderr and exit
status 1 (a configuration error: ``field: message`` lines).
"""

from __future__ import annotations

import typer

from criss_cross.commands import bench as _bench
from criss_cross.commands import embed as _embed
from criss_cross.commands import export as _export
from criss_cross.commands import models as _models
from criss_cross.commands import pretrain as _pretrain
from criss_cross.commands import probe as _probe
from criss_cross.commands import stream as _stream
from criss_cross.commands._common import build_config

__all__ = ["app", "build_config"]

app = typer.Typer(
    name="criss-cross",
    help="CBraMod-compatible criss-cross encoder: dual-masking pretraining and embeddings.",
    no_args_is_help=True,
    add_completion=False,
)

app.command()(_pretrain.pretrain)
app.command()(_embed.embed)
app.command()(_models.models)
app.command()(_export.export)
app.command()(_probe.probe)
app.command()(_bench.bench)
app.command()(_stream.stream)


if __name__ == "__main__":  # pragma: no cover
    app()
