"""``criss-cross bench``: parse the options, then :func:`criss_cross.bench.run_bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from criss_cross.commands._common import fail, fail_validation

__all__ = ["bench"]


def bench(
    task: Annotated[str, typer.Argument(help="ptbxl-all, ptbxl-diag, ptbxl-subdiag, "
                                        "ptbxl-superdiag, ptbxl-form, ptbxl-rhythm, "
                                        "challenge2021, af-rhythm, or custom (with --labels).")],
    store: Annotated[str, typer.Option("--store", "-s", help="A labelled biosig-prep store.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")],
    weights: Annotated[str | None, typer.Option(
        "--weights", "-w", help="Hub folder, run directory, .pth, or a registry name "
        "(random init).")] = None,
    model: Annotated[str, typer.Option(
        "--model", help="Registry name giving the architecture of a .pth / random init.")] = "ecg-base",
    stream: Annotated[str | None, typer.Option(
        "--stream", help="Stream to evaluate (default ecg@500, else ecg@200).")] = None,
    labels: Annotated[str | None, typer.Option(
        "--labels", help="Label field: a record metadata field or a per-window label.")] = None,
    split_by: Annotated[str, typer.Option(
        "--split-by", help="patient (default), record, source or a metadata field.")] = "patient",
    test_fraction: Annotated[float, typer.Option(help="Share of patients in test.")] = 0.3,
    val_fraction: Annotated[float, typer.Option(help="Share of patients in validation.")] = 0.2,
    label_fractions: Annotated[str, typer.Option(
        help="Comma-separated shares of train patients for the label-efficiency curve.")] = "1",
    finetune: Annotated[int, typer.Option(
        "--finetune", help="Also fine-tune the encoder for N epochs (0: probe only).")] = 0,
    min_count: Annotated[int, typer.Option(help="Classes with fewer positives are dropped.")] = 2,
    n_boot: Annotated[int, typer.Option(help="Bootstrap draws over patients.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the split, probes and random init.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Windows per forward.")] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    allow_overlap: Annotated[bool, typer.Option(
        "--allow-overlap", help="Report even if test records were in pretraining.")] = False,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch", help="Run even if the store's preprocessing differs.")] = False,
    max_params: Annotated[int | None, typer.Option(
        help="Ceiling on the encoder's parameters, checked before it is built [1e9].")] = None,
) -> None:
    """Encoder vs random init vs features vs baselines on one task, with intervals."""
    from pydantic import ValidationError

    from criss_cross.bench import BenchConfig, run_bench
    from criss_cross.bench.report import _ci

    registry_name = None
    if weights is not None and not Path(weights).exists():
        from criss_cross.registry import MODELS

        if weights in MODELS:
            registry_name, weights = weights, None
    try:
        fractions = [float(f) for f in label_fractions.split(",") if f.strip()]
    except ValueError:
        fail(f"--label-fractions {label_fractions!r}: expected numbers like 0.01,0.1,1")
    try:
        cfg = BenchConfig(task=task, store=store, weights=weights,
                          model=registry_name or model, stream=stream, labels=labels,
                          split_by=split_by, test_fraction=test_fraction,
                          val_fraction=val_fraction, label_fractions=fractions,
                          finetune_epochs=finetune, min_count=min_count, n_boot=n_boot,
                          seed=seed, batch_size=batch_size, device=device,
                          allow_overlap=allow_overlap, allow_mismatch=allow_mismatch,
                          max_params=max_params)
    except ValidationError as err:
        fail_validation(err)
    try:
        doc = run_bench(cfg, out)
    except (ValueError, KeyError, FileNotFoundError) as err:
        fail(str(err).strip('"'))
    m = doc["metrics"]
    typer.echo(f"macro AUROC: encoder {_ci(m['encoder']['macro_auroc'])}, random init "
               f"{_ci(m['random']['macro_auroc'])}, features {_ci(m['features']['macro_auroc'])}; "
               f"report {out / 'report.md'}")
    for w in doc["guards"]["warnings"]:
        typer.echo(f"warning: {w}", err=True)
