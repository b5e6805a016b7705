"""ONNX export of an encoder (fp32, and a dynamically quantised int8 copy), with measured parity.

``add_onnx(folder)`` (``criss-cross export SRC OUT --onnx [--int8]``) writes, beside a Hub
folder's ``config.json`` and ``model.safetensors``::

    model.onnx          fp32 graph, opset :data:`OPSET`; input ``x`` float32 (batch, n_chans,
                        n_patches, patch_size) in the model card's units (ECG mV, EEG uV): the
                        graph multiplies by ``input_scale`` itself; output ``features`` float32
                        (batch, n_chans, n_patches, d_model), the encoder's embeddings with the
                        head off (``model.embed(x * input_scale, pool="none")``). batch, n_chans
                        and n_patches are dynamic axes (checked: parity is measured at several
                        channel and patch counts, not only the traced one).
    model.int8.onnx     with --int8: ``onnxruntime.quantization.quantize_dynamic`` of
                        model.onnx (int8 weights of MatMul/Gemm, activations quantised per
                        call); same input and output.
    onnx.json           opset, axes, versions, the parity figures (largest absolute
                        difference from PyTorch under onnxruntime's CPU provider, per shape)
                        and ``weights_sha256``, the sha256 of the model.safetensors the graphs
                        were made from (:class:`OnnxEncoder` refuses a graph whose weights
                        have since changed).

Export goes through ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript): the
TorchScript exporter has no ONNX form of the patch embedding's ``fft_rfft``. The export needs
the optional extra ``criss-cross[onnx]`` (onnx, onnxruntime, onnxscript); without it
:func:`require_onnx` raises :class:`MissingExtraError` with the one line to run.
Pooling (mean over valid channels / patches) is left to the caller: :class:`OnnxEncoder` does
it in numpy with the same masked mean as :meth:`CrissCrossEncoder.embed`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from criss_cross.encoder import CrissCrossEncoder
from criss_cross.hub import INT8_NAME, ONNX_NAME, WEIGHTS_NAME
from criss_cross.hub import ONNX_META_NAME as META_NAME

__all__ = ["OPSET", "ONNX_NAME", "INT8_NAME", "META_NAME", "MissingExtraError", "OnnxEncoder",
           "require_onnx", "export_onnx", "quantize_int8", "onnx_parity", "add_onnx",
           "hub_folder_from_source", "masked_mean_np", "FP32_TOLERANCE", "weights_sha256",
           "check_onnx_matches_weights"]

OPSET = 18
FP32_TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| accepted for the fp32 graph
_EXTRA = "pip install 'criss-cross[onnx]' (onnx, onnxruntime, onnxscript)"


class MissingExtraError(ImportError):
    """The optional ``criss-cross[onnx]`` dependencies are not installed."""


def require_onnx(*, export: bool = True) -> None:
    """Raise :class:`MissingExtraError` naming the install command unless the extra is there
    (``export=False``: only onnxruntime is needed, to run an exported graph)."""
    names = ("onnx", "onnxruntime", "onnxscript") if export else ("onnxruntime",)
    missing = []
    for name in names:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(f"{', '.join(missing)} not installed: ONNX support needs the "
                                f"optional extra, {_EXTRA}")


class _FeatureGraph(nn.Module):
    """What the ONNX graph computes: input scaling, patch embedding, encoder (no head)."""

    def __init__(self, model: CrissCrossEncoder):
        super().__init__()
        self.model = model
        self.scale = float(model.config.input_scale)

    def forward(self, x: Tensor) -> Tensor:
        if self.scale != 1.0:
            x = x * self.scale
        return self.model.encoder(self.model.patch_embedding(x, None))


def _reference(model: CrissCrossEncoder, x: np.ndarray) -> np.ndarray:
    scale = float(model.config.input_scale)
    with torch.inference_mode():
        return model.embed(torch.from_numpy(x) * scale, pool="none").numpy()


def export_onnx(model: CrissCrossEncoder, path: str | Path, *, n_chans: int = 12,
                n_patches: int = 10, opset: int = OPSET) -> Path:
    """Write ``model`` (eval mode is set) as an fp32 ONNX graph with dynamic batch, channel
    and patch axes, traced at (2, ``n_chans``, ``n_patches``, patch_size). Returns the path."""
    require_onnx()
    from torch.export import Dim

    model = model.eval()
    graph = _FeatureGraph(model).eval()
    x = torch.randn(2, n_chans, n_patches, model.config.patch_size)
    dims = {"x": {0: Dim("batch", min=1, max=65536), 1: Dim("n_chans", min=1, max=1024),
                  2: Dim("n_patches", min=1, max=1024)}}
    path = Path(path)
    from criss_cross.layers import set_fused_attn, use_fused_attn

    # attention() picks a kernel by sequence length on CPU (the same function either way);
    # that branch would pin n_chans and n_patches to <= 32 in the traced graph: trace the
    # unfused path, which has no branch.
    fused = use_fused_attn()
    set_fused_attn(False)
    try:
        program = _export(graph, x, dims, opset)
    finally:
        set_fused_attn(fused)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp-onnx-") as tmp:
        program.save(str(Path(tmp) / path.name))
        os.replace(Path(tmp) / path.name, path)
    return path


def _export(graph: nn.Module, x: Tensor, dims: dict, opset: int):
    with warnings.catch_warnings():  # torch.export's own deprecation notices, not ours
        warnings.simplefilter("ignore")
        program = torch.onnx.export(graph, (x,), dynamo=True, dynamic_shapes=dims,
                                    input_names=["x"], output_names=["features"],
                                    opset_version=opset, optimize=True, verbose=False)
    if program is None:  # pragma: no cover - dynamo=True always returns a program
        raise RuntimeError("torch.onnx.export returned no program")
    return program


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    """A dynamically quantised (int8 weights, per-call activation scales) copy of ``src``."""
    require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    root = logging.getLogger()  # quantize_dynamic logs a pre-processing hint on the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".tmp-int8-") as tmp:
            quantize_dynamic(str(src), str(Path(tmp) / dst.name),
                             weight_type=QuantType.QInt8)
            os.replace(Path(tmp) / dst.name, dst)
    finally:
        root.setLevel(level)
    return dst


def _session(path: str | Path, threads: int | None = None,
             providers: Sequence[str] = ("CPUExecutionProvider",)):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))


def _input_sigma(model: CrissCrossEncoder) -> float:
    """A plausible amplitude for random parity inputs: 1 unit after input scaling
    (1 mV for ECG at scale 1, 100 uV for CBraMod's 0.01)."""
    return 1.0 / float(model.config.input_scale)


def onnx_parity(model: CrissCrossEncoder, onnx_path: str | Path,
                shapes: Sequence[tuple[int, int, int]], *, seed: int = 0,
                inputs: Sequence[np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Largest absolute difference between ``onnx_path`` under onnxruntime (CPU) and
    ``model`` in PyTorch, per (batch, n_chans, n_patches) in ``shapes`` (random normal input of
    a plausible amplitude, seeded), or per array of ``inputs``. Returns one dict per case:
    ``shape``, ``max_abs_diff``, ``max_abs_ref`` (the largest |feature|, for scale)."""
    require_onnx(export=False)
    sess = _session(onnx_path)
    rng = np.random.default_rng(seed)
    size = model.config.patch_size
    cases = list(inputs) if inputs is not None else [
        (rng.standard_normal((b, c, p, size)) * _input_sigma(model)).astype(np.float32)
        for b, c, p in shapes]
    out = []
    for x in cases:
        x = np.ascontiguousarray(x, dtype=np.float32)
        ref = _reference(model, x)
        got = sess.run(None, {"x": x})[0]
        out.append({"shape": list(x.shape), "max_abs_diff": float(np.abs(got - ref).max()),
                    "max_abs_ref": float(np.abs(ref).max())})
    return out


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxscript

    from criss_cross import __version__

    return {"torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "onnxscript": onnxscript.__version__,
            "criss_cross": __version__}


def _check_shapes(n_chans: int, n_patches: int) -> list[tuple[int, int, int]]:
    """Batch 1 and 4 at the traced (channels, patches), then other channel/patch counts."""
    return [(1, n_chans, n_patches), (4, n_chans, n_patches), (2, 2, 3),
            (1, max(1, n_chans // 2), 2 * n_patches)]


def add_onnx(folder: str | Path, *, int8: bool = False, opset: int = OPSET,
             tolerance: float = FP32_TOLERANCE, max_params: int | None = None) -> dict[str, Any]:
    """Add ``model.onnx`` (and with ``int8`` ``model.int8.onnx``) to a Hub folder, measure
    parity with the folder's PyTorch model and write ``onnx.json``. Returns that document.

    Raises ValueError when the fp32 graph differs from PyTorch by more than ``tolerance``
    (the files are then removed); ModelSizeError for an encoder above ``max_params``.
    """
    require_onnx()
    from criss_cross.hub import from_pretrained

    folder = Path(folder)
    model = from_pretrained(folder, max_params=max_params)
    inp = (getattr(model, "hub_config", None) or {}).get("input") or {}
    n_chans = int(inp.get("n_chans") or len(inp.get("channels") or []) or 12)
    n_patches = int(inp.get("n_patches") or 10)
    shapes = _check_shapes(n_chans, n_patches)
    fp32 = export_onnx(model, folder / ONNX_NAME, n_chans=n_chans, n_patches=n_patches,
                       opset=opset)
    parity = onnx_parity(model, fp32, shapes)
    worst = max(p["max_abs_diff"] for p in parity)
    if not worst <= tolerance:
        fp32.unlink(missing_ok=True)
        raise ValueError(f"{folder / ONNX_NAME}: onnxruntime differs from PyTorch by {worst:.3g} "
                         f"(more than {tolerance:g}); the graph was not kept")
    doc: dict[str, Any] = {
        "opset": opset,
        "input": {"name": "x", "shape": ["batch", "n_chans", "n_patches",
                                         model.config.patch_size],
                  "units": inp.get("units"), "scaled_inside": float(model.config.input_scale)},
        "output": {"name": "features",
                   "shape": ["batch", "n_chans", "n_patches", model.config.d_model]},
        "dynamic_axes": ["batch", "n_chans", "n_patches"],
        "traced_shape": [2, n_chans, n_patches, model.config.patch_size],
        "exporter": "torch.onnx.export(dynamo=True)",
        "versions": _versions(),
        "fp32": {"file": ONNX_NAME, "max_abs_diff": worst, "parity": parity},
        "weights_sha256": weights_sha256(folder),
    }
    (folder / INT8_NAME).unlink(missing_ok=True)
    if int8:
        q = quantize_int8(fp32, folder / INT8_NAME)
        qp = onnx_parity(model, q, shapes)
        doc["int8"] = {"file": INT8_NAME, "method": "onnxruntime.quantization.quantize_dynamic "
                       "(QInt8 weights)", "max_abs_diff": max(p["max_abs_diff"] for p in qp),
                       "parity": qp}
    from biosig_prep.util import atomic_write_json

    atomic_write_json(folder / META_NAME, doc, sort_keys=True)
    return doc


def hub_folder_from_source(src: str | Path, out: str | Path, *, name: str | None = None,
                           overwrite: bool = False, seed: int = 0,
                           max_params: int | None = None) -> Path:
    """A Hub folder at ``out`` from ``src``: a pretraining run (:func:`criss_cross.hub.export_run`),
    a Hub folder (copied unless it is ``out`` itself) or a registry name (its architecture,
    randomly initialised with ``seed``: for parity and speed checks, not for embeddings)."""
    from criss_cross.hub import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, export_run, is_hub_folder
    from criss_cross.registry import MODELS, get_model_spec

    src_path, out = Path(src), Path(out)
    if is_hub_folder(src_path):
        if src_path.resolve() == out.resolve():
            return out
        if is_hub_folder(out) and not overwrite:
            raise FileExistsError(f"{out} already holds a model; pass --overwrite")
        out.mkdir(parents=True, exist_ok=True)
        for n in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME):
            if (src_path / n).is_file():
                shutil.copy2(src_path / n, out / n)
        return out
    if src_path.is_dir():
        return export_run(src_path, out, name=name, overwrite=overwrite, max_params=max_params)
    if str(src) in MODELS:
        from criss_cross.hub import save_pretrained
        from criss_cross.registry import create_model

        if is_hub_folder(out) and not overwrite:
            raise FileExistsError(f"{out} already holds a model; pass --overwrite")
        spec = get_model_spec(str(src))
        torch.manual_seed(seed)
        model = create_model(spec.name, proj_out=False, max_params=max_params).eval()
        card = {"title": f"{spec.name} (random initialisation, seed {seed})",
                "description": f"{spec.description}. Random weights: for ONNX parity and "
                "speed checks only.", "paper": spec.paper, "modality": spec.modality}
        return save_pretrained(model, out, name=name or spec.name,
                               input_spec=spec.input_spec(), card=card)
    raise FileNotFoundError(f"{src} is neither a pretraining run, a Hub folder nor a registry "
                            f"name (known names: {', '.join(sorted(MODELS))})")


def weights_sha256(folder: str | Path) -> str:
    """sha256 (hex) of ``folder``'s model.safetensors."""
    digest = hashlib.sha256()
    with open(Path(folder) / WEIGHTS_NAME, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_onnx_matches_weights(graph: str | Path) -> None:
    """Raise ValueError (one line) when ``graph`` sits in a Hub folder whose model.safetensors
    is not the one its onnx.json says the graph was exported from (e.g. the folder was
    re-exported without --onnx). A graph with no onnx.json or no weights beside it passes."""
    graph = Path(graph)
    meta, weights = graph.parent / META_NAME, graph.parent / WEIGHTS_NAME
    if not meta.is_file() or not weights.is_file():
        return
    import json

    recorded = json.loads(meta.read_text()).get("weights_sha256")
    if recorded != weights_sha256(graph.parent):
        why = ("records no weights hash" if recorded is None
               else "was exported from other weights than")
        raise ValueError(f"{graph}: {meta.name} {why} {weights}; the graph may be stale: "
                         f"re-export with `criss-cross export SRC {graph.parent} --overwrite "
                         "--onnx`")


def masked_mean_np(x: np.ndarray, valid: np.ndarray | None, axis: int) -> np.ndarray:
    """Mean of ``x`` over ``axis`` counting only ``valid`` (bool, x.shape[:axis+1]) entries,
    as :func:`criss_cross.pooling.masked_mean` does; all entries when ``valid`` is None."""
    if valid is None:
        return x.mean(axis=axis)
    w = np.asarray(valid, dtype=x.dtype).reshape(valid.shape + (1,) * (x.ndim - valid.ndim))
    return (x * w).sum(axis=axis) / np.maximum(w.sum(axis=axis), 1.0)


class OnnxEncoder:
    """An exported graph under onnxruntime, with :meth:`embed` like the PyTorch encoder's.

    ``path``: a ``model.onnx`` / ``model.int8.onnx`` file or a Hub folder (its model.onnx).
    Input is in the model card's units (the graph applies ``input_scale``).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)):
        require_onnx(export=False)
        p = Path(path)
        self.path = p / ONNX_NAME if p.is_dir() else p
        if not self.path.is_file():
            flags = "--onnx --int8" if self.path.name == INT8_NAME else "--onnx"
            raise FileNotFoundError(f"{self.path} does not exist; write it with "
                                    f"`criss-cross export SRC OUT {flags}`")
        check_onnx_matches_weights(self.path)
        self.session = _session(self.path, threads, providers)

    def features(self, x: np.ndarray) -> np.ndarray:
        """(B, C, P, S) float32 in the card's units -> (B, C, P, d_model)."""
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]

    def embed(self, x: np.ndarray, pool: str = "none", valid_channels: np.ndarray | None = None,
              valid_patches: np.ndarray | None = None) -> np.ndarray:
        """As :meth:`CrissCrossEncoder.embed` ("none", "channels", "all"), in numpy."""
        feats = self.features(x)
        if pool == "none":
            return feats
        pooled = masked_mean_np(feats, valid_channels, axis=1)
        return pooled if pool == "channels" else masked_mean_np(pooled, valid_patches, axis=1)

