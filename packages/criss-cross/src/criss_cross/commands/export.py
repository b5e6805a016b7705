"""``criss-cross export``: parse the options, then :func:`criss_cross.hub.export_run` (and
with ``--onnx`` :func:`criss_cross.onnx_export.add_onnx`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from criss_cross.commands._common import fail

__all__ = ["export"]


def export(
    run_dir: Annotated[Path, typer.Argument(
        help="A pretraining run directory (with --onnx also a Hub folder or a registry name).")],
    out_dir: Annotated[Path, typer.Argument(help="Hub-format folder to write.")],
    name: Annotated[str | None, typer.Option(help="Model name in config.json and the card.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a model already in OUT_DIR.")] = False,
    onnx: Annotated[bool, typer.Option(
        "--onnx", help="Also write model.onnx (fp32, opset 18, dynamic batch/channels/patches) "
        "and its parity with PyTorch (onnx.json); needs criss-cross[onnx].")] = False,
    int8: Annotated[bool, typer.Option(
        "--int8", help="With --onnx: also a dynamically quantised model.int8.onnx.")] = False,
    max_params: Annotated[int | None, typer.Option(
        help="Ceiling on the encoder's parameters, checked before it is built [1e9].")] = None,
) -> None:
    """Write a run's newest checkpoint as config.json + model.safetensors + README.md."""
    from criss_cross.hub import export_run

    if int8 and not onnx:
        fail("--int8 quantises the ONNX graph: pass --onnx too")
    try:
        if onnx:
            from criss_cross.onnx_export import add_onnx, hub_folder_from_source, require_onnx

            require_onnx()
            out = hub_folder_from_source(str(run_dir), out_dir, name=name, overwrite=overwrite,
                                         max_params=max_params)
            doc = add_onnx(out, int8=int8, max_params=max_params)
        else:
            out = export_run(run_dir, out_dir, name=name, overwrite=overwrite,
                             max_params=max_params)
    except ImportError as err:  # the optional extra is missing
        fail(str(err))
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as err:
        fail(str(err).strip('"'))
    typer.echo(f"exported to {out} (load with criss_cross.from_pretrained({str(out)!r}))")
    if onnx:
        line = f"model.onnx: opset {doc['opset']}, parity {doc['fp32']['max_abs_diff']:.2g}"
        if int8:
            line += f"; model.int8.onnx: parity {doc['int8']['max_abs_diff']:.2g}"
        typer.echo(f"{line} (largest |onnxruntime - PyTorch|, {out / 'onnx.json'})")
