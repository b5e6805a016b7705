"""``biosig-prep synth``: write synthetic data in the real formats (commands only parse)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["synth_app"]

synth_app = typer.Typer(
    name="synth",
    help="Write synthetic data in exactly the real file formats (Challenge 2021 WFDB/MAT, "
         "DREAMER.mat, PTB-XL).",
    no_args_is_help=True,
    add_completion=False,
)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


@synth_app.command("challenge")
def challenge(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the .hea/.mat records into.")],
    n_records: Annotated[int, typer.Option("--n-records", "-n", help="Number of records.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sources: Annotated[str | None, typer.Option(
        help="Comma-separated source prefixes: A,Q,I,S,HR,E,JS (default: all).")] = None,
    durations: Annotated[str | None, typer.Option(
        help="Comma-separated durations in seconds, cycled over the records "
             "(default: each source's realistic durations).")] = None,
    quirks: Annotated[bool, typer.Option(
        "--quirks/--no-quirks", help="Put the real-world header quirks on a few records.")] = True,
    broken: Annotated[int, typer.Option(help="Number of broken records (0 = clean corpus).")] = 5,
    long_seconds: Annotated[float, typer.Option(
        help="Duration of INCART (I) records when --durations is not given.")] = 1800.0,
    signal_format: Annotated[str, typer.Option(
        help="mat (Challenge MATLAB v4) or classic WFDB 16 / 212 (.dat).")] = "mat",
) -> None:
    """A Challenge-2021-style ECG corpus (+ manifest.json)."""
    from biosig_prep.synth.challenge import write_challenge_corpus

    try:
        dur = None if durations is None else [float(x) for x in _split(durations) or []]
        t0 = time.perf_counter()
        paths = write_challenge_corpus(out_dir, n_records=n_records, seed=seed,
                                       sources=_split(sources), durations=dur, quirks=quirks,
                                       broken=broken, long_seconds=long_seconds,
                                       signal_format=signal_format)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in Path(out_dir).iterdir() if p.is_file())
    typer.echo(f"wrote {len(paths)} records ({size / 1e6:.1f} MB) to {out_dir} in {dt:.1f} s; "
               f"manifest: {Path(out_dir) / 'manifest.json'}")


@synth_app.command("dreamer")
def dreamer(
    out_path: Annotated[Path, typer.Argument(help="The .mat file to write.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects (23 in DREAMER).")] = 23,
    clips: Annotated[int, typer.Option(help="Number of film clips (18 in DREAMER).")] = 18,
    clip_seconds: Annotated[float | None, typer.Option(
        help="Seconds per clip (default: the real-like 65-393 s durations).")] = None,
    baseline_seconds: Annotated[float, typer.Option(
        help="Seconds of the neutral baseline clip (61 in DREAMER).")] = 61.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    effects: Annotated[str, typer.Option(
        help="'planted' (valence<-EEG alpha, arousal<-heart rate, dominance<-both) or 'none'.")
    ] = "planted",
    strength: Annotated[float, typer.Option(help="Effect strength in [0, 1].")] = 1.0,
    dominance_rule: Annotated[str, typer.Option(help="and | xor | or")] = "and",
    clip_effect: Annotated[float, typer.Option(
        help="Probability in [0, 1] that a trial's states are its clip's (clip-identity leak).")
    ] = 0.0,
    truth: Annotated[Path | None, typer.Option(
        help="Also write the ground truth (latent states, scores) as JSON here.")] = None,
) -> None:
    """A DREAMER.mat-format file with planted effects."""
    from pydantic import ValidationError

    from biosig_prep.synth.dreamer import DreamerEffects, write_dreamer_mat

    if effects not in ("planted", "none"):
        typer.echo(f"error: --effects must be 'planted' or 'none', got {effects!r}", err=True)
        raise typer.Exit(2)
    try:
        eff = None if effects == "none" else DreamerEffects(
            strength=strength, dominance_rule=dominance_rule, clip_effect=clip_effect)
        t0 = time.perf_counter()
        result = write_dreamer_mat(out_path, n_subjects=subjects, n_clips=clips,
                                   clip_seconds=clip_seconds, baseline_seconds=baseline_seconds,
                                   seed=seed, effects=eff)
    except ValidationError as err:
        for e in err.errors():
            typer.echo(f"error: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}", err=True)
        raise typer.Exit(2) from err
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    dt = time.perf_counter() - t0
    if truth is not None:
        truth.write_text(result.to_json())
    typer.echo(f"wrote {out_path} ({result.bytes_written / 1e6:.1f} MB, {subjects} subjects x "
               f"{clips} clips, effects={effects}) in {dt:.1f} s")


@synth_app.command("ptbxl")
def ptbxl(
    out_dir: Annotated[Path, typer.Argument(help="The PTB-XL folder to write.")],
    n_records: Annotated[int, typer.Option("--n-records", "-n", help="Number of records.")] = 12,
    patients: Annotated[int | None, typer.Option(
        help="Number of patients (default: half the records).")] = None,
    first_ecg_id: Annotated[int, typer.Option(
        help="ecg_id of the first record (the others follow).")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """A small PTB-XL stand-in in the published layout (both CSVs, records500/, records100/)."""
    from biosig_prep.synth.ptbxl import write_ptbxl

    try:
        t0 = time.perf_counter()
        ids = write_ptbxl(out_dir, n_records, n_patients=patients, seed=seed,
                          ecg_ids=range(first_ecg_id, first_ecg_id + n_records))
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"wrote {len(ids)} PTB-XL records (ecg_id {ids[0]}-{ids[-1]}) to {out_dir} in "
               f"{time.perf_counter() - t0:.1f} s")
