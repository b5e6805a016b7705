"""``criss-cross stream``: feed a WFDB/EDF file chunk by chunk to :class:`criss_cross.stream.StreamEmbedder`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biosig_prep.dsp.stream import DEFAULT_LOOKAHEAD_S
from criss_cross.commands._common import fail

__all__ = ["stream"]


def stream(
    file: Annotated[Path, typer.Argument(help="A WFDB header (.hea) or an EDF file.")],
    weights: Annotated[Path, typer.Option(
        "--weights", "-w", help="Hub folder (criss-cross export) or run directory.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write start, embeddings (and predictions) to this .npz.")] = None,
    backend: Annotated[str, typer.Option(help="torch, onnx or onnx-int8.")] = "torch",
    rate: Annotated[int | None, typer.Option(
        help="Model rate (Hz); default: the highest of the card's rates not above the file's.")] = None,
    chunk_s: Annotated[float, typer.Option(
        "--chunk-s", help="Seconds per chunk delivered (as a device would).")] = 1.0,
    lookahead_s: Annotated[float, typer.Option(
        "--lookahead-s",
        help="Filter lookahead (s) past a window's end: the latency.")] = DEFAULT_LOOKAHEAD_S,
    head: Annotated[Path | None, typer.Option(
        help="Probe head .npz (mean, std, weight, bias): adds one prediction per window.")] = None,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch",
        help="Stream at a --rate the model card does not list (a warning, not an error).")] = False,
) -> None:
    """Embed a recording window by window as it would arrive from a device (one line each)."""
    import numpy as np

    from biosig_prep.errors import ReadError
    from criss_cross.stream import StreamEmbedder, card_modality, read_chunks

    try:
        # the file's signals of the modality the encoder takes (an EDF holds EEG and ECG)
        rec, chunks = read_chunks(file, chunk_s=chunk_s, modality=card_modality(weights))
        emb = StreamEmbedder(weights, channels=rec.channels, fs=rec.fs, rate=rate,
                             backend=backend, lookahead_s=lookahead_s, head=head,
                             source=rec.source, record_id=rec.record_id)
    except ImportError as err:
        fail(str(err))
    except (ValueError, KeyError, OSError, ReadError) as err:
        fail(str(err).strip('"'))
    if emb.card_rates and emb.rate not in emb.card_rates:
        msg = (f"--rate {emb.rate} Hz: the model card ({weights}/config.json) lists rates_hz "
               f"{'/'.join(map(str, emb.card_rates))}; the encoder was not trained at {emb.rate} Hz")
        if not allow_mismatch:
            fail(f"{msg}; pass one of those rates (or leave --rate out), or --allow-mismatch")
        typer.echo(f"warning: {msg} (--allow-mismatch)", err=True)
    typer.echo(f"{file}: {len(rec.channels)} channels at {rec.fs:g} Hz -> {emb.rate} Hz windows; "
               f"preprocessing from {emb.prep_source}; latency {emb.latency_s:g} s + compute",
               err=True)
    results = []
    for chunk in chunks:
        results += emb.push(chunk)
    results += emb.flush()
    for r in results:
        pred = "" if r.prediction is None else " p=" + ",".join(f"{v:.3f}" for v in r.prediction)
        typer.echo(f"{r.start_s:9.2f}-{r.end_s:9.2f} s  |e|={np.linalg.norm(r.embedding):.4f}  "
                   f"compute {r.compute_s * 1e3:.1f} ms{pred}")
    if out is not None:
        doc = {"start": np.array([r.start for r in results], dtype=np.int64),
               "embeddings": np.stack([r.embedding for r in results]) if results else
               np.zeros((0, 0), np.float32), "rate": np.array(emb.rate)}
        if results and results[0].prediction is not None:
            doc["predictions"] = np.stack([r.prediction for r in results])
        np.savez(out, **doc)
        typer.echo(f"{len(results)} windows written to {out}", err=True)
