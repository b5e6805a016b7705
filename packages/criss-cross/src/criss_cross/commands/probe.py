"""``criss-cross probe``: parse the options, then :func:`criss_cross.probe.run_probe`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from criss_cross.commands._common import fail, fail_validation

__all__ = ["probe"]


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
    max_params: Annotated[int | None, typer.Option(
        help="Ceiling on the encoder's parameters, checked before it is built [1e9].")] = None,
    allow_overlap: Annotated[bool, typer.Option(
        "--allow-overlap", help="Run even if records were in the encoder's pretraining.")] = False,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch", help="Run even if the store's preprocessing differs.")] = False,
) -> None:
    """Linear probe (and optional fine-tuning) of an encoder on a store's record labels."""
    from pydantic import ValidationError

    from criss_cross.probe import ProbeConfig, run_probe

    try:
        cfg = ProbeConfig(store=store, stream=stream, labels=labels, weights=weights,
                          model=model, split_by=split_by, test_fraction=test_fraction,
                          min_count=min_count, finetune_epochs=finetune_epochs, seed=seed,
                          batch_size=batch_size, device=device, bf16=bf16,
                          max_params=max_params, allow_overlap=allow_overlap,
                          allow_mismatch=allow_mismatch)
    except ValidationError as err:
        fail_validation(err)
    try:
        result = run_probe(cfg, out)
    except ValidationError as err:
        fail_validation(err)
    except (ValueError, KeyError, OSError, FloatingPointError) as err:  # OSError: a damaged shard
        fail(str(err).strip('"'))
    from criss_cross.probe.report import _cell

    m = result["metrics"]["linear"]
    typer.echo(f"linear probe: macro AUROC {_cell(m['macro_auroc'])}, macro F1 "
               f"{_cell(m['macro_f1'])}, challenge score {_cell(m['challenge_score'])}; "
               f"report {out / 'report.md'}")
