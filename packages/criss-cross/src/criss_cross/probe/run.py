"""``run_probe(config, out)``: how good is an encoder on a labelled store? (``criss-cross probe``)

Steps: open the store; read each record's label codes (metadata ``dx`` by default) and split
group; embed every window of the stream once (cached, see :mod:`criss_cross.probe.data`),
average a record's windows; keep the classes with at least ``min_count`` positives (one of
them in train); fit a multi-label linear probe on the train records and, with
``finetune_epochs > 0``, fine-tune the encoder with a linear head; score the test records.

The run folder, in fusion-emotion's layout::

    metrics.json     configuration, data counts, per-method metrics (macro AUROC, macro F1,
                     Challenge 2021 score) and per-class AUROC / F1 / support
    report.md        one table: linear probe, fine-tuned (if run), train-prevalence baseline
    auroc_per_class.png, probe_loss.png (+ finetune_loss.png)
    cache/           embeddings-<key>.npz (key: weights, store, stream, precision)
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from criss_cross.probe.challenge import merge_challenge_codes
from criss_cross.probe.data import embed_stream, model_digest, record_table
from criss_cross.probe.report import METHOD_LABELS, write_report
from criss_cross.probe.train import (
    evaluate,
    finetune,
    fit_linear_probe,
    group_split,
    predict_linear,
)

__all__ = ["ProbeConfig", "load_encoder", "run_probe", "METHOD_LABELS"]

SCHEMA = 1


class ProbeConfig(BaseModel):
    """Settings of :func:`run_probe` (every ``criss-cross probe`` option maps onto one)."""

    model_config = ConfigDict(extra="forbid")

    store: str
    stream: str = "ecg@500"
    labels: str = "dx"
    weights: str | None = None
    model: str = "ecg-base"
    encoder: dict[str, Any] = Field(default_factory=dict)
    split_by: str = "record"
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    min_count: int = Field(2, ge=1)
    probe_steps: int = Field(300, ge=1)
    probe_lr: float = Field(0.05, gt=0.0)
    weight_decay: float = Field(1e-3, ge=0.0)
    finetune_epochs: int = Field(0, ge=0)
    finetune_lr: float = Field(1e-4, gt=0.0)
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    seed: int = 0
    batch_size: int = Field(64, ge=1)
    device: str = "auto"
    bf16: bool = False
    cache_dir: str | None = None
    max_params: int | None = Field(None, ge=1)
    allow_overlap: bool = False
    allow_mismatch: bool = False


def load_encoder(config: ProbeConfig) -> tuple[torch.nn.Module, str]:
    """The encoder ``config`` names and a description of its weights.

    weights None: ``create_model(model, **encoder)`` with seed ``seed`` (random init). A Hub
    folder or repo id: :func:`criss_cross.from_pretrained`. A run or checkpoint directory: its
    newest checkpoint. A file: ``create_model(model, pretrained=file, **encoder)`` (strict).
    """
    from criss_cross.hub import from_pretrained, is_hub_folder
    from criss_cross.registry import create_model

    limit = config.max_params
    if config.weights is None:
        torch.manual_seed(config.seed)
        return (create_model(config.model, max_params=limit, **config.encoder),
                f"random init ({config.model})")
    path = Path(config.weights)
    if is_hub_folder(path) or (not path.exists() and not path.suffix and not path.is_absolute()):
        return from_pretrained(config.weights, max_params=limit), f"Hub model {config.weights}"
    if path.is_dir():
        from criss_cross.checkpoint import load_checkpoint
        from criss_cross.embed import resolve_checkpoint

        stem = resolve_checkpoint(path)
        return load_checkpoint(stem, max_params=limit), f"checkpoint {stem}"
    return (create_model(config.model, pretrained=path, max_params=limit, **config.encoder),
            f"weights {path}")


def _record_level(emb: np.ndarray, rows: np.ndarray, n_records: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean embedding per record row and whether the record has any window."""
    sums = np.zeros((n_records, emb.shape[1]), dtype=np.float64)
    np.add.at(sums, rows, emb)
    counts = np.bincount(rows, minlength=n_records)
    has = counts > 0
    sums[has] /= counts[has, None]
    return sums.astype(np.float32), has


def run_probe(config: ProbeConfig, out: str | Path) -> dict[str, Any]:
    """Run the probe described by ``config`` and write its report into ``out``; returns the
    metrics document (also ``out/metrics.json``).

    One run at a time per ``out`` (``out/writer.lock``, :func:`criss_cross.run_lock.one_writer`):
    a second one into the same folder is refused with a ``ValueError`` naming the holder.
    """
    from criss_cross.run_lock import one_writer

    with one_writer(out, "probe run"):
        return _run_probe(config, Path(out))


def _run_probe(config: ProbeConfig, out: Path) -> dict[str, Any]:
    from biosig_prep import open_store
    from criss_cross.runtime import resolve_device

    t0 = time.perf_counter()
    device = resolve_device(config.device)
    store = open_store(config.store)
    stream = store.stream(config.stream)
    table = record_table(store, config.labels, config.split_by)
    if config.labels == "dx":  # the Challenge's equivalent codes are one class, in training too
        table.codes = [merge_challenge_codes(c) for c in table.codes]
    model, weights_desc = load_encoder(config)
    digest = model_digest(model)[:16]  # of the weights probed (fine-tuning changes them)
    if model.config.patch_size != stream.window_shape[-1]:
        raise ValueError(f"the encoder's patch_size ({model.config.patch_size}) differs from "
                         f"{config.stream}'s patches of {stream.window_shape[-1]} samples")
    warnings = _guards(config, store, stream, model, table)
    cache = config.cache_dir or str(out / "cache")
    emb, cached = embed_stream(model, stream, store_url=config.store, cache_dir=cache,
                               batch_size=config.batch_size, device=device, bf16=config.bf16)
    t_embed = time.perf_counter() - t0
    x_rec, has = _record_level(emb["embeddings"], emb["record"], len(table.ids))
    use = has & table.ok
    rows = np.flatnonzero(use)
    train, test = group_split(table.groups[rows], config.test_fraction, config.seed)
    codes = [table.codes[r] for r in rows]
    counts: dict[str, int] = {}
    train_counts: dict[str, int] = {}
    for i, cs in enumerate(codes):
        for c in set(cs):
            counts[c] = counts.get(c, 0) + 1
            train_counts[c] = train_counts.get(c, 0) + int(train[i])
    classes = sorted(c for c, n in counts.items() if n >= config.min_count and train_counts[c] > 0)
    if not classes:
        raise ValueError(f"no label in {config.labels!r} has {config.min_count} positive "
                         f"records ({len(rows)} records with windows); lower min_count")
    y = np.array([[c in set(cs) for c in classes] for cs in codes], dtype=bool)
    x = x_rec[rows]
    codes_test = [codes[i] for i in np.flatnonzero(test)]

    probe = fit_linear_probe(x[train], y[train], steps=config.probe_steps, lr=config.probe_lr,
                             weight_decay=config.weight_decay, seed=config.seed)
    results = {"linear": evaluate(y[test], predict_linear(probe, x[test]), classes, codes_test,
                                  config.threshold)}
    prevalence = np.broadcast_to(y[train].mean(axis=0), y[test].shape)
    results["prevalence"] = evaluate(y[test], prevalence, classes, codes_test, config.threshold)
    finetune_losses: list[float] = []
    if config.finetune_epochs > 0:
        results["finetune"], finetune_losses = _finetune(config, model, stream, rows, train, test,
                                                         y, classes, codes_test, device)
    doc = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config.model_dump(mode="json"),
        "encoder": {"weights": weights_desc, "digest": digest,
                    **model.config.model_dump(mode="json")},
        "data": {"store": config.store, "stream": config.stream, "n_windows": int(len(emb["record"])),
                 "n_records": int(len(rows)), "n_train": int(train.sum()), "n_test": int(test.sum()),
                 "split_by": config.split_by, "classes": classes,
                 "support": {c: int(counts[c]) for c in classes}},
        "embeddings_cached": cached,
        "warnings": warnings,
        "metrics": results,
        "probe_losses": probe["losses"],
        "finetune_losses": finetune_losses,
        "timing_s": {"embed": round(t_embed, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    write_report(out, doc)
    return doc


def _guards(config: ProbeConfig, store, stream, model, table) -> list[str]:
    """The bench's guards before embedding (:mod:`criss_cross.bench.guards`): the encoder's
    declared input against the stream, and every usable record (the test split is drawn
    later) against its pretraining data; a refusal raises ValueError, an allowed one is a
    warning line for the report."""
    from criss_cross.bench import guards

    warnings = []
    declared, where = guards.declared_input(config.weights, config.model, model)
    bad = guards.preprocessing_mismatches(declared, guards.store_input(store, stream),
                                          float(model.config.input_scale))
    if bad:
        line = f"preprocessing mismatch ({where} vs {stream.name}): {'; '.join(bad)}"
        if not config.allow_mismatch:
            raise ValueError(line + "; reconvert the store or pass --allow-mismatch")
        warnings.append(line)
    identity, origin = guards.identity_of_weights(config.weights)
    if identity is None:
        return [*warnings, f"leakage not checked: {origin}"]
    keys = guards.record_keys(store)
    hit = guards.find_overlap(identity, [k for k, ok in zip(keys, table.ok, strict=True) if ok])
    if hit["n"]:
        by = ", ".join(f"{n} {k}" for k, n in hit["by_source"].items())
        line = f"leakage: {hit['n']} records were in the encoder's pretraining data ({by})"
        if not config.allow_overlap:
            raise ValueError(line + "; pass --allow-overlap to report anyway")
        warnings.append(line)
    return warnings


def _finetune(config, model, stream, rows, train, test, y, classes, codes_test, device):
    """Fine-tune on the train records' windows; record probability = mean over its windows."""
    data = stream.read(0, len(stream))
    win_rec = np.asarray(data["record"], dtype=np.int64)
    pos = {int(r): i for i, r in enumerate(rows)}
    idx_of = np.array([pos.get(int(r), -1) for r in win_rec])
    tr_w = np.flatnonzero((idx_of >= 0) & np.isin(idx_of, np.flatnonzero(train)))
    te_w = np.flatnonzero((idx_of >= 0) & np.isin(idx_of, np.flatnonzero(test)))
    windows = np.asarray(data["windows"], dtype=np.float32)
    cmask = np.asarray(data["channel_mask"], dtype=bool)
    pm = data.get("patch_mask")
    pmask = None if pm is None else np.asarray(pm, dtype=bool)
    model, head, losses = finetune(
        model, windows[tr_w], cmask[tr_w], None if pmask is None else pmask[tr_w],
        y[idx_of[tr_w]], epochs=config.finetune_epochs, lr=config.finetune_lr,
        batch_size=min(config.batch_size, 32), seed=config.seed, device=device, bf16=config.bf16)
    from criss_cross.probe.data import pooled_embeddings

    probs = np.zeros((len(te_w), len(classes)), dtype=np.float64)
    scale = float(model.config.input_scale)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
        for lo in range(0, len(te_w), config.batch_size):
            sel = te_w[lo:lo + config.batch_size]
            xb = torch.from_numpy(windows[sel]).to(device) * scale
            cm = torch.from_numpy(cmask[sel]).to(device)
            pmb = None if pmask is None else torch.from_numpy(pmask[sel]).to(device)
            logits = head(pooled_embeddings(model, xb, cm, pmb)).float()
            probs[lo:lo + len(sel)] = torch.sigmoid(logits).cpu().numpy()
    test_rows = np.flatnonzero(test)
    slot = {int(r): i for i, r in enumerate(test_rows)}
    rec_prob = np.zeros((len(test_rows), len(classes)))
    n = np.zeros(len(test_rows))
    for p, w in zip(probs, te_w, strict=True):
        s = slot[int(idx_of[w])]
        rec_prob[s] += p
        n[s] += 1
    rec_prob /= np.maximum(n, 1)[:, None]
    return evaluate(y[test], rec_prob, classes, codes_test, config.threshold), losses
