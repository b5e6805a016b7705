"""The jobs of a run: one (seed, fold, row) each, trained frozen or fine-tuned; baseline rows.

For every seed and fold of :func:`fusion_emotion.splits.make_folds` (k-fold or leave one
subject out), each model row of the
config (the fusion rows, one per ``--fusion`` strategy, and the "eeg"/"ecg" ablations) trains on
the training subjects; for each dimension (valence, arousal, dominance) the weights of the epoch
with the best validation loss (or AUC) of that dimension's head score the test subjects. The
majority-class and per-clip-majority baselines are fitted on the same training subjects; the
always-high and always-low rows need nothing.

Two runners:

- fine-tuning (paper): encoders and heads trained together on the summed BCE of the three heads,
  Adam with ``backbone_lr`` for the encoders and ``lr`` for the heads, StepLR; windows are held
  in memory (DREAMER: ~1 GB of EEG windows).
- frozen (``freeze_encoders``): every window goes through each encoder once; the channel-pooled
  per-patch tokens (N, P, D) are cached in ``RUN_DIR/cache`` with the patch mask and reused by
  every fold, row, strategy and seed; then only the heads train. The three heads of a strategy
  share no parameter, so each trains on its own (same batches and recipe; Adam is per
  parameter, so this is the joint training up to the dropout draws). Jobs run side by side in
  threads, one intra-op thread each. This is the CPU-friendly mode.

Modality dropout (``modality_dropout`` p, fusion rows only): in training, each window loses one
modality (chosen uniformly) with probability p: the strategy's learned absent token replaces it
(:meth:`fusion_emotion.strategies.Strategy.blank`). Every fusion row is also scored on its test
subjects with EEG absent and with ECG absent for every window (``scores_absent`` in its fold
file), whether or not it was trained with dropout.

A job's result does not depend on which jobs ran before it or beside it: every random draw comes
from a generator seeded by the job.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fusion_emotion.baselines import constant, majority_class, per_clip_majority
from fusion_emotion.config import DIMENSIONS, FusionConfig
from fusion_emotion.data import DreamerWindows
from fusion_emotion.encoders import LoadedEncoder, embed_windows
from fusion_emotion.fit import best_logits, fit, merge_histories
from fusion_emotion.metrics import evaluate
from fusion_emotion.model import FusionModel
from fusion_emotion.rundir import RunDir
from fusion_emotion.splits import Fold, fold_windows
from fusion_emotion.strategies import STRATEGIES, draw_absent, take

__all__ = ["BASELINES", "Job", "Runner", "job_seed", "data_fingerprint", "baseline_result"]

#: The rows that need no signal (fitted on the training subjects' labels only).
BASELINES = ("majority", "per_clip", "always_high", "always_low")


@dataclass
class Job:
    seed: int
    fold: Fold
    row: str

    @property
    def name(self) -> str:
        return f"seed{self.seed}/fold{self.fold.index}/{self.row}"


def job_seed(seed: int, fold: int, row: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{fold}/{row}".encode()).digest()[:4], "little")


def data_fingerprint(data: DreamerWindows) -> str:
    """Labels, preprocessing config, stream shapes and the first and last window's values."""
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


def _test_part(data: DreamerWindows, targets: np.ndarray, test_idx: np.ndarray) -> dict[str, Any]:
    """What the report needs of a job's test windows besides its scores."""
    return {
        "test_index": test_idx.tolist(),
        "test_subject": data.subject[test_idx].tolist(),
        "test_clip": data.clip[test_idx].tolist(),
        "y": {dim: targets[test_idx, j].tolist() for j, dim in enumerate(DIMENSIONS)},
    }


def baseline_result(row: str, seed: int, fold: Fold, data: DreamerWindows, targets: np.ndarray) -> dict:
    """The fold file of a baseline row (one of :data:`BASELINES`)."""
    train_idx, _, test_idx = fold_windows(data.subject, fold)
    scores, metrics = {}, {}
    for j, dim in enumerate(DIMENSIONS):
        if row == "majority":
            s = majority_class(targets[train_idx, j], len(test_idx))
        elif row in ("always_high", "always_low"):
            s = constant(row == "always_high", len(test_idx))
        else:
            s = per_clip_majority(
                targets[train_idx, j], data.clip[train_idx], data.subject[train_idx], data.clip[test_idx]
            )
        scores[dim] = s.tolist()
        metrics[dim] = evaluate(targets[test_idx, j], s, data.subject[test_idx])
    return {
        "seed": seed,
        "fold": fold.index,
        "row": row,
        "subjects": fold.as_dict(),
        **_test_part(data, targets, test_idx),
        "scores": scores,
        "metrics": metrics,
    }


def _all_valid_to_none(mask: np.ndarray | None) -> torch.Tensor | None:
    """A (N, P) mask as a tensor, or None when every patch is valid (the plain means then)."""
    if mask is None or bool(np.all(mask)):
        return None
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))


class Runner:
    """Trains the jobs of one run (frozen or fine-tuned) and writes their checkpoints."""

    def __init__(
        self,
        config: FusionConfig,
        data: DreamerWindows,
        encoders: dict[str, LoadedEncoder],
        rundir: RunDir,
        device: torch.device,
    ):
        self.config = config
        self.data = data
        self.encoders = encoders
        self.rundir = rundir
        self.device = device
        self.targets = data.targets(config.threshold)
        self.y = torch.as_tensor(self.targets, dtype=torch.float32)
        self.n_patches = data.shape(config.modalities[0])[1]
        self.embeddings: dict[str, torch.Tensor] = {}
        self.patch_mask: torch.Tensor | None = None
        self._prepared: dict[tuple[Any, ...], Any] = {}
        self._hep: torch.Tensor | None = None
        self._lock = threading.Lock()

    # ---- frozen mode -----------------------------------------------------------------------
    def cache_embeddings(self, task: Callable[[str, int], Callable[[int], None]], data_fp: str) -> None:
        """Embed every window once per encoder (or read the cache made with the same key)."""
        masks = []
        for m, enc in self.encoders.items():
            key = {
                "encoder": enc.fingerprint,
                "scale": enc.input_scale,
                "bf16": self.config.autocast(self.device.type),
                "data": data_fp,
                "stream": self.data.streams[m].name,
            }
            emb = self.rundir.read_cache(m, key)
            pm = self.rundir.read_cache(f"{m}.patch_mask", key)
            if emb is None or pm is None:
                emb, pm, seconds = self._embed(m, enc, task)
                self.rundir.write_cache(f"{m}.patch_mask", pm, {"key": key, "shape": list(pm.shape)})
                self.rundir.write_cache(m, emb, {"key": key, "shape": list(emb.shape), "seconds": seconds})
            self.embeddings[m] = torch.from_numpy(emb)
            self.data.set_patch_mask(m, pm)
            masks.append(pm)
        self.patch_mask = _all_valid_to_none(np.logical_and.reduce(masks))

    def _embed(self, m: str, enc: LoadedEncoder, task: Callable[[str, int], Callable[[int], None]]):
        n = self.data.n_windows
        advance = task(f"embedding {m.upper()} (frozen)", n)
        t0 = time.perf_counter()
        patch_masks: list[np.ndarray] = []

        def chunks():
            for part in self.data.iter_parts(m):
                patch_masks.append(part["patch_mask"])
                yield part["windows"], part["channel_mask"]

        enc.model.to(self.device)
        emb = embed_windows(
            enc.model,
            chunks(),
            n,
            scale=enc.input_scale,
            batch_size=self.config.embed_batch_size,
            device=self.device,
            bf16=self.config.autocast(self.device.type),
            on_batch=advance,
        )
        enc.model.to("cpu")
        return emb, np.concatenate(patch_masks), time.perf_counter() - t0

    def prepared(self, row: str) -> Any:
        """What ``row``'s heads read, from the cached tokens (computed once, shared by the rows
        whose strategies prepare the same way, e.g. late and gated)."""
        mods = self.config.variant_modalities(row)
        strategy = STRATEGIES[self.config.variant_fusion(row)]
        key = (strategy.inputs, tuple(mods))
        with self._lock:
            if key not in self._prepared:
                tokens = {m: self.embeddings[m] for m in mods}
                if strategy.inputs == "hep":
                    tokens["hep"] = self._hep_unlocked()
                with torch.no_grad():
                    self._prepared[key] = strategy.prepare(tokens, self.patch_mask, self.config.pool)
            return self._prepared[key]

    def _hep_unlocked(self) -> torch.Tensor:
        if self._hep is None:
            from fusion_emotion.hep import hep_features

            fs = float(getattr(self.data.streams["eeg"], "fs", None) or self.data.shape("eeg")[2])
            self._hep = torch.from_numpy(hep_features(self.data.iter_chunks, fs, self.data.n_windows))
        return self._hep

    def hep(self) -> torch.Tensor:
        """(N, HEP_DIM) heartbeat-evoked-response features of every window (computed once)."""
        with self._lock:
            return self._hep_unlocked()

    # ---- both modes ------------------------------------------------------------------------
    def model(self, row: str, *, with_encoders: bool) -> FusionModel:
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
            fusion=self.config.variant_fusion(row),
            learn_absent=self.config.modality_dropout > 0 and len(mods) > 1,
        )

    def run_job(self, job: Job, on_epoch: Callable[[int], None]) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        train_idx, val_idx, test_idx = fold_windows(self.data.subject, job.fold)
        for name, part in (("train", train_idx), ("validation", val_idx), ("test", test_idx)):
            if len(part) == 0:
                raise ValueError(f"{job.name}: the {name} subjects have no windows")
        seed = job_seed(job.seed, job.fold.index, job.row)
        test_t = torch.as_tensor(test_idx)
        if cfg.freeze_encoders:
            model, history, best, test_logits, absent_logits = self._run_frozen(
                job, seed, train_idx, val_idx, test_t, on_epoch)
        else:
            model, history, best, test_logits, absent_logits = self._run_finetune(
                job, seed, train_idx, val_idx, test_t, on_epoch)
        scores = torch.sigmoid(test_logits).numpy().astype(np.float64)
        absent_part = {}
        if absent_logits:
            absent_part = {"scores_absent": {
                m: {dim: torch.sigmoid(lg[:, j]).numpy().astype(np.float64).tolist() for j, dim in enumerate(DIMENSIONS)}
                for m, lg in absent_logits.items()}}
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
            "fusion": cfg.variant_fusion(job.row),
            "subjects": job.fold.as_dict(),
            "n_windows": {"train": len(train_idx), "val": len(val_idx), "test": len(test_idx)},
            "history": history,
            "best_epoch": best_epoch,
            **_test_part(self.data, self.targets, test_idx),
            "scores": {dim: scores[:, j].tolist() for j, dim in enumerate(DIMENSIONS)},
            **absent_part,
            "metrics": metrics,
            "seconds": time.perf_counter() - t0,
        }

    def _run_frozen(self, job, seed, train_idx, val_idx, test_t, on_epoch):
        cfg = self.config
        model = self.model(job.row, with_encoders=False)
        model.head.reset_parameters(torch.Generator().manual_seed(seed))
        X = self.prepared(job.row)
        mods = cfg.variant_modalities(job.row)
        p_drop = cfg.modality_dropout if len(mods) > 1 else 0.0
        absent_logits: dict[str, list[torch.Tensor]] = {m: [] for m in mods} if len(mods) > 1 else {}
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

            absent_gen = torch.Generator().manual_seed(seed + 101 + j)

            def forward(idx: torch.Tensor, head: Any = head, gen: torch.Generator = absent_gen) -> torch.Tensor:
                x = take(X, idx)
                if p_drop > 0 and head.training:
                    x = head.blank(x, draw_absent(len(idx), mods, p_drop, gen))
                return head(x)

            result = fit(head, [{"params": list(head.parameters()), "lr": cfg.lr}], forward,
                         self.y[:, j : j + 1], self.data.subject, train_idx, val_idx, cfg, gen, on_epoch)
            parts.append(result["history"])
            best.append(result["best"][0])
            logits.append(best_logits(head, forward, result["best"], test_t, cfg.eval_batch_size))
            for m in absent_logits:
                def without(idx: torch.Tensor, head: Any = head, m: str = m) -> torch.Tensor:
                    return head(head.blank(take(X, idx), {m: torch.ones(len(idx), dtype=torch.bool)}))

                absent_logits[m].append(best_logits(head, without, result["best"], test_t, cfg.eval_batch_size))
            head.load_state_dict(result["best"][0][1])
        absent = {m: torch.cat(v, dim=1) for m, v in absent_logits.items()}
        return model, merge_histories(parts), best, torch.cat(logits, dim=1), absent

    def _run_finetune(self, job, seed, train_idx, val_idx, test_t, on_epoch):
        cfg = self.config
        torch.manual_seed(seed)  # encoder dropout draws from the global RNG (jobs run one by one)
        gen = torch.Generator().manual_seed(seed)
        model = self.model(job.row, with_encoders=True)
        model.head.reset_parameters(gen)
        model.head.set_generator(gen)
        model.to(self.device)
        mods = cfg.variant_modalities(job.row)
        windows = {m: self.data.load(m) for m in mods}
        mask = _all_valid_to_none(np.logical_and.reduce([self.data.patch_mask(m) for m in mods]))
        scales = {m: self.encoders[m].input_scale for m in mods}
        dev = self.device
        amp = cfg.autocast(dev.type)

        p_drop = cfg.modality_dropout if len(mods) > 1 else 0.0
        absent_gen = torch.Generator().manual_seed(seed + 101)
        hep = self.hep() if cfg.variant_fusion(job.row) == "hep" else None

        def forward(idx: torch.Tensor, without: str | None = None) -> torch.Tensor:
            i = idx.numpy()
            xs = {m: torch.from_numpy(windows[m][0][i]).to(dev) * scales[m] for m in mods}
            ms = {m: torch.from_numpy(windows[m][1][i]).to(dev) for m in mods}
            pm = None if mask is None else mask[idx].to(dev)
            absent = None
            if without is not None:
                absent = {without: torch.ones(len(idx), dtype=torch.bool, device=dev)}
            elif p_drop > 0 and model.training:
                absent = {m: a.to(dev) for m, a in draw_absent(len(idx), mods, p_drop, absent_gen).items()}
            if hep is not None:
                xs["hep"] = hep[idx].to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                return model.head(model.forward_features(xs, ms, pm), absent).float()

        groups: list[dict[str, Any]] = [{"params": list(model.head.parameters()), "lr": cfg.lr}]
        assert model.encoders is not None
        enc_params = [p for p in model.encoders.parameters() if p.requires_grad]
        backbone_lr = cfg.lr if cfg.backbone_lr is None else cfg.backbone_lr
        if enc_params and backbone_lr > 0:
            groups.append({"params": enc_params, "lr": backbone_lr})
        else:
            for p in enc_params:
                p.requires_grad_(False)
        result = fit(model, groups, forward, self.y, self.data.subject, train_idx, val_idx, cfg, gen, on_epoch)
        best = result["best"]
        test_logits = best_logits(model, forward, best, test_t, cfg.eval_batch_size)
        absent = {}
        if len(mods) > 1:
            for m in mods:
                absent[m] = best_logits(model, lambda idx, m=m: forward(idx, m), best, test_t, cfg.eval_batch_size)
        return model, result["history"], best, test_logits, absent

    def _save_checkpoint(
        self,
        job: Job,
        model: FusionModel,
        best: list[tuple[int, dict[str, torch.Tensor]]],
        best_epoch: dict[str, int],
    ) -> None:
        """The heads, each at its best epoch (and with ``save_encoders``, per dimension, the
        whole fine-tuned model of that dimension's best epoch)."""
        stem = self.rundir.checkpoint_stem(job.seed, job.fold.index, job.row)
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
        meta = {
            "row": job.row,
            "fusion": model.fusion,
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
        }
        self.rundir.write_checkpoint(stem, files, meta)
