"""Embed a live signal: raw chunks at the device's rate in, one embedding per window out.

>>> emb = StreamEmbedder("runs/ecg-export", channels=["I", "II"], fs=200.0)
>>> for chunk in device:                       # (n_channels, n_samples), mV, any n_samples
...     for r in emb.push(chunk):
...         print(r.start_s, r.embedding.shape)  # (d_model,)
>>> tail = emb.flush()                          # at the end of the recording

The preprocessing is the model's own: the band-pass, notch, window geometry, tail policy and
lead order recorded in the Hub folder's ``config.json`` (``input.preprocessing``, written by
``criss-cross export`` from the training stores' settings; :class:`PrepConfig` defaults, which
are what ``biosig-prep convert`` uses, where a folder has none: ``StreamEmbedder.prep_source``
says which). It runs through :class:`biosig_prep.dsp.stream.StreamingPrep`, which calls the
same biosig-prep functions as ``convert`` on overlapping segments, so a streamed window equals
the stored one (docs/onnx-stream.md gives the measured difference and the ``lookahead_s``
latency it costs). The embedding of a window is ``model.embed(window * input_scale,
pool="all")`` over its valid channels and patches, as ``criss-cross embed --pool all`` and the
probe compute it; with ``backend="onnx"`` / ``"onnx-int8"`` the exported graph computes it
under onnxruntime. With ``head`` (a linear probe: ``.npz`` with ``mean``, ``std``, ``weight``,
``bias``, as :func:`criss_cross.probe.train.fit_linear_probe` returns them) every result also
carries the head's probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biosig_prep.config import PrepConfig
from biosig_prep.dsp.stream import DEFAULT_LOOKAHEAD_S, StreamingPrep

__all__ = ["StreamEmbedder", "StreamResult", "load_head", "prep_config_from_card",
           "choose_rate", "read_chunks", "card_modality", "BACKENDS"]

BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass
class StreamResult:
    """One embedded window: ``start`` (sample at ``rate``), ``start_s`` / ``end_s`` (seconds
    into the stream), ``embedding`` (d_model,), ``prediction`` (head output or None),
    ``window`` (C, P, S) as fed to the encoder (card units), ``channel_mask``, ``patch_mask``,
    ``compute_s`` (preprocessing + encoder time of this window)."""

    start: int
    start_s: float
    end_s: float
    embedding: np.ndarray
    prediction: np.ndarray | None
    window: np.ndarray
    channel_mask: np.ndarray
    patch_mask: np.ndarray
    compute_s: float


def prep_config_from_card(hub_config: dict[str, Any]) -> tuple[PrepConfig, str]:
    """The preprocessing of a Hub folder's ``config.json`` and where it came from."""
    inp = hub_config.get("input") or {}
    recorded = inp.get("preprocessing")
    geometry = {k: inp[k] for k in ("n_patches", "patch_size") if inp.get(k)}
    given: dict[str, Any] = recorded if isinstance(recorded, dict) else {}
    found = bool(given)
    data = {k: v for k, v in given.items() if k in PrepConfig.model_fields}
    data.update(geometry)
    if "dreamer" not in data:  # DREAMER's paired windows are no concern of a stream: keep
        # its window the same length as ours so that the config validates
        n = int(data.get("n_patches", 10)) * int(data.get("patch_size", 200))
        data["dreamer"] = {"window_seconds": n / 200.0, "rate": 200}
    where = "model card (config.json)" if found else "biosig-prep defaults (the card records none)"
    return PrepConfig.model_validate(data), where


def choose_rate(rates: Sequence[int], fs: float) -> int:
    """The model rate to stream at: the highest training rate not above the device's, else
    the lowest."""
    rates = sorted(int(r) for r in rates)
    if not rates:
        raise ValueError("the model card lists no sampling rate (input.rates_hz): pass rate=")
    below = [r for r in rates if r <= fs]
    return below[-1] if below else rates[0]


def load_head(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A linear probe saved as ``.npz`` (``mean``, ``std``, ``weight`` (K, D), ``bias`` (K,))
    as a function embeddings (N, D) -> probabilities (N, K)."""
    with np.load(path) as z:
        missing = [k for k in ("mean", "std", "weight", "bias") if k not in z]
        if missing:
            raise ValueError(f"{path}: a probe head needs arrays mean, std, weight, bias; "
                             f"missing {', '.join(missing)}")
        p = {k: np.asarray(z[k], dtype=np.float64) for k in ("mean", "std", "weight", "bias")}

    def head(x: np.ndarray) -> np.ndarray:
        z = ((x - p["mean"]) / p["std"]) @ p["weight"].T + p["bias"]
        return 1.0 / (1.0 + np.exp(-z))

    return head


def card_modality(weights: str | Path) -> str:
    """The modality the encoder at ``weights`` takes: a Hub folder's ``input.modality``, a
    run's first training stream's (``ecg@500`` -> ecg); ``"ecg"`` where neither says."""
    import json

    cfg = Path(weights) / "config.json"
    if cfg.is_file():
        doc = json.loads(cfg.read_text())
        modality = (doc.get("input") or {}).get("modality")
        if modality:
            return str(modality)
        streams = doc.get("streams") or []
        if streams:
            return str(streams[0]).split("@")[0]
    return "ecg"


def _load_torch(weights: str | Path, max_params: int | None = None):
    from criss_cross.hub import from_pretrained, is_hub_folder

    if is_hub_folder(weights):
        return from_pretrained(weights, max_params=max_params)
    from criss_cross.checkpoint import load_checkpoint
    from criss_cross.embed import resolve_checkpoint

    model = load_checkpoint(resolve_checkpoint(weights), max_params=max_params)
    model.hub_config = {"input": {}}  # type: ignore[assignment]
    return model.eval()


class StreamEmbedder:
    """Raw chunks in, one :class:`StreamResult` per window out (see the module doc).

    Parameters
    ----------
    weights : a Hub folder (``criss-cross export``; with ``model.onnx`` for the onnx backends)
        or a pretraining run / checkpoint directory (torch backend; default preprocessing).
    channels : the device's channel names (ECG leads are placed in the model's lead order by
        name; missing leads are zero-filled and left out of the channel mean).
    fs : the device's sampling rate (Hz).
    rate : the model rate to stream at; default :func:`choose_rate` of the card's rates.
    backend : ``"torch"``, ``"onnx"`` (model.onnx) or ``"onnx-int8"`` (model.int8.onnx).
    lookahead_s : seconds the zero-phase filter sees past a window's end: the latency.
    head : a path of a probe head (:func:`load_head`) or a callable (N, D) -> (N, K).
    source, record_id : for ``notch="auto"`` (mains frequency by source), as in ``convert``.
    threads : intra-op threads of the encoder (torch or onnxruntime); None leaves the default.
    """

    def __init__(self, weights: str | Path, *, channels: Sequence[str], fs: float,
                 rate: int | None = None, backend: str = "torch",
                 lookahead_s: float = DEFAULT_LOOKAHEAD_S,
                 head: str | Path | Callable[[np.ndarray], np.ndarray] | None = None,
                 source: str | None = None, record_id: str | None = None,
                 threads: int | None = None, max_params: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.model = _load_torch(weights, max_params)
        self.hub_config: dict[str, Any] = getattr(self.model, "hub_config", None) or {}
        self.config, self.prep_source = prep_config_from_card(self.hub_config)
        inp = self.hub_config.get("input") or {}
        modality = str(inp.get("modality") or card_modality(weights))
        self.modality = modality
        #: the rates the card declares (None: it declares none, as a run directory)
        self.card_rates = [int(r) for r in inp["rates_hz"]] if inp.get("rates_hz") else None
        self.rate = int(rate) if rate is not None else choose_rate(
            self.card_rates or self.config.rates, fs)
        self.prep = StreamingPrep(channels, fs, self.rate, self.config, modality=modality,
                                  source=source, record_id=record_id, lookahead_s=lookahead_s)
        self.scale = float(self.model.config.input_scale)
        self.backend = backend
        self._onnx = None
        if backend != "torch":
            from criss_cross.onnx_export import INT8_NAME, ONNX_NAME, OnnxEncoder

            name = ONNX_NAME if backend == "onnx" else INT8_NAME
            self._onnx = OnnxEncoder(Path(weights) / name, threads=threads)
        elif threads:
            import torch

            torch.set_num_threads(threads)
        self.head = load_head(head) if isinstance(head, (str, Path)) else head
        self.channels = self.prep.channels

    @property
    def latency_s(self) -> float:
        """Filter lookahead: seconds from a window's last sample until it can be computed."""
        return self.prep.latency_s

    def _embed(self, windows: np.ndarray, cmask: np.ndarray, pmask: np.ndarray) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.embed(windows, pool="all", valid_channels=cmask,
                                    valid_patches=pmask)
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(windows)
            if self.scale != 1.0:
                x = x * self.scale
            return self.model.embed(x, pool="all", valid_channels=torch.from_numpy(cmask),
                                    valid_patches=torch.from_numpy(pmask)).float().numpy()

    def _results(self, wins, t0: float) -> list[StreamResult]:
        if not wins:
            return []
        x = np.stack([w.window for w in wins])
        cm = np.stack([w.channel_mask for w in wins])
        pm = np.stack([w.patch_mask for w in wins])
        emb = self._embed(x, cm, pm)
        pred = self.head(emb) if self.head is not None else None
        spent = (time.perf_counter() - t0) / len(wins)
        n = self.config.n_patches * self.config.patch_size
        return [StreamResult(start=w.start, start_s=w.start / self.rate,
                             end_s=(w.start + n) / self.rate, embedding=emb[i],
                             prediction=None if pred is None else pred[i], window=w.window,
                             channel_mask=w.channel_mask, patch_mask=w.patch_mask,
                             compute_s=spent) for i, w in enumerate(wins)]

    def push(self, chunk: np.ndarray) -> list[StreamResult]:
        """Add raw samples (n_channels, n) in the device's physical units (ECG mV); return the
        windows completed by them (usually none or one)."""
        t0 = time.perf_counter()
        return self._results(self.prep.push(chunk), t0)

    def flush(self) -> list[StreamResult]:
        """End of the stream: the remaining windows (the last one per the tail policy)."""
        t0 = time.perf_counter()
        return self._results(self.prep.flush(), t0)


def read_chunks(path: str | Path, *, chunk_s: float = 1.0, modality: str = "ecg"
                ) -> tuple[Any, Iterator[np.ndarray]]:
    """A WFDB (``.hea``) or EDF file as a device would deliver it: the recording's header
    (a :class:`biosig_prep.recording.Recording` whose ``signals`` are the whole file, read
    by biosig-prep's own readers with their unit and header handling) and an iterator over
    chunks of ``chunk_s`` seconds."""
    from biosig_prep.readers import read_edf, read_wfdb

    p = Path(path)
    if p.suffix.lower() in (".edf", ".bdf"):
        recs = [r for r in read_edf(p, p.stem) if r.modality == modality]
        if not recs:
            raise ValueError(f"{p}: no {modality} signals in the file")
        rec = recs[0]
    elif p.suffix.lower() in (".hea", ".mat", ".dat", ""):
        rec = read_wfdb(p.with_suffix(".hea"), p.stem)
    else:
        raise ValueError(f"{p}: not a WFDB (.hea) or EDF (.edf) file")
    step = max(1, int(round(chunk_s * rec.fs)))

    def chunks() -> Iterator[np.ndarray]:
        for i in range(0, rec.n_times, step):
            yield rec.signals[:, i:i + step]

    return rec, chunks()
