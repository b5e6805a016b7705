"""Train and evaluate the fusion model and its rows on a DREAMER store, fold by fold.

``train(config, store, out_dir, eeg_weights=..., ecg_weights=...)`` runs, for every seed and every
fold of :func:`fusion_emotion.splits.subject_folds`, each model row of the config ("fusion", and
the "eeg"/"ecg" ablations): train on the training subjects, and for each dimension (valence,
arousal, dominance) take the weights of the epoch with the best validation loss (or AUC) of that
dimension's head on the validation subjects to score the test subjects. The majority-class and
per-clip-majority baselines are fitted on the same training subjects. Then it writes
``metrics.json``, ``report.md`` and the plots (:mod:`fusion_emotion.report`).

Two modes:

- fine-tuning (paper): encoders and heads trained together on the summed BCE of the three heads,
  Adam with ``backbone_lr`` for the encoders and ``lr`` for the heads, StepLR; windows are held
  in memory (DREAMER: ~1 GB of EEG windows).
- frozen (``freeze_encoders``): every window goes through each encoder once (the embeddings,
  pooled over channels, are cached in ``RUN_DIR/cache`` and reused by every fold, row and seed),
  then only the heads train. The three heads share no parameter, so each trains on its own
  (same batches and recipe; Adam is per parameter, so this is the joint training up to the
  dropout draws) and its weights and optimizer state stay in the CPU cache; jobs run side by side
  in threads, one intra-op thread each. This is the CPU-friendly mode.

A killed run resumes: each finished (seed, fold, row) leaves ``folds/seed{S}/fold{K}/{row}.json``
and is skipped on the next call with the same settings; a job's result does not depend on which
jobs ran before it or beside it (every random draw comes from a generator seeded by the job).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fusion_emotion.config import DIMENSIONS, FusionConfig
from fusion_emotion.data import DreamerData, open_dreamer
from fusion_emotion.encoders import LoadedEncoder, embed_windows, load_encoder
from fusion_emotion.metrics import evaluate
from fusion_emotion.model import FusionModel
from fusion_emotion.splits import Fold, fold_windows, subject_folds

__all__ = ["RunResult", "train", "fold_result_path", "EXECUTION_FIELDS"]


#: Config fields that change how fast a run goes, never its numbers (left out of the run key).
EXECUTION_FIELDS = ("device", "eval_batch_size", "embed_batch_size", "save_encoders", "jobs")
#: Config fields that add or drop rows and repeats; a resumed run may change them.
EXTENT_FIELDS = ("seeds", "ablations", "baselines")


@dataclass
class RunResult:
    """What :func:`train` did. ``metrics`` is the content of ``metrics.json``."""

    out_dir: Path
    metrics: dict[str, Any]
    report_path: Path
    warnings: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# ---- small helpers --------------------------------------------------------------------------


def fold_result_path(out_dir: Path, seed: int, fold: int, row: str) -> Path:
    return Path(out_dir) / "folds" / f"seed{seed}" / f"fold{fold}" / f"{row}.json"


def _write_json(path: Path, data: Any) -> None:
    """Atomic write: a reader sees the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _data_fingerprint(data: DreamerData) -> str:
    h = hashlib.sha256()
    for key in (*DIMENSIONS, "subject", "clip"):
        arr = data.ratings[key] if key in data.ratings else getattr(data, key)
        h.update(key.encode())
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    config = getattr(data.store, "config", None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())  # the preprocessing
    for m, s in sorted(data.streams.items()):
        h.update(f"{m}:{s.name}:{data.shape(m)}".encode())
        if data.n_windows:  # the first and last window's values, cheaply
            for i in (0, data.n_windows - 1):
                h.update(np.ascontiguousarray(s.read(i, i + 1)["windows"]).tobytes())
    return h.hexdigest()


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _n_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _job_seed(seed: int, fold: int, row: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{fold}/{row}".encode()).digest()[:4], "little")


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class _Progress:
    """A rich progress display on stderr, or nothing."""

    def __init__(self, enabled: bool):
        from biosig_prep.progress import progress_bar  # biosig-prep is heavy to import

        self.enabled = enabled
        self._p = progress_bar(enabled)

    def __enter__(self) -> _Progress:
        if self._p is not None:
            self._p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if self._p is None:
            return lambda n=1: None
        tid = self._p.add_task(description, total=total)
        p = self._p
        return lambda n=1: p.advance(tid, n)


def _say(msg: str, *, loud: bool = False, enabled: bool = True) -> None:
    if not enabled and not loud:
        return
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]WARNING: {msg}[/]" if loud else msg, highlight=False)


# ---- the training loop ----------------------------------------------------------------------


def _bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the batch and the heads."""
    return F.binary_cross_entropy_with_logits(logits.float(), y.float())


def _subject_auc(scores: np.ndarray, y: np.ndarray, subject: np.ndarray) -> float:
    """Subject-averaged AUC of one dimension (pooled where no subject has both classes)."""
    m = evaluate(y, scores, subject)
    auc = m["subject"]["auc"] if m["subject"]["auc"] is not None else m["pooled"]["auc"]
    return float("nan") if auc is None else float(auc)


@dataclass
class _Job:
    seed: int
    fold: Fold
    row: str

    @property
    def name(self) -> str:
        return f"seed{self.seed}/fold{self.fold.index}/{self.row}"


def _fit(
    module: torch.nn.Module,
    groups: list[dict[str, Any]],
    forward: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    subject: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    config: FusionConfig,
    generator: torch.Generator,
    on_epoch: Callable[[int], None],
) -> dict[str, Any]:
    """Train for ``config.epochs`` epochs; keep, per output column, its best epoch's state.

    module : what is trained and snapshotted (its ``state_dict``).
    groups : Adam parameter groups (``params``, ``lr``).
    forward : window indices (LongTensor) -> logits (B, k); it reads ``module.training``.
    y : (N, k) targets of the k output columns.

    Returns ``{"history": {train_loss, val_loss (both means over the columns), val_loss_cols,
    val_auc_cols, lr}, "best": [(epoch (0-based), state) per column]}``. A column's best epoch
    has the lowest validation loss (``select_by="loss"``) or the highest subject-averaged
    validation AUC (``"auc"``); ties go to the earlier epoch.
    """
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    opt = torch.optim.Adam(groups, weight_decay=config.weight_decay, fused=fused)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=config.step_size, gamma=config.gamma)

    train_t = torch.as_tensor(train_idx, dtype=torch.long)
    val_t = torch.as_tensor(val_idx, dtype=torch.long)
    k = y.shape[1]
    y_val = y[val_t]
    history: dict[str, list] = {"train_loss": [], "val_loss": [], "val_loss_cols": [], "val_auc_cols": [], "lr": []}
    best: list[tuple[float, int, dict[str, torch.Tensor]] | None] = [None] * k
    for epoch in range(config.epochs):
        module.train()
        history["lr"].append(float(opt.param_groups[0]["lr"]))
        order = train_t[torch.randperm(len(train_t), generator=generator)]
        total, count = 0.0, 0
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            logits = forward(idx)
            loss = _bce(logits, y[idx].to(logits.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"training loss became {value} at epoch {epoch + 1}")
            total += value * len(idx)
            count += len(idx)
        sched.step()
        val_logits = _predict(module, forward, val_t, config.eval_batch_size)
        losses = [float(_bce(val_logits[:, j], y_val[:, j])) for j in range(k)]
        probs = torch.sigmoid(val_logits).numpy()
        aucs = [_subject_auc(probs[:, j], y_val[:, j].numpy(), subject[val_idx]) for j in range(k)]
        history["train_loss"].append(total / max(count, 1))
        history["val_loss"].append(float(np.mean(losses)))
        history["val_loss_cols"].append(losses)
        history["val_auc_cols"].append([a if math.isfinite(a) else None for a in aucs])
        state = None
        for j in range(k):
            auc = aucs[j] if math.isfinite(aucs[j]) else 0.0
            score = losses[j] if config.select_by == "loss" else -auc
            if best[j] is None or score < best[j][0]:
                if state is None:
                    state = {n: v.detach().clone() for n, v in module.state_dict().items()}
                best[j] = (score, epoch, state)
        on_epoch(1)
    return {"history": history, "best": [(b[1], b[2]) for b in best if b is not None]}


def _predict(
    module: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], idx: torch.Tensor, batch: int
) -> torch.Tensor:
    """Logits (n, k) on the CPU, in eval mode, without gradients."""
    module.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(idx), batch):
            outs.append(forward(idx[i : i + batch]).float().cpu())
    return torch.cat(outs)


def _best_logits(
    module: torch.nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    best: list[tuple[int, dict[str, torch.Tensor]]],
    idx: torch.Tensor,
    batch: int,
) -> torch.Tensor:
    """Logits (n, k): column j from the state of column j's best epoch (one pass per distinct epoch)."""
    out = torch.empty(len(idx), len(best))
    for epoch in sorted({e for e, _ in best}):
        cols = [j for j, (e, _) in enumerate(best) if e == epoch]
        module.load_state_dict(best[cols[0]][1])
        logits = _predict(module, forward, idx, batch)
        out[:, cols] = logits[:, cols]
    return out


def _merge_histories(parts: list[dict[str, list]]) -> dict[str, list]:
    """Histories of heads trained one by one -> one history with a column per head."""
    n = len(parts[0]["train_loss"])
    return {
        "train_loss": [float(np.mean([p["train_loss"][e] for p in parts])) for e in range(n)],
        "val_loss": [float(np.mean([p["val_loss"][e] for p in parts])) for e in range(n)],
        "val_loss_cols": [[p["val_loss_cols"][e][0] for p in parts] for e in range(n)],
        "val_auc_cols": [[p["val_auc_cols"][e][0] for p in parts] for e in range(n)],
        "lr": parts[0]["lr"],
    }


# ---- the run --------------------------------------------------------------------------------


class _Runner:
    def __init__(
        self,
        config: FusionConfig,
        data: DreamerData,
        encoders: dict[str, LoadedEncoder],
        out_dir: Path,
        progress: bool,
    ):
        self.config = config
        self.data = data
        self.encoders = encoders
        self.out_dir = out_dir
        self.progress = progress
        self.device = _device(config.device)
        self.targets = data.targets(config.threshold)
        self.y = torch.as_tensor(self.targets, dtype=torch.float32)
        self.n_patches = data.shape(config.modalities[0])[1]
        self.embeddings: dict[str, torch.Tensor] = {}
        self._features: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    # -- frozen mode --
    def cache_embeddings(self, bar: _Progress) -> None:
        cache = self.out_dir / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        data_fp = _data_fingerprint(self.data)
        for m, enc in self.encoders.items():
            key = {
                "encoder": enc.fingerprint,
                "scale": enc.input_scale,
                "bf16": self.config.autocast(self.device.type),
                "data": data_fp,
                "stream": self.data.streams[m].name,
            }
            npy, meta = cache / f"{m}.npy", cache / f"{m}.json"
            if npy.is_file() and meta.is_file() and json.loads(meta.read_text()).get("key") == key:
                self.embeddings[m] = torch.from_numpy(np.load(npy))
                continue
            n = self.data.n_windows
            advance = bar.task(f"embedding {m.upper()} (frozen)", n)
            t0 = time.perf_counter()
            enc.model.to(self.device)
            emb = embed_windows(
                enc.model,
                self.data.iter_chunks(m),
                n,
                scale=enc.input_scale,
                batch_size=self.config.embed_batch_size,
                device=self.device,
                bf16=self.config.autocast(self.device.type),
                on_batch=advance,
            )
            enc.model.to("cpu")
            seconds = time.perf_counter() - t0
            tmp = npy.with_name(f".{m}.tmp.npy")
            np.save(tmp, emb)
            os.replace(tmp, npy)
            _write_json(meta, {"key": key, "shape": list(emb.shape), "seconds": seconds})
            self.embeddings[m] = torch.from_numpy(emb)

    def features(self, row: str) -> torch.Tensor:
        """The concatenated head input (N, F) of ``row`` from the cached embeddings."""
        with self._lock:
            if row not in self._features:
                mods = self.config.variant_modalities(row)
                model = self._model(row, with_encoders=False)
                with torch.no_grad():
                    self._features[row] = model.forward_features({m: self.embeddings[m] for m in mods})
            return self._features[row]

    # -- both modes --
    def _model(self, row: str, *, with_encoders: bool) -> FusionModel:
        mods = self.config.variant_modalities(row)
        encoders = {m: copy.deepcopy(self.encoders[m].model) for m in mods} if with_encoders else None
        return FusionModel(
            mods,
            encoders,
            n_patches=self.n_patches,
            d_model={m: self.encoders[m].d_model for m in mods},
            pool=self.config.pool,
            hidden=self.config.head_hidden,
            dropout=self.config.dropout,
        )

    def run_job(self, job: _Job, on_epoch: Callable[[int], None]) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        train_idx, val_idx, test_idx = fold_windows(self.data.subject, job.fold)
        for name, part in (("train", train_idx), ("validation", val_idx), ("test", test_idx)):
            if len(part) == 0:
                raise ValueError(f"{job.name}: the {name} subjects have no windows")
        seed = _job_seed(job.seed, job.fold.index, job.row)
        test_t = torch.as_tensor(test_idx)
        if cfg.freeze_encoders:
            model = self._model(job.row, with_encoders=False)
            model.head.reset_parameters(torch.Generator().manual_seed(seed))
            X = self.features(job.row)
            # The heads share no parameter, so each trains on its own (same batches, its own
            # optimizer and dropout stream): one head's weights and Adam moments stay in cache.
            parts, best, logits = [], [], []
            for j, dim in enumerate(DIMENSIONS):
                head = model.head.heads[dim]
                gen = torch.Generator().manual_seed(seed)  # the same batch order for every head
                drop = torch.Generator().manual_seed(seed + 1 + j)
                for mod in head.modules():
                    if hasattr(mod, "generator"):
                        mod.generator = drop

                def forward(idx: torch.Tensor, head: torch.nn.Module = head) -> torch.Tensor:
                    return head(X[idx])

                fit = _fit(head, [{"params": list(head.parameters()), "lr": cfg.lr}], forward,
                           self.y[:, j : j + 1], self.data.subject, train_idx, val_idx, cfg, gen, on_epoch)
                parts.append(fit["history"])
                best.append(fit["best"][0])
                logits.append(_best_logits(head, forward, fit["best"], test_t, cfg.eval_batch_size))
                head.load_state_dict(fit["best"][0][1])
            history = _merge_histories(parts)
            test_logits = torch.cat(logits, dim=1)
        else:
            torch.manual_seed(seed)  # encoder dropout draws from the global RNG (jobs run one by one)
            gen = torch.Generator().manual_seed(seed)
            model = self._model(job.row, with_encoders=True)
            model.head.reset_parameters(gen)
            model.head.set_generator(gen)
            model.to(self.device)
            mods = cfg.variant_modalities(job.row)
            windows = {m: self.data.load(m) for m in mods}
            scales = {m: self.encoders[m].input_scale for m in mods}
            dev = self.device

            amp = cfg.autocast(dev.type)

            def forward(idx: torch.Tensor) -> torch.Tensor:
                i = idx.numpy()
                xs = {m: torch.from_numpy(windows[m][0][i]).to(dev) * scales[m] for m in mods}
                ms = {m: torch.from_numpy(windows[m][1][i]).to(dev) for m in mods}
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    return model(xs, ms).float()

            groups: list[dict[str, Any]] = [{"params": list(model.head.parameters()), "lr": cfg.lr}]
            assert model.encoders is not None
            enc_params = [p for p in model.encoders.parameters() if p.requires_grad]
            backbone_lr = cfg.lr if cfg.backbone_lr is None else cfg.backbone_lr
            if enc_params and backbone_lr > 0:
                groups.append({"params": enc_params, "lr": backbone_lr})
            else:
                for p in enc_params:
                    p.requires_grad_(False)
            fit = _fit(model, groups, forward, self.y, self.data.subject, train_idx, val_idx, cfg, gen, on_epoch)
            history, best = fit["history"], fit["best"]
            test_logits = _best_logits(model, forward, best, test_t, cfg.eval_batch_size)
        scores = torch.sigmoid(test_logits).numpy().astype(np.float64)
        metrics = {
            dim: evaluate(self.targets[test_idx, j], scores[:, j], self.data.subject[test_idx])
            for j, dim in enumerate(DIMENSIONS)
        }
        best_epoch = {dim: best[j][0] + 1 for j, dim in enumerate(DIMENSIONS)}
        self._save_checkpoint(job, model, best, best_epoch)
        return {
            "seed": job.seed,
            "fold": job.fold.index,
            "row": job.row,
            "subjects": job.fold.as_dict(),
            "n_windows": {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
            "history": history,
            "best_epoch": best_epoch,
            "test_index": test_idx.tolist(),
            "scores": {dim: scores[:, j].tolist() for j, dim in enumerate(DIMENSIONS)},
            "metrics": metrics,
            "seconds": time.perf_counter() - t0,
        }

    def _save_checkpoint(
        self,
        job: _Job,
        model: FusionModel,
        best: list[tuple[int, dict[str, torch.Tensor]]],
        best_epoch: dict[str, int],
    ) -> None:
        """The heads, each at its best epoch (and with ``save_encoders``, per dimension, the
        whole fine-tuned model of that dimension's best epoch)."""
        from safetensors.torch import save_file

        stem = f"seed{job.seed}-fold{job.fold.index}-{job.row}"
        folder = self.out_dir / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, dict[str, torch.Tensor]] = {}
        if self.config.freeze_encoders:
            files[stem] = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
        else:
            heads: dict[str, torch.Tensor] = {}
            for j, dim in enumerate(DIMENSIONS):
                prefix = f"head.heads.{dim}."
                heads.update({k[len("head."):]: v.cpu().contiguous() for k, v in best[j][1].items() if k.startswith(prefix)})
                if self.config.save_encoders:
                    files[f"{stem}-{dim}"] = {k: v.cpu().contiguous() for k, v in best[j][1].items()}
            files[stem] = heads
        for name, state in files.items():
            tmp = folder / f".{name}.tmp.safetensors"
            save_file(state, str(tmp))
            os.replace(tmp, folder / f"{name}.safetensors")
        _write_json(
            folder / f"{stem}.json",
            {
                "row": job.row,
                "seed": job.seed,
                "fold": job.fold.index,
                "best_epoch": best_epoch,
                "modalities": model.modalities,
                "in_features": model.in_features,
                "files": {
                    "heads": f"{stem}.safetensors",
                    **{dim: f"{stem}-{dim}.safetensors" for dim in DIMENSIONS if f"{stem}-{dim}" in files},
                },
                "dimensions": list(DIMENSIONS),
                "config": self.config.model_dump(mode="json"),
            },
        )


def _run_key(config: FusionConfig, encoders: Mapping[str, LoadedEncoder], data_fp: str) -> dict[str, Any]:
    cfg = config.model_dump(mode="json")
    for k in (*EXECUTION_FIELDS, *EXTENT_FIELDS):
        cfg.pop(k, None)
    return {
        "config": cfg,
        "encoders": {m: [e.fingerprint, e.input_scale] for m, e in sorted(encoders.items())},
        "data": data_fp,
    }


def _check_resume(out_dir: Path, key: dict[str, Any], resume: bool) -> None:
    run_json = out_dir / "run.json"
    if not resume:
        for sub in ("folds", "checkpoints"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        return
    if not run_json.is_file():
        if (out_dir / "folds").exists():
            shutil.rmtree(out_dir / "folds")
        return
    old = json.loads(run_json.read_text()).get("key")
    if old == key:
        return
    diffs = []
    if old:
        for k in sorted(set(old.get("config", {})) | set(key["config"])):
            if old.get("config", {}).get(k) != key["config"].get(k):
                diffs.append(f"{k}: {old.get('config', {}).get(k)!r} -> {key['config'].get(k)!r}")
        if old.get("encoders") != key["encoders"]:
            diffs.append("encoder weights or input scale")
        if old.get("data") != key["data"]:
            diffs.append("the store's windows/labels")
    raise ValueError(
        f"{out_dir} holds a run with different settings ({'; '.join(diffs) or 'unknown'}); "
        "choose another --out, or pass --no-resume to start it again"
    )


def train(
    config: FusionConfig | Mapping[str, Any],
    store: Any,
    out_dir: str | Path,
    *,
    eeg_weights: str | Path | None = None,
    ecg_weights: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    allow_incomplete: bool = False,
) -> RunResult:
    """Run the whole protocol and write the report; see the module docstring.

    config : a :class:`FusionConfig` or a mapping validated into one.
    store : a DREAMER store path/URL, or an opened :class:`biosig_prep.Store`.
    out_dir : the run folder (created); holds run.json, config.yaml, metrics.json, report.md,
        plots, folds/ (per-job results), checkpoints/ (best heads) and cache/ (frozen mode).
    eeg_weights, ecg_weights : official CBraMod ``.pth`` or our checkpoint; None = random init
        with a loud warning that is also written into the report.
    resume : skip the jobs whose results are already in ``out_dir`` (same settings required);
        False starts the run again from scratch.
    """
    from fusion_emotion.report import write_report

    cfg = config if isinstance(config, FusionConfig) else FusionConfig.model_validate(dict(config))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    data = open_dreamer(store, {m: cfg.stream(m) for m in cfg.modalities}, allow_incomplete=allow_incomplete)
    weights = {"eeg": eeg_weights, "ecg": ecg_weights}
    encoders = {m: load_encoder(m, weights[m], cfg) for m in cfg.modalities}
    warnings = [e.warning for e in encoders.values() if e.warning]
    for w in warnings:
        _say(w, loud=True)
    if not cfg.freeze_encoders and _device(cfg.device).type == "cpu":
        _say(
            "full fine-tuning on the CPU is slow (see docs/benchmarks.md); "
            "--freeze-encoders trains the heads on cached embeddings",
            enabled=progress,
        )
    data_fp = _data_fingerprint(data)
    key = _run_key(cfg, encoders, data_fp)
    _check_resume(out, key, resume)
    cfg.to_file(out / "config.yaml")
    _write_json(
        out / "run.json",
        {
            "key": key,
            "store": data.url,
            "weights": {m: (None if w is None else str(w)) for m, w in weights.items()},
            "encoders": {m: e.describe() for m, e in encoders.items()},
            "warnings": warnings,
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
    )

    runner = _Runner(cfg, data, encoders, out, progress)
    splits = {seed: subject_folds(data.subject, cfg.folds, seed) for seed in cfg.seeds}
    jobs = [_Job(seed, fold, row) for seed in cfg.seeds for fold in splits[seed] for row in cfg.variants]
    todo = [j for j in jobs if not (resume and fold_result_path(out, j.seed, j.fold.index, j.row).is_file())]
    skipped = [j.name for j in jobs if j not in todo]
    if skipped:
        _say(f"resuming: {len(skipped)} of {len(jobs)} jobs already finished", enabled=progress)

    with _Progress(progress) as bar:
        if cfg.freeze_encoders and todo:
            runner.cache_embeddings(bar)
        # frozen: the three heads of a job train one after another, an epoch each is a step
        per_job = cfg.epochs * (len(DIMENSIONS) if cfg.freeze_encoders else 1)
        advance = bar.task("training", len(todo) * per_job)

        def work(job: _Job) -> None:
            result = runner.run_job(job, advance)
            _write_json(fold_result_path(out, job.seed, job.fold.index, job.row), result)

        if cfg.freeze_encoders:
            n_jobs = max(1, min(cfg.jobs or _n_cpus(), len(todo)))
            with _torch_threads(1):
                if n_jobs == 1:
                    for job in todo:
                        work(job)
                else:
                    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                        for fut in [pool.submit(work, job) for job in todo]:
                            fut.result()
        else:
            for job in todo:
                work(job)

    metrics = write_report(out, data=data, splits=splits, seconds=time.perf_counter() - t_start)
    for w in warnings:
        _say(w, loud=True)
    return RunResult(
        out_dir=out,
        metrics=metrics,
        report_path=out / "report.md",
        warnings=warnings,
        trained=[j.name for j in todo],
        skipped=skipped,
    )
