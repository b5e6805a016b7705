"""``train(config, store, out_dir, eeg_weights=..., ecg_weights=...)``: the whole run, thin.

Opens the store and the encoders, checks the run folder (:mod:`fusion_emotion.rundir`), runs
the jobs that are not finished yet (:mod:`fusion_emotion.protocol`: every seed x fold x row,
frozen or fine-tuned), writes the baseline rows, then the report (:mod:`fusion_emotion.report`:
``metrics.json``, ``report.md``, plots).

A killed run resumes: each finished (seed, fold, row) leaves ``folds/seed{S}/fold{K}/{row}.json``
and is skipped on the next call with the same settings (more seeds, rows or strategies extend
the run).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from criss_cross.runtime import n_cpus, resolve_device, torch_threads
from fusion_emotion.config import DIMENSIONS, FusionConfig
from fusion_emotion.data import open_dreamer
from fusion_emotion.encoders import LoadedEncoder, load_encoder
from fusion_emotion.protocol import BASELINES, Job, Runner, baseline_result, data_fingerprint
from fusion_emotion.rundir import RunDir, fold_result_path
from fusion_emotion.splits import make_folds

__all__ = ["RunResult", "train", "fold_result_path", "EXECUTION_FIELDS"]


#: Config fields that change how fast a run goes or how it is reported, never its numbers (left out of the run key).
EXECUTION_FIELDS = ("device", "eval_batch_size", "embed_batch_size", "save_encoders", "jobs", "level")
#: Config fields that add or drop rows and repeats; a resumed run may change them.
EXTENT_FIELDS = ("seeds", "ablations", "baselines", "fusion")


@dataclass
class RunResult:
    """What :func:`train` did. ``metrics`` is the content of ``metrics.json``."""

    out_dir: Path
    metrics: dict[str, Any]
    report_path: Path
    warnings: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Bars:
    """A rich progress display on stderr, or nothing."""

    def __init__(self, enabled: bool):
        from biosig_prep.progress import progress_bar  # biosig-prep is heavy to import

        self._p = progress_bar(enabled)

    def __enter__(self) -> _Bars:
        if self._p is not None:
            self._p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def task(self, description: str, total: int) -> Callable[[int], None]:
        if self._p is None:
            def nothing(n: int = 1) -> None:
                return None

            return nothing
        tid = self._p.add_task(description, total=total)
        p = self._p

        def advance(n: int = 1) -> None:
            p.advance(tid, n)

        return advance


def _say(msg: str, *, loud: bool = False, enabled: bool = True) -> None:
    if not enabled and not loud:
        return
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]WARNING: {msg}[/]" if loud else msg, highlight=False)


def _run_key(config: FusionConfig, encoders: Mapping[str, LoadedEncoder], data_fp: str) -> dict[str, Any]:
    cfg = config.model_dump(mode="json")
    for k in (*EXECUTION_FIELDS, *EXTENT_FIELDS):
        cfg.pop(k, None)
    return {
        "config": cfg,
        "encoders": {m: [e.fingerprint, e.input_scale] for m, e in sorted(encoders.items())},
        "data": data_fp,
    }


def _clip_balance(subject: Any, clip: Any, targets: Any) -> dict[str, float]:
    """Share of High (subject, clip) pairs per dimension (a clip's windows share its rating)."""
    import numpy as np

    _, first = np.unique(np.stack([subject, clip], axis=1), axis=0, return_index=True)
    return {dim: float(targets[first, j].mean()) for j, dim in enumerate(DIMENSIONS)}


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
    device = resolve_device(cfg.device)
    rundir = RunDir(Path(out_dir))
    rundir.create()
    t_start = time.perf_counter()

    data = open_dreamer(store, {m: cfg.stream(m) for m in cfg.modalities}, allow_incomplete=allow_incomplete)
    weights = {"eeg": eeg_weights, "ecg": ecg_weights}
    encoders: dict[str, LoadedEncoder] = {m: load_encoder(m, weights[m], cfg)
                                          for m in cfg.modalities}
    warnings = [e.warning for e in encoders.values() if e.warning]
    for w in warnings:
        _say(w, loud=True)
    if not cfg.freeze_encoders and device.type == "cpu":
        _say(
            "full fine-tuning on the CPU is slow (see docs/benchmarks.md); "
            "--freeze-encoders trains the heads on cached embeddings",
            enabled=progress,
        )
    data_fp = data_fingerprint(data)
    rundir.check_resume(_run_key(cfg, encoders, data_fp), resume)
    rundir.write_config(cfg.model_dump(mode="json"))
    targets = data.targets(cfg.threshold)
    rundir.write_json(
        rundir.run_json,
        {
            "key": _run_key(cfg, encoders, data_fp),
            "store": data.url,
            "weights": {m: (None if w is None else str(w)) for m, w in weights.items()},
            "encoders": {m: e.describe() for m, e in encoders.items()},
            "warnings": warnings,
            "data": {
                "n_windows": data.n_windows,
                "n_subjects": len(data.subjects),
                "n_clips": len({int(c) for c in data.clip}),
                "class_balance": {dim: float(targets[:, j].mean()) for j, dim in enumerate(DIMENSIONS)},
                "class_balance_clip": _clip_balance(data.subject, data.clip, targets),
            },
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        indent=2,
    )

    runner = Runner(cfg, data, encoders, rundir, device)
    splits = {seed: make_folds(data.subject, cfg.folds, seed) for seed in cfg.seeds}
    jobs = [Job(seed, fold, row) for seed in cfg.seeds for fold in splits[seed] for row in cfg.variants]
    todo = [j for j in jobs if not (resume and rundir.finished(j.seed, j.fold.index, j.row))]
    skipped = [j.name for j in jobs if j not in todo]
    if skipped:
        _say(f"resuming: {len(skipped)} of {len(jobs)} jobs already finished", enabled=progress)

    with _Bars(progress) as bar:
        if cfg.freeze_encoders and todo:
            runner.cache_embeddings(bar.task, data_fp)
        # frozen: the three heads of a job train one after another, an epoch each is a step
        per_job = cfg.epochs * (len(DIMENSIONS) if cfg.freeze_encoders else 1)
        advance = bar.task("training", len(todo) * per_job)

        def work(job: Job) -> None:
            rundir.write_fold_result(job.seed, job.fold.index, job.row, runner.run_job(job, advance))

        if cfg.freeze_encoders:
            n_jobs = max(1, min(cfg.jobs or n_cpus(), len(todo)))
            with torch_threads(1):
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

    if cfg.baselines:
        for seed in cfg.seeds:
            for fold in splits[seed]:
                for row in BASELINES:
                    rundir.write_fold_result(seed, fold.index, row, baseline_result(row, seed, fold, data, targets))
    metrics = write_report(rundir.root, seconds=time.perf_counter() - t_start)
    for w in warnings:
        _say(w, loud=True)
    return RunResult(
        out_dir=rundir.root,
        metrics=metrics,
        report_path=rundir.report,
        warnings=warnings,
        trained=[j.name for j in todo],
        skipped=skipped,
    )
