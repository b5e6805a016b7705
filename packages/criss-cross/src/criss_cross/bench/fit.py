"""Inputs of every method (encoder / random-init embeddings, handcrafted features) and their fits.

:func:`embed_units` embeds every window once per model (cached like the probe's,
:func:`criss_cross.probe.data.embed_stream`), computes the features
(:mod:`criss_cross.bench.features`) and averages a record's windows for record-level tasks.
:func:`fit_methods` fits one linear probe per input on the train rows, picks thresholds on
validation, scores test (:func:`criss_cross.bench.evaluate.score_method`), adds the
prevalence and always-positive baselines, the paired differences, the label-efficiency curve
and, with ``finetune_epochs``, a fine-tuned encoder (minimal: fixed epochs on the train windows,
no early stopping; the probability of a record is the mean over its windows).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from criss_cross.bench.evaluate import ChallengeContext, compare, score_method
from criss_cross.bench.features import window_features
from criss_cross.bench.metrics import choose_thresholds, macro_auroc

__all__ = ["METHODS", "embed_units", "fit_methods"]

METHODS = ("encoder", "finetune", "random", "features", "prevalence", "always_positive")


def _to_units(per_window: np.ndarray, units: dict[str, Any], win_record: np.ndarray,
              n_records: int) -> np.ndarray:
    if units["windows"] is not None:
        return per_window[units["windows"]]
    sums = np.zeros((n_records, per_window.shape[1]))
    np.add.at(sums, win_record, per_window)
    counts = np.maximum(np.bincount(win_record, minlength=n_records), 1)
    return (sums / counts[:, None])[units["record"]]


def embed_units(units: dict[str, Any], stream, *, store_url: str, n_records: int,
                models: dict[str, Any], cache_dir: str, batch_size: int,
                device) -> tuple[dict[str, np.ndarray], float]:
    """``{"encoder", "random", "features"}`` -> (rows, D) inputs, and the seconds it took."""
    from criss_cross.probe.data import embed_stream

    t0 = time.perf_counter()
    out: dict[str, np.ndarray] = {}
    win_record = None
    for name, model in models.items():
        emb, _ = embed_stream(model, stream, store_url=store_url, cache_dir=cache_dir,
                              batch_size=batch_size, device=device)
        win_record = emb["record"]
        out[name] = _to_units(emb["embeddings"].astype(np.float64), units, win_record, n_records)
    feats = []
    for lo in range(0, len(stream), 256):
        b = stream.read(lo, lo + 256)
        feats.append(window_features(b["windows"], b["channel_mask"], b["patch_mask"],
                                     list(stream.channels), float(stream.fs)))
    assert win_record is not None
    out["features"] = _to_units(np.concatenate(feats), units, win_record, n_records)
    return out, time.perf_counter() - t0


def _subsample(groups: np.ndarray, train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Train mask keeping a seeded ``fraction`` of the train patients (at least one)."""
    if fraction >= 1.0:
        return train
    pats = np.unique(groups[train])
    rng = np.random.default_rng(seed + 1)
    keep = rng.permutation(pats)[:max(1, round(fraction * len(pats)))]
    return train & np.isin(groups, keep)


def _probe(x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, steps: int, seed: int) -> np.ndarray:
    from scipy.special import expit

    from criss_cross.probe.train import fit_linear_probe

    probe = fit_linear_probe(x[fit_rows].astype(np.float32), y[fit_rows], steps=steps, seed=seed)
    z = ((x - probe["mean"]) / probe["std"]) @ probe["weight"].T.astype(np.float64) + probe["bias"]
    return expit(z)  # no overflow where a feature constant in train varies in test


def fit_methods(x: dict[str, np.ndarray], units: dict[str, Any], parts: np.ndarray,
                groups: np.ndarray, config, task, device, model, stream) -> dict[str, Any]:
    """Every method's probabilities and metrics; see the module doc."""
    y = units["y"]
    train, val, test = parts == "train", parts == "val", parts == "test"
    thr_rows = val if (val.any() and y[val].any()) else train
    thr_from = "validation" if thr_rows is val else "train (no validation patients with positives)"
    probs: dict[str, np.ndarray] = {k: _probe(x[k], y, train, config.probe_steps, config.seed)
                                    for k in ("encoder", "random", "features")}
    if config.finetune_epochs > 0:
        probs["finetune"] = _finetune(config, model, stream, units, train, y, device)
    prior = y[train].mean(axis=0)
    probs["prevalence"] = np.broadcast_to(prior, y.shape).astype(np.float64)
    if y.shape[1] == 1:
        probs["always_positive"] = np.ones(y.shape)
    challenge = None
    if task.challenge:
        codes_test = [c for c, t in zip(units["codes"], test, strict=True) if t]
        challenge = ChallengeContext(units["classes"], codes_test)
    kw = {"n_boot": config.n_boot, "seed": config.seed}
    metrics = {}
    for name in METHODS:
        if name not in probs:
            continue
        p = probs[name]
        th = (np.full(y.shape[1], 0.5) if name in ("prevalence", "always_positive")
              else choose_thresholds(y[thr_rows], p[thr_rows]))
        if name == "prevalence":
            th = np.where(prior >= 0.5, 0.0, 1.0 + 1e-9)  # majority: positive iff prevalent
        metrics[name] = score_method(y[test], p[test], groups[test], th, challenge=challenge, **kw)
    yt, gt = y[test], groups[test]
    paired = {"encoder_minus_random": compare(yt, probs["encoder"][test], probs["random"][test],
                                              gt, **kw),
              "encoder_minus_features": compare(yt, probs["encoder"][test],
                                                probs["features"][test], gt, **kw)}
    curve = []
    for frac in config.label_fractions:
        sub = _subsample(groups, train, frac, config.seed)
        row: dict[str, Any] = {"fraction": frac, "n_train_patients": int(len(np.unique(groups[sub]))),
                               "n_train_rows": int(sub.sum())}
        for name in ("encoder", "random", "features"):
            p = probs[name] if frac >= 1.0 else _probe(x[name], y, sub, config.probe_steps,
                                                        config.seed)
            from criss_cross.bench.metrics import bootstrap

            row[name] = bootstrap(macro_auroc, yt, p[test], gt, **kw)
        curve.append(row)
    return {"metrics": metrics, "paired": paired, "label_efficiency": curve,
            "thresholds_from": thr_from,
            "counts": {"train": int(train.sum()), "val": int(val.sum()), "test": int(test.sum())}}


def _finetune(config, model, stream, units, train, y, device) -> np.ndarray:
    """Fine-tune a copy of the encoder with a linear head; probabilities per unit."""
    import copy

    import torch

    from criss_cross.probe.data import pooled_embeddings
    from criss_cross.probe.train import finetune

    data = stream.read(0, len(stream))
    win_record = np.asarray(data["record"], dtype=np.int64)
    if units["windows"] is not None:
        unit_of_window = np.full(len(win_record), -1)
        unit_of_window[units["windows"]] = np.arange(len(units["windows"]))
    else:
        pos = {int(r): i for i, r in enumerate(units["record"])}
        unit_of_window = np.array([pos.get(int(r), -1) for r in win_record])
    use = unit_of_window >= 0
    tr = np.flatnonzero(use & np.isin(unit_of_window, np.flatnonzero(train)))
    windows = np.asarray(data["windows"], dtype=np.float32)
    cm, pm = np.asarray(data["channel_mask"], bool), np.asarray(data["patch_mask"], bool)
    tuned: Any
    tuned, head, _ = finetune(copy.deepcopy(model), windows[tr], cm[tr], pm[tr],
                              y[unit_of_window[tr]], epochs=config.finetune_epochs,
                              batch_size=min(config.batch_size, 32), seed=config.seed,
                              device=device)
    idx = np.flatnonzero(use)
    probs = np.zeros((len(idx), y.shape[1]))
    scale = float(tuned.config.input_scale)
    with torch.inference_mode():
        for lo in range(0, len(idx), config.batch_size):
            sel = idx[lo:lo + config.batch_size]
            xb = torch.from_numpy(windows[sel]).to(device) * scale
            logits = head(pooled_embeddings(tuned, xb, torch.from_numpy(cm[sel]).to(device),
                                            torch.from_numpy(pm[sel]).to(device)))
            probs[lo:lo + len(sel)] = torch.sigmoid(logits.float()).cpu().numpy()
    out = np.zeros((len(units["record"]), y.shape[1]))
    n = np.zeros(len(units["record"]))
    np.add.at(out, unit_of_window[idx], probs)
    np.add.at(n, unit_of_window[idx], 1)
    return out / np.maximum(n, 1)[:, None]
