"""The pretraining run: set-up, resume, the step loop, checkpoints, summary.

See :mod:`criss_cross.pretrain` for what a run does and writes. :func:`pretrain` resolves the
device, joins DDP, sets torch's threads and calls :func:`_run`, which builds (or restores) the
model and optimizer, streams batches, calls :func:`~criss_cross.pretrain.step.train_step`
for each step, logs, checkpoints, and returns a :class:`RunSummary`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from criss_cross import losses
from criss_cross.checkpoint import (
    latest_checkpoint,
    load_training_checkpoint,
    save_training_checkpoint,
)
from criss_cross.checkpoint.guard import check_training_memory
from criss_cross.config import RESUMABLE_CHANGES, PretrainConfig
from criss_cross.data import WindowDataset, make_loader, open_sources
from criss_cross.encoder import CrissCrossEncoder
from criss_cross.pretrain.distributed import Dist, close_distributed, init_distributed
from criss_cross.pretrain.metrics import MetricsLog, plot_loss_curve, truncate_metrics
from criss_cross.pretrain.schedule import SALT_DROPOUT, derive_seed, get_lr
from criss_cross.pretrain.step import Batch, draw_masks, train_step
from criss_cross.run_lock import one_writer
from criss_cross.runtime import resolve_device, torch_threads

__all__ = ["RunSummary", "parameter_digest", "pretrain"]

Report = Callable[[str], None]


@dataclass
class RunSummary:
    """What :func:`pretrain` did. ``losses`` holds the loss of every step this call ran;
    ``notes`` what it passed over (damaged checkpoints)."""

    out_dir: Path
    total_steps: int
    start_step: int
    losses: list[float] = field(default_factory=list)
    zero_mses: list[float] = field(default_factory=list)  # the zero predictor's, step by step
    final_loss: float = float("nan")
    elapsed_s: float = 0.0
    samples_per_s: float = 0.0
    data_wait_fraction: float = 0.0
    checkpoint: Path | None = None
    param_digest: str = ""  # sha256 of the final weights (equal on every DDP rank)
    world_size: int = 1
    notes: list[str] = field(default_factory=list)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def pretrain(
    config: PretrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    report: Report | None = None,
) -> RunSummary:
    """Pretrain the encoder with dual masking; see :mod:`criss_cross.pretrain`.

    Parameters
    ----------
    config : PretrainConfig
    out_dir : run directory (created); a directory that already holds checkpoints needs
        ``resume=True``.
    resume : continue from the newest intact checkpoint in ``out_dir`` (start fresh if there
        is none); damaged newer checkpoints are passed over and reported. The configuration
        must match the run's except for RESUMABLE_CHANGES.
    progress : show a rich progress bar (default: on rank 0).
    report : where one-line notes go (a damaged checkpoint passed over); default stderr, on
        rank 0.
    """
    if not config.stores:
        raise ValueError("no stores given: set stores in the config or pass --store")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is a file, not a folder: choose another --out")
    want = "cuda" if (config.device == "cuda" or
                      (config.device == "auto" and torch.cuda.is_available())) else "cpu"
    dist_info = init_distributed(want)
    try:
        with torch_threads(config.threads), _one_writer(out, dist_info.main, report):
            return _run(config, out, resume, progress, dist_info, report)
    finally:
        close_distributed(dist_info)


@contextlib.contextmanager
def _one_writer(out: Path, main: bool, report: Report | None) -> Iterator[None]:
    """Rank 0 holds ``out/writer.lock`` for the run (:func:`criss_cross.run_lock.one_writer`)."""
    if not main:
        yield
        return
    with one_writer(out, "pretraining run", report):
        yield


def _zero_head(model: torch.nn.Module) -> None:
    """Zero the weights and biases of the reconstruction head ``model.proj_out`` (in place)."""
    with torch.no_grad():
        for p in model.proj_out.parameters():
            p.zero_()


def _check_resume_config(saved: dict, config: PretrainConfig) -> None:
    now = config.model_dump(mode="json")
    diff = sorted(k for k in now if k not in RESUMABLE_CHANGES and now[k] != saved.get(k))
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise ValueError(
            f"cannot resume: the run was started with a different configuration ({detail}); "
            "resume with the run's own config (RUN_DIR/config.json) or start a new --out"
        )


def _prepare_out(out: Path, config: PretrainConfig, start_step: int) -> None:
    """Rank 0: the run folder, its config, metrics cut back to the checkpoint, no debris."""
    from biosig_prep.util import atomic_write_json

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config.model_dump(mode="json"))
    if start_step == 0:
        (out / "metrics.jsonl").unlink(missing_ok=True)
    else:
        truncate_metrics(out / "metrics.jsonl", start_step)
    ckdir = out / "checkpoints"
    for tmp in ckdir.glob(".tmp-*") if ckdir.exists() else []:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a killed run


def _run(config: PretrainConfig, out: Path, resume: bool, progress: bool | None,
         dist_info: Dist, report: Report | None) -> RunSummary:
    rank, world = dist_info.rank, dist_info.world_size
    device = resolve_device(config.device, dist_info.local_rank)
    if config.batch_size % world:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be divisible by the number of processes "
            f"({world}): it is the global batch, split evenly over the ranks"
        )
    local_batch = config.batch_size // world
    notes: list[str] = []

    def note(message: str) -> None:
        notes.append(message)
        if dist_info.main:
            (report or _stderr)(message)

    ckpt = latest_checkpoint(out, note) if out.exists() else None
    if ckpt is not None and not resume:
        raise ValueError(
            f"{out} already holds a run (checkpoint {ckpt.name}); pass resume=True (--resume) to "
            "continue it, or choose a new output directory"
        )
    if ckpt is not None and notes:
        note(f"resuming from {ckpt}, the newest intact checkpoint")

    sources = open_sources(config.stores, config.streams)
    for src in sources:  # the largest window shape decides the activations of a batch
        channels, patches = src.shape[0], src.shape[1]
        check_training_memory(config.encoder, local_batch, channels, patches,
                              config.max_memory_gb, f"{src.url} {src.stream}")
    total_windows = sum(s.n for s in sources)
    total_steps = config.total_steps(total_windows)
    warmup = config.warmup(total_steps)

    torch.manual_seed(derive_seed(config.seed, 0, 0))  # identical initial weights on all ranks
    model = CrissCrossEncoder(config.encoder).to(device)
    if config.head_init == "zero":
        _zero_head(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, betas=config.betas,
                            weight_decay=config.weight_decay)
    start_step = 0
    if ckpt is not None:
        _check_resume_config(json.loads((ckpt / "trainer.json").read_text())["config"], config)
        start_step = int(load_training_checkpoint(ckpt, model, opt)["step"])
    if dist_info.main:
        _prepare_out(out, config, start_step)

    net: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
    loss_fn = losses.DualMaskingLoss()

    dataset = WindowDataset(
        sources,
        batch_size=local_batch,
        seed=config.seed,
        rank=rank,
        world_size=world,
        shuffle_windows=config.shuffle_windows,
        scale=config.encoder.input_scale,
        mix_streams=config.mix_streams,
        skip_batches=start_step,
    )
    for w in range(max(1, config.num_workers)):  # fail early, not inside a worker
        if dataset.batches_in_epoch(0, w, max(1, config.num_workers)) == 0:
            raise ValueError(
                f"too few windows ({total_windows}) for batch {config.batch_size} over "
                f"{world} process(es) x {config.num_workers} workers"
            )
    loader = make_loader(dataset, num_workers=config.num_workers,
                         prefetch_factor=config.prefetch_factor,
                         pin_memory=device.type == "cuda", workers=config.loader_workers)
    use_bf16 = config.bf16 and device.type == "cuda"
    show = dist_info.main if progress is None else (progress and dist_info.main)

    summary = RunSummary(out_dir=out, total_steps=total_steps, start_step=start_step,
                         world_size=world, notes=notes)
    metrics_path = out / "metrics.jsonl"
    t_run = time.perf_counter()
    log = MetricsLog(metrics_path, t_run)
    wait_s = busy_s = 0.0
    samples = 0

    from biosig_prep.progress import progress_bar  # biosig-prep is heavy to import

    bar = progress_bar(show, "loss {task.fields[loss]:.4f}", "(zeros {task.fields[zero]:.4f})",
                       "{task.fields[sps]:.0f} samples/s")
    if bar is not None:
        task = bar.add_task("pretrain", total=total_steps, completed=start_step, loss=float("nan"),
                            zero=float("nan"), sps=0.0)
        bar.start()
    model.train()
    it = iter(loader)
    try:
        for step in range(start_step, total_steps):
            t0 = time.perf_counter()
            raw = next(it)
            t1 = time.perf_counter()
            batch = Batch.from_loader(raw, device)
            mask, masked_ch = draw_masks(
                tuple(batch.windows.shape[:3]), raw["channel_mask"], raw.get("patch_mask"),
                device, ratio=config.mask_ratio, proportion=config.channel_mask_proportion,
                seed=config.seed, rank=rank, step=step)
            torch.manual_seed(derive_seed(config.seed, rank, step, SALT_DROPOUT))
            lr = get_lr(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=warmup,
                        total_steps=total_steps)
            try:
                res = train_step(net, opt, params, loss_fn, batch, mask, masked_ch, lr=lr,
                                 grad_clip=config.grad_clip, bf16=use_bf16,
                                 dist_info=dist_info, step=step)
            except FloatingPointError as err:
                raise FloatingPointError(
                    f"{err}; the newest checkpoint is {latest_checkpoint(out)}. Lower lr or "
                    "check the input scaling."
                ) from None
            t2 = time.perf_counter()

            n_global = int(batch.windows.shape[0]) * world
            wait_s += t1 - t0
            busy_s += t2 - t0
            samples += n_global
            summary.losses.append(res.loss)
            summary.zero_mses.append(res.zero_mse)
            log.add(res.loss, res.zero_mse, res.terms, res.grad_norm, t1 - t0, t2 - t0, n_global)
            done = step + 1
            if bar is not None:
                bar.update(task, completed=done, loss=res.loss, zero=res.zero_mse,
                           sps=n_global / max(t2 - t0, 1e-9))
            if dist_info.main and (done % config.log_every == 0 or done == total_steps):
                log.write(done, batch.epoch, lr)
            if dist_info.main and (done % config.checkpoint_every == 0 or done == total_steps):
                summary.checkpoint = save_training_checkpoint(
                    out, done, model, opt, config.model_dump(mode="json"),
                    {"epoch": batch.epoch, "world_size": world, "total_steps": total_steps},
                    config.keep_checkpoints,
                )
    finally:
        if bar is not None:
            bar.stop()
        close = getattr(it, "close", None)  # stop reader threads / worker processes now
        if close is not None:
            close()
        del it

    summary.elapsed_s = time.perf_counter() - t_run
    summary.samples_per_s = samples / max(busy_s, 1e-9)
    summary.data_wait_fraction = wait_s / max(busy_s, 1e-9)
    summary.final_loss = summary.losses[-1] if summary.losses else float("nan")
    summary.param_digest = parameter_digest(model)
    if dist_info.main and metrics_path.is_file():
        plot_loss_curve(metrics_path, out / "loss_curve.png")
    if summary.checkpoint is None and dist_info.main:
        summary.checkpoint = latest_checkpoint(out)
    return summary


def parameter_digest(model: torch.nn.Module) -> str:
    """sha256 over the names and bytes of every parameter and buffer (for equality checks)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
