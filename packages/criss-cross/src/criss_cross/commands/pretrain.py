"""``criss-cross pretrain``: parse the options, then :func:`criss_cross.pretrain.pretrain`.

Options are mapped onto :class:`criss_cross.config.PretrainConfig` in this order, later wins:
the ``--small`` preset, the ``--config`` file, the options given. A configuration error is
printed as ``field: message``; any other problem (a config file that is not YAML, a damaged
checkpoint, a full disk, ``--out`` naming a file) as one line; both exit with status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from criss_cross.commands._common import build_config, fail, fail_validation, note

__all__ = ["pretrain"]


def pretrain(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (created).")],
    store: Annotated[list[str] | None, typer.Option(
        "--store", "-s", help="A biosig-prep store (path or fsspec URL); repeat for several.")] = None,
    stream: Annotated[list[str] | None, typer.Option(
        "--stream", help="A stream, e.g. ecg@500; repeat to mix several (default ecg@500).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="PretrainConfig as YAML or JSON.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out from its newest checkpoint.")] = False,
    small: Annotated[bool, typer.Option(
        "--small", help="CPU demo preset: 2 layers (d_model 200, 8 heads kept), batch 32, "
        "300 steps, warm-up 20, checkpoint every 100.")] = False,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (wins over --epochs).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over all windows [10].")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", help="Global batch over all processes [128].")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate [5e-4].")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="AdamW weight decay [0.05].")] = None,
    warmup_steps: Annotated[int | None, typer.Option(help="Warm-up steps [5% of steps].")] = None,
    mask_ratio: Annotated[float | None, typer.Option(help="Patch mask ratio r [0.5].")] = None,
    channel_mask_proportion: Annotated[float | None, typer.Option(
        help="Proportion r_c of whole channels masked [0.25].")] = None,
    n_layers: Annotated[int | None, typer.Option(help="Encoder layers [12].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of data order, masks, init [0].")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Steps between checkpoints [1000].")] = None,
    log_every: Annotated[int | None, typer.Option(help="Steps between metrics lines [10].")] = None,
    num_workers: Annotated[int | None, typer.Option(
        help="Loader readers per rank, reading ahead of the step [2].")] = None,
    loader_workers: Annotated[str | None, typer.Option(
        help="Readers as 'thread' (in the trainer) or 'process' (DataLoader workers); default thread.")] = None,
    head_init: Annotated[str | None, typer.Option(
        help="Init of the reconstruction head of a fresh run: 'zero' (starts at the zero "
        "predictor's loss) or 'cbramod' (kaiming, as CBraMod); default zero.")] = None,
    threads: Annotated[int | None, typer.Option(
        help="torch CPU threads (default: torch's choice).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (default: auto).")] = None,
    max_params: Annotated[int | None, typer.Option(
        help="Ceiling on the encoder's parameters; larger configs are refused before "
        "building [1e9].")] = None,
    max_memory_gb: Annotated[float | None, typer.Option(
        help="Ceiling on the estimated memory of a training step (weights, AdamW state, "
        "activations of a batch) [64].")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Pretrain the criss-cross encoder with dual masking (DDP under torchrun)."""
    from criss_cross.pretrain import pretrain as run_pretrain

    options: dict[str, Any] = {
        "stores": store or None,
        "streams": stream or None,
        "steps": steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup_steps": warmup_steps,
        "mask_ratio": mask_ratio,
        "channel_mask_proportion": channel_mask_proportion,
        "seed": seed,
        "checkpoint_every": checkpoint_every,
        "log_every": log_every,
        "num_workers": num_workers,
        "loader_workers": loader_workers,
        "threads": threads,
        "head_init": head_init,
        "device": device,
        "max_params": max_params,
        "max_memory_gb": max_memory_gb,
        "encoder": {"n_layers": n_layers} if n_layers is not None else None,
    }
    if resume and config is None and not store and (out / "config.json").is_file():
        config = out / "config.json"  # resume with the run's own configuration
    try:
        cfg = build_config(options, config_file=config, small=small)
    except ValidationError as err:
        fail_validation(err)
    except (OSError, ValueError) as err:
        fail(str(err))
    try:
        summary = run_pretrain(cfg, out, resume=resume, progress=progress, report=note)
    except (ValueError, KeyError, OSError, FloatingPointError) as err:
        fail(str(err).strip('"'))
    typer.echo(
        f"done: {summary.total_steps} steps, final loss {summary.final_loss:.4f}, "
        f"{summary.samples_per_s:.1f} samples/s, data wait {100 * summary.data_wait_fraction:.1f} %"
        f"; checkpoint {summary.checkpoint}"
    )


