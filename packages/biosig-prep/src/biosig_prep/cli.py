"""The ``biosig-prep`` command line: ``convert``, ``inspect``, ``verify`` and ``synth``.

Each command only parses its options and calls a plain function (:func:`biosig_prep.convert`,
:func:`biosig_prep.summary.describe_store`, the synth generators) that tests and notebooks use
directly.

Exit codes of ``convert``: 0 every record converted; 1 an error (bad option value or config,
nothing to convert, a destination that holds something else) or no record converted at all;
2 a command-line usage error (unknown option, missing argument: click's code); 3 the store was
written but some records were skipped or some inputs gave no record (listed, with reasons).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

__all__ = ["app", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_PARTIAL"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
_LISTED = 20  # skipped records listed one by one; the rest by reason

app = typer.Typer(
    name="biosig-prep",
    help="Raw WFDB/MAT/EDF/DREAMER recordings to validated, windowed Zarr stores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Format(str, Enum):
    auto = "auto"
    wfdb = "wfdb"
    edf = "edf"
    dreamer = "dreamer"
    ptbxl = "ptbxl"


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


def _validation_lines(err: ValidationError) -> list[str]:
    return [f"{'.'.join(str(x) for x in e['loc']) or 'config'}: {e['msg']}"
            for e in err.errors()]


def build_config(config_file: Path | None, rates: str | None, notch: str | None):
    """The PrepConfig of a run: the file's settings (if any), then the options given."""
    from biosig_prep.config import PrepConfig

    data: dict[str, Any] = {}
    if config_file is not None:
        data = PrepConfig.from_file(config_file).model_dump(mode="json")
    if rates is not None:
        data["rates"] = rates
    if notch is not None:
        for path in (("ecg",), ("eeg",), ("dreamer", "ecg"), ("dreamer", "eeg")):
            node = data
            for key in path:
                node = node.setdefault(key, {})
            node["notch"] = notch
    return PrepConfig.model_validate(data)


_CONVERT_EPILOG = (
    "Exit codes: 0 every record converted; 1 error or no record converted; 2 usage error; "
    "3 store written but some records were skipped (each listed with the reason, and kept in "
    "the store's records/ table). Killed or interrupted, the same command resumes the run.")


@app.command(epilog=_CONVERT_EPILOG)
def convert(
    paths: Annotated[list[str], typer.Argument(
        metavar="SRC... DST",
        help="Source files or folders (walked recursively), then the destination store: a "
             "local path or an fsspec URL (s3://bucket/x.zarr, memory://x, ...).")],
    fmt: Annotated[Format, typer.Option(
        "--format", help="Input format; auto picks it by file suffix.")] = Format.auto,
    rates: Annotated[str | None, typer.Option(
        help="Comma-separated output rates in Hz (config default: 100,200,500,1000).")] = None,
    notch: Annotated[str | None, typer.Option(
        help="Notch filter: auto (50/60 Hz from the record's source), 50, 60 or off "
             "(config default: auto).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Local worker processes (dask); 0 runs everything in this process (default: "
             "one worker per CPU core, as threads of this process on small machines and for "
             "small jobs).", min=0)] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of a dask.distributed scheduler to run on instead of local workers "
             "(its workers must see SRC and DST).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML or JSON file of preprocessing settings; options given on the "
                         "command line override it.")] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Source files per task (default: 32).", min=1)] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace a store already at DST (made from other sources or "
                            "settings).")] = False,
    no_progress: Annotated[bool, typer.Option(
        "--no-progress", help="Do not show the progress bar.")] = False,
) -> None:
    """Convert recordings into a store (resumable: rerun the same command after a kill)."""
    from biosig_prep import convert as run_convert
    from biosig_prep.convert import DEFAULT_BATCH_SIZE
    from biosig_prep.store import StoreError
    from biosig_prep.store.lock import LockedError

    if len(paths) < 2:
        raise typer.BadParameter("give at least one SRC and the DST store", param_hint="SRC... DST")
    if workers is not None and scheduler is not None:
        raise typer.BadParameter("--workers and --scheduler are mutually exclusive",
                                 param_hint="--workers / --scheduler")
    *sources, dst = paths
    try:
        cfg = build_config(config, rates, notch)
    except ValidationError as err:
        for line in _validation_lines(err):
            _echo_err(f"error: {line}")
        raise typer.Exit(EXIT_ERROR) from None
    except (OSError, ValueError) as err:
        _echo_err(f"error: {err}")
        raise typer.Exit(EXIT_ERROR) from None
    try:
        summary = run_convert(sources, dst, cfg, fmt=fmt.value, workers=workers,
                              scheduler=scheduler, progress=not no_progress,
                              overwrite=overwrite,
                              batch_size=batch_size or DEFAULT_BATCH_SIZE)
    except (OSError, ValueError, StoreError, LockedError) as err:  # incl. an unreachable --scheduler
        _echo_err(f"error: {err}")
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        _echo_err(f"interrupted: {dst} is incomplete; rerun the same command to resume")
        raise typer.Exit(130) from None
    raise typer.Exit(_report(summary))


def _report(summary) -> int:
    """Print what a conversion did; return the exit code."""
    s = summary
    if getattr(s, "lock_note", ""):
        _echo_err(f"note: {s.lock_note}")
    if s.already_complete:
        typer.echo(f"{s.url} is already complete (same sources and settings): nothing to do")
    else:
        resumed = (f"; resumed: {s.batches_resumed} of {s.batches} batches were already done"
                   if s.batches_resumed else "")
        typer.echo(f"converted {s.records_ok} of {s.records_in} records into {s.url} in "
                   f"{s.seconds:.1f} s ({s.records_skipped} skipped{resumed})")
    for name, n in s.windows.items():
        typer.echo(f"  {name:<10} {n:>9} windows")
    for problem in s.problems:
        _echo_err(f"no records from input: {problem}")
    if s.skipped:
        _echo_err(f"skipped {s.records_skipped} record(s):")
        for rec in s.skipped[:_LISTED]:
            _echo_err(f"  {rec.path} ({rec.id}): {rec.status}")
        if s.records_skipped > _LISTED:
            _echo_err(f"  ... and {s.records_skipped - _LISTED} more; by reason:")
            for reason, count in sorted(s.skipped_reasons.items(), key=lambda kv: -kv[1])[:10]:
                _echo_err(f"    {count:>6}  {reason}")
            _echo_err(f"  (all of them: `biosig-prep inspect {s.url}`)")
    elif s.records_skipped:
        _echo_err(f"skipped {s.records_skipped} record(s) (`biosig-prep inspect {s.url}`):")
        for reason, count in s.skipped_reasons.items():
            _echo_err(f"    {count:>6}  {reason}")
    if s.records_ok == 0:
        _echo_err("error: no record was converted")
        return EXIT_ERROR
    if s.records_skipped or s.problems:
        return EXIT_PARTIAL
    return EXIT_OK


@app.command()
def inspect(
    store: Annotated[str, typer.Argument(help="The store: a local path or an fsspec URL.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for programs.")] = False,
    check: Annotated[bool, typer.Option(
        "--verify", help="Also check every shard and chunk against the store's record of what "
                         "was written (see `biosig-prep verify`).")] = False,
) -> None:
    """Summarize a store (records ok/skipped with reasons, windows per stream, padded patches,
    rates, leads, config); exit code 1 if STORE is not a biosig-prep store (or, with --verify,
    if an object is missing or damaged)."""
    from biosig_prep.store import StoreError
    from biosig_prep.summary import describe_store, render_text

    try:
        desc = describe_store(store)
    except StoreError as err:
        _echo_err(f"error: {err}")
        raise typer.Exit(EXIT_ERROR) from None
    typer.echo(json.dumps(desc, indent=2) if as_json else render_text(desc))
    if check:
        raise typer.Exit(_verify(store))


def _verify(store: str) -> int:
    from biosig_prep.store import StoreError, verify_store

    try:
        report = verify_store(store, allow_incomplete=True)
    except StoreError as err:
        _echo_err(f"error: {err}")
        return EXIT_ERROR
    for line in report["problems"]:
        _echo_err(f"damaged: {line}")
    if report["problems"]:
        _echo_err(f"{store}: {len(report['problems'])} of {report['checked']} objects are missing "
                  "or damaged; re-run `biosig-prep convert` with --overwrite to rewrite the store")
        return EXIT_ERROR
    typer.echo(f"{store}: all {report['checked']} objects intact "
               f"({report['bytes'] / 1e6:.1f} MB checked)")
    return EXIT_OK


@app.command()
def verify(
    store: Annotated[str, typer.Argument(help="The store: a local path or an fsspec URL.")],
) -> None:
    """Check every shard and chunk of STORE against the store's own record of what was written
    (size and CRC32C of each object); name what is missing or damaged (exit code 1)."""
    raise typer.Exit(_verify(store))


try:  # `biosig-prep synth ...` (the generators live in biosig_prep.synth)
    from biosig_prep.synth.cli import synth_app
except ImportError:  # pragma: no cover - a build without the generators
    synth_app = None
if synth_app is not None:
    app.add_typer(synth_app, name="synth")


def main() -> None:  # pragma: no cover - `python -m biosig_prep.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
