"""``run_bench(config, out)``: is this encoder any good on a task? (``criss-cross bench``)

Order of work, so that nothing is embedded or trained before the guards have spoken:

1. read labels, patients and the split (PTB-XL folds, or a seeded patient split; its manifest
   and hash go into the report);
2. guards (:mod:`criss_cross.bench.guards`): the encoder's declared input against the stream
   (a mismatch raises :class:`BenchRefused` unless ``allow_mismatch``) and the test records
   against the encoder's pretraining data (``allow_overlap``);
3. embed the stream with the encoder and with the same architecture at random init (seeded),
   compute the handcrafted features, average a record's windows for record-level tasks;
4. per method a linear probe on train (:func:`criss_cross.probe.train.fit_linear_probe`),
   thresholds chosen on validation (on train where the split has no validation patients, said
   in the report), test metrics with bootstrap intervals over patients; baselines train
   prevalence and, for binary tasks, always-positive; the paired encoder - random-init
   difference; the label-efficiency curve over ``label_fractions`` of the train patients.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from criss_cross.bench.tasks import Task, merge_challenge_codes, resolve_task, window_classes
from criss_cross.encoder import CrissCrossEncoder

__all__ = ["BenchConfig", "BenchRefused", "run_bench"]

SCHEMA = 1


class BenchRefused(ValueError):
    """A guard refused the run (one line naming what and how to override)."""


class BenchConfig(BaseModel):
    """Settings of :func:`run_bench` (every ``criss-cross bench`` option maps onto one)."""

    model_config = ConfigDict(extra="forbid")

    task: str
    store: str
    weights: str | None = None
    model: str = "ecg-base"
    encoder: dict[str, Any] = Field(default_factory=dict)
    stream: str | None = None
    labels: str | None = None
    split_by: str = "patient"
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    min_count: int = Field(2, ge=1)
    label_fractions: list[float] = Field(default_factory=lambda: [1.0])
    finetune_epochs: int = Field(0, ge=0)
    probe_steps: int = Field(300, ge=1)
    n_boot: int = Field(1000, ge=10)
    seed: int = 0
    batch_size: int = Field(64, ge=1)
    device: str = "auto"
    allow_overlap: bool = False
    allow_mismatch: bool = False
    cache_dir: str | None = None
    max_params: int | None = Field(None, ge=1)  # ceiling on the encoder's parameters [1e9]


def _pick_stream(store, wanted: str | None) -> str:
    if wanted:
        return wanted
    names = store.stream_names
    for cand in ("ecg@500", "ecg@200", *names):
        if cand in names:
            return cand
    raise ValueError(f"{store.url} has no stream")


def _window_labels(stream) -> dict[str, tuple[np.ndarray, list[str]]]:
    getter = getattr(stream, "window_labels", None)
    if getter is None:
        return {}
    labels = getter()
    return {k: (np.asarray(v), list(stream.label_classes(k))) for k, v in labels.items()}


def _units(task: Task, store, stream, win_record: np.ndarray, metas: list[dict],
           ok: np.ndarray, wl: dict) -> dict[str, Any]:
    """Rows to evaluate: records (mean of their windows) or windows, with labels."""
    if task.level == "window":
        if task.labels not in wl:
            raise KeyError(f"{store.url} stream {stream.name} has no per-window label "
                           f"{task.labels!r} (has: {', '.join(wl) or 'none'}); convert it with "
                           "a reader that writes rhythm labels")
        values, classes = wl[task.labels]
        keep = np.flatnonzero((values >= 0) & ok[win_record])
        y, names = window_classes(values[keep], classes)
        return {"windows": keep, "record": win_record[keep], "y": y, "classes": names,
                "codes": None}
    if not any(task.labels in m for m in metas):
        fields = sorted({k for m in metas for k in m})
        raise KeyError(f"{store.url}: no record has the label field {task.labels!r} in its "
                       f"metadata (fields there: {', '.join(fields) or 'none'})")
    from criss_cross.probe.data import _as_codes

    codes = [_as_codes(m.get(task.labels)) for m in metas]
    if task.challenge:
        codes = [merge_challenge_codes(c) for c in codes]
    has = np.bincount(win_record, minlength=len(metas)) > 0
    rows = np.flatnonzero(has & ok)
    return {"windows": None, "record": rows, "codes": [codes[r] for r in rows]}


def _groups(split_by: str, rec: dict, metas: list[dict]) -> np.ndarray:
    ids = np.asarray(rec["id"]).astype(str)
    if split_by == "patient":
        return np.array([str(m.get("patient_id", rid)) for m, rid in zip(metas, ids, strict=True)])
    if split_by == "record":
        return ids
    if split_by in rec and split_by != "metadata":
        return np.asarray(rec[split_by]).astype(str)
    if any(split_by in m for m in metas):
        return np.array([str(m.get(split_by, "?")) for m in metas])
    raise KeyError(f"cannot split by {split_by!r}: not 'patient', 'record', a records/ column "
                   "or a metadata field")


def run_bench(config: BenchConfig, out: str | Path) -> dict[str, Any]:
    """Run the bench described by ``config``, write its report into ``out``, return the
    metrics document (also ``out/metrics.json``). Raises :class:`BenchRefused` from a guard.

    One run at a time per ``out`` (``out/writer.lock``, :func:`criss_cross.run_lock.one_writer`):
    a second one into the same folder is refused with a ``ValueError`` naming the holder.
    """
    from criss_cross.run_lock import one_writer

    with one_writer(out, "bench run"):
        return _run_bench(config, Path(out))


def _run_bench(config: BenchConfig, out: Path) -> dict[str, Any]:
    from biosig_prep import open_store
    from criss_cross.bench import guards
    from criss_cross.bench.report import write_report
    from criss_cross.bench.splits import group_split, ptbxl_split, split_manifest

    t0 = time.perf_counter()
    store = open_store(config.store)
    stream = store.stream(_pick_stream(store, config.stream))
    rec = store.records()
    metas = [json.loads(m) if m else {} for m in rec["metadata"]]
    ok = np.asarray(rec["status"]).astype(str) == "ok"
    win_record = np.asarray(stream.record[:], dtype=np.int64)
    wl = _window_labels(stream)
    task = resolve_task(config.task, config.labels, list(wl))
    units = _units(task, store, stream, win_record, metas, ok, wl)
    rec_groups = _groups(config.split_by, rec, metas)
    groups = rec_groups[units["record"]]
    ids = np.asarray(rec["id"]).astype(str)
    if task.split == "ptbxl":
        folds = [metas[r].get("strat_fold") for r in units["record"]]
        if any(f is None for f in folds):
            raise KeyError(f"{store.url}: task {task.name} needs PTB-XL's strat_fold in every "
                           "record's metadata (convert with --format ptbxl)")
        parts, method = ptbxl_split(np.array(folds)), "PTB-XL strat_fold 1-8 / 9 / 10"
    else:
        strata = None
        if units["codes"] is None and units["y"].shape[1] == 1:
            strata = {}
            for g in np.unique(groups):
                strata[str(g)] = str(int(units["y"][groups == g, 0].mean() >= 0.5))
        parts = group_split(groups, test_fraction=config.test_fraction,
                            val_fraction=config.val_fraction, seed=config.seed, strata=strata)
        method = f"by {config.split_by}, seeded" + (", stratified by label" if strata else "")
    manifest = split_manifest(ids[units["record"]], groups, parts, method=method,
                              seed=config.seed, store=str(config.store))
    if units["codes"] is not None:
        train_codes = [c for c, p in zip(units["codes"], parts, strict=True) if p == "train"]
        counts: dict[str, int] = {}
        for cs in units["codes"]:
            for c in set(cs):
                counts[c] = counts.get(c, 0) + 1
        in_train = {c for cs in train_codes for c in cs}
        classes = sorted(c for c, n in counts.items() if n >= config.min_count and c in in_train)
        if not classes:
            raise ValueError(f"no label in {task.labels!r} has {config.min_count} positive "
                             "records with one in train; lower --min-count")
        units["classes"] = classes
        units["y"] = np.array([[c in set(cs) for c in classes] for cs in units["codes"]],
                              dtype=bool).reshape(len(units["codes"]), len(classes))

    # ---- guards, before anything is embedded or trained ------------------------------------
    warnings: list[str] = []
    from criss_cross.probe.run import ProbeConfig, load_encoder

    pcfg = ProbeConfig(store=config.store, stream=stream.name, weights=config.weights,
                       model=config.model, encoder=config.encoder, seed=config.seed,
                       max_params=config.max_params)
    loaded, weights_desc = load_encoder(pcfg)
    model = cast(CrissCrossEncoder, loaded)
    declared, declared_from = guards.declared_input(config.weights, config.model, model)
    actual = guards.store_input(store, stream)
    bad = guards.preprocessing_mismatches(declared, actual, float(model.config.input_scale))
    if bad:
        line = (f"preprocessing mismatch between the encoder ({declared_from}) and "
                f"{store.url} {stream.name}: {'; '.join(bad)}")
        if not config.allow_mismatch:
            raise BenchRefused(line + "; reconvert the store to match, or pass --allow-mismatch")
        warnings.append(line + " (run anyway: --allow-mismatch)")
    identity, identity_from = guards.identity_of_weights(config.weights)
    keys = guards.record_keys(store)
    test_rows = sorted(set(units["record"][parts == "test"].tolist()))
    leakage: dict[str, Any] = {"checked_against": identity_from}
    if identity is None:
        warnings.append(f"leakage not checked: {identity_from}")
        leakage["n"] = None
    else:
        leakage.update(guards.find_overlap(identity, [keys[r] for r in test_rows]))
        if leakage["n"]:
            by = ", ".join(f"{n} {k}" for k, n in leakage["by_source"].items())
            line = (f"leakage: {leakage['n']} of {len(test_rows)} test records were in the "
                    f"encoder's pretraining data ({by}; e.g. {', '.join(leakage['examples'])})")
            if not config.allow_overlap:
                raise BenchRefused(line + "; pass --allow-overlap to report anyway")
            warnings.append(line + " (run anyway: --allow-overlap)")

    # ---- embeddings and features ----------------------------------------------------------
    import torch

    from criss_cross.bench.fit import embed_units, fit_methods
    from criss_cross.registry import create_model
    from criss_cross.runtime import resolve_device

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    random_model = create_model(config.model, max_params=config.max_params,
                                **_arch_overrides(model, config.model))
    if config.weights is None:
        model = random_model  # the encoder under test is itself random init
    cache = config.cache_dir or str(out / "cache")
    x, t_embed = embed_units(units, stream, store_url=config.store, n_records=len(ids),
                             models={"encoder": model, "random": random_model},
                             cache_dir=cache, batch_size=config.batch_size, device=device)
    results = fit_methods(x, units, parts, groups, config, task, device, model, stream)
    doc = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config.model_dump(mode="json"),
        "task": {"name": task.name, "labels": task.labels, "level": task.level,
                 "description": task.description, "classes": units["classes"],
                 "support": {c: int(units["y"][:, k].sum()) for k, c in enumerate(units["classes"])},
                 "binary": len(units["classes"]) == 1},
        "encoder": {"weights": weights_desc, "model": config.model,
                    "n_layers": int(model.config.n_layers), "declared_input": declared,
                    "declared_from": declared_from},
        "data": {"store": str(config.store), "stream": stream.name, "store_input": actual,
                 "n_units": int(len(units["record"])), "level": task.level,
                 "n_windows": int(len(win_record))},
        "split": manifest,
        "guards": {"warnings": warnings, "leakage": leakage, "preprocessing": bad},
        **results,
        "timing_s": {"embed_and_features": round(t_embed, 3),
                     "total": round(time.perf_counter() - t0, 3)},
    }
    write_report(out, doc)
    return doc


def _arch_overrides(model, name: str) -> dict[str, Any]:
    """EncoderConfig fields of ``model`` that differ from the registry's ``name``."""
    from criss_cross.registry import get_model_spec

    spec = get_model_spec(name).encoder_config.model_dump()
    return {k: v for k, v in model.config.model_dump().items() if spec.get(k) != v}
