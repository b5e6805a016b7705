"""``fusion-emotion``: train the DREAMER fusion benchmark, compare runs.

Each command only parses its options into a :class:`FusionConfig` (options given on the command
line override the ``--config`` file, which overrides the defaults) and calls a plain function
(:func:`fusion_emotion.train.train`, :func:`fusion_emotion.report.compare_runs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from biosig_prep.util import ConfigFileError, read_mapping, validation_lines
from fusion_emotion.config import FusionConfig

app = typer.Typer(
    help="DREAMER emotion recognition with EEG + ECG foundation-model encoders and fusion strategies.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(1)


def _int_list(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        _fail(f"{what} must be comma-separated integers, got {text!r}")
    return None


def _threshold(text: str | None) -> int | None:
    """'3', '>=3', '≥3' -> 3; '>3' -> 4 (ratings are whole numbers)."""
    if text is None:
        return None
    t = text.replace(" ", "").replace("≥", ">=")
    try:
        if t.startswith(">="):
            return int(t[2:])
        if t.startswith(">"):
            return int(t[1:]) + 1
        return int(t)
    except ValueError:
        _fail(f"--threshold must be like 3, '>=3' or '>3', got {text!r}")
    return None


@app.command()
def train(
    store: Annotated[str, typer.Option(help="DREAMER store written by `biosig-prep convert --format dreamer`.")],
    out: Annotated[Path, typer.Option(help="Run folder (created; a finished fold is skipped on rerun).")],
    eeg_weights: Annotated[
        Path | None, typer.Option(help="EEG encoder: official CBraMod .pth, a criss-cross checkpoint or Hub folder.")
    ] = None,
    ecg_weights: Annotated[
        Path | None, typer.Option(help="ECG encoder: a criss-cross checkpoint or Hub folder (or CBraMod .pth).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON file with any FusionConfig field.")] = None,
    modalities: Annotated[str | None, typer.Option(help="eeg,ecg (fusion) | eeg | ecg.")] = None,
    freeze_encoders: Annotated[
        bool | None,
        typer.Option(
            "--freeze-encoders/--finetune",
            help="Frozen encoders with cached embeddings (CPU-friendly) or full fine-tuning (paper).",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per fold (paper: 10).")] = None,
    folds: Annotated[
        str | None, typer.Option(help="Subject folds (default 5), or loso: leave one subject out (23 folds on DREAMER).")
    ] = None,
    level: Annotated[
        str | None, typer.Option(help="Report unit: window | clip (mean of a clip's window probabilities; the paper's) | both (default).")
    ] = None,
    threshold: Annotated[
        str | None, typer.Option(help="High = rating >= 3 (default, torcheeg's: '3' or '>=3') or '>3' (= '>=4').")
    ] = None,
    modality_dropout: Annotated[
        float | None, typer.Option(help="Fusion rows: probability of blanking one modality per training window (default 0).")
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds, e.g. 0,1,2 (default 0).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (paper: 8).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate of the heads (paper: 1e-3).")] = None,
    backbone_lr: Annotated[float | None, typer.Option(help="Learning rate of the encoders (default: --lr).")] = None,
    pool: Annotated[str | None, typer.Option(help="Over patches: flatten (default) | mean.")] = None,
    fusion: Annotated[
        str | None,
        typer.Option(help="concat (paper, default) | late | gated | cross-attention | all; comma-separated for several."),
    ] = None,
    select_by: Annotated[str | None, typer.Option(help="Best epoch by validation loss (default) | auc.")] = None,
    ablations: Annotated[
        bool | None, typer.Option("--ablations/--no-ablations", help="Also train EEG-only and ECG-only.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N | mps.")] = None,
    precision: Annotated[
        str | None, typer.Option(help="Encoders: auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16.")
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="Frozen mode: heads trained side by side (default: CPU count).")] = None,
    max_params: Annotated[
        int | None, typer.Option(help="Ceiling on the parameters of each encoder and of the heads (default 1e9).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip finished folds in OUT.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars on stderr.")] = True,
) -> None:
    """Train the fusion rows, the EEG-only/ECG-only ablations and the baselines; write OUT/report.md."""
    from criss_cross.runtime import resolve_device
    from fusion_emotion.train import train as run_train

    values: dict[str, Any] = {}
    if config is not None:
        try:
            values.update(read_mapping(config))
        except ConfigFileError as exc:
            _fail(str(exc))
    given = {
        "modalities": None if modalities is None else [m.strip() for m in modalities.split(",") if m.strip()],
        "freeze_encoders": freeze_encoders,
        "epochs": epochs,
        "folds": folds,
        "level": level,
        "threshold": _threshold(threshold),
        "modality_dropout": modality_dropout,
        "seeds": _int_list(seeds, "--seeds"),
        "batch_size": batch_size,
        "lr": lr,
        "backbone_lr": backbone_lr,
        "pool": pool,
        "fusion": fusion,
        "select_by": select_by,
        "ablations": ablations,
        "device": device,
        "precision": precision,
        "jobs": jobs,
        "max_params": max_params,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        cfg = FusionConfig.model_validate(values)
    except ValidationError as exc:
        where = f" (from {config} and the options)" if config is not None else ""
        _fail(f"invalid configuration{where}\n" + "\n".join(validation_lines(exc)))
    try:
        resolve_device(cfg.device)
    except ValueError as exc:
        _fail(f"--device: {exc}")
    if out.exists() and not out.is_dir():
        _fail(f"--out {out} is a file, not a folder: give a folder for the run")
    from biosig_prep.store.lock import FolderLock, LockedError

    lock = FolderLock(out, what="fusion-emotion train")  # one writer of the run folder
    try:
        lock.acquire()
    except (LockedError, OSError) as exc:
        _fail(str(exc))
    if lock.note:
        typer.echo(f"note: {lock.note}", err=True)
    try:
        result = run_train(
            cfg, store, out, eeg_weights=eeg_weights, ecg_weights=ecg_weights, resume=resume, progress=progress
        )
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    except OSError as exc:  # a full disk names the file; a damaged shard names stream and shard
        _fail(f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc) or f"{out}: {exc!r}")
    finally:
        lock.release()
    typer.echo(f"report: {result.report_path.resolve()}")


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders of `fusion-emotion train`.")],
    out: Annotated[Path | None, typer.Option(help="Write the comparison to this Markdown file.")] = None,
) -> None:
    """Compare runs side by side in the paper's Table 1 layout (printed, or written to --out)."""
    from fusion_emotion.report import compare_runs

    try:
        text = compare_runs(runs)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if out is None:
        typer.echo(text)
    else:
        if out.is_dir():
            _fail(f"--out {out} is a folder: give a Markdown file name")
        from biosig_prep.util import atomic_write_text

        try:
            atomic_write_text(out, text, durable=False)
        except OSError as exc:
            _fail(str(exc))
        typer.echo(f"comparison: {out.resolve()}")


if __name__ == "__main__":  # pragma: no cover
    app()
