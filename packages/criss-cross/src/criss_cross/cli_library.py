"""``criss-cross models | export | probe``: the encoder-library commands.

Registered on the root app of :mod:`criss_cross.cli` by :func:`register`. Each command only
parses options and calls a plain function: :func:`criss_cross.registry.list_models`,
:func:`criss_cross.hub.export_run`, :func:`criss_cross.probe.run_probe`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer, fail: Callable[[str], None]) -> None:
    """Add the ``models``, ``export`` and ``probe`` commands to ``app``."""

    @app.command()
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

    @app.command()
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

    @app.command()
    def probe(
        store: Annotated[str, typer.Option("--store", "-s", help="A labelled biosig-prep store.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")],
        stream: Annotated[str, typer.Option("--stream", help="Stream to embed, e.g. ecg@500.")] = "ecg@500",
        labels: Annotated[str, typer.Option(
            "--labels", help="Record metadata field holding the label codes (dx).")] = "dx",
        weights: Annotated[str | None, typer.Option(
            "--weights", "-w", help="Hub folder/repo id, run directory or .pth; none = random init.")] = None,
        model: Annotated[str, typer.Option(
            "--model", help="Registry name giving the architecture (with --weights).")] = "ecg-base",
        split_by: Annotated[str, typer.Option(
            "--split-by", help="'record' or a metadata field (e.g. source, subject).")] = "record",
        test_fraction: Annotated[float, typer.Option(help="Share of groups held out.")] = 0.3,
        min_count: Annotated[int, typer.Option(help="Classes with fewer positives are dropped.")] = 2,
        finetune_epochs: Annotated[int, typer.Option(
            help="Also fine-tune the encoder for this many epochs (0 = linear probe only).")] = 0,
        seed: Annotated[int, typer.Option(help="Seed of the split and the probe.")] = 0,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Windows per forward.")] = 64,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
        bf16: Annotated[bool, typer.Option(help="Embed under bf16 autocast.")] = False,
    ) -> None:
        """Linear probe (and optional fine-tuning) of an encoder on a store's record labels."""
        from criss_cross.probe import ProbeConfig, run_probe

        try:
            cfg = ProbeConfig(store=store, stream=stream, labels=labels, weights=weights,
                              model=model, split_by=split_by, test_fraction=test_fraction,
                              min_count=min_count, finetune_epochs=finetune_epochs, seed=seed,
                              batch_size=batch_size, device=device, bf16=bf16)
            result = run_probe(cfg, out)
        except (ValueError, KeyError, FileNotFoundError) as err:
            fail(str(err).strip('"'))
        from criss_cross.probe.report import _cell

        m = result["metrics"]["linear"]
        typer.echo(f"linear probe: macro AUROC {_cell(m['macro_auroc'])}, macro F1 "
                   f"{_cell(m['macro_f1'])}, challenge score {_cell(m['challenge_score'])}; "
                   f"report {out / 'report.md'}")
