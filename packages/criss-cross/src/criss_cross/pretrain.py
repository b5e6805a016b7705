"""Dual-masking pretraining of the criss-cross encoder on biosig-prep stores.

``pretrain(config, out_dir)`` trains :class:`criss_cross.CrissCrossEncoder` to reconstruct
masked patches (patch masking with ratio ``r`` united with whole-channel masking of proportion
``r_c``, loss ½·L_patch + ½·L_channel, see :mod:`criss_cross.losses`) on windows streamed by
:mod:`criss_cross.loader`. Defaults follow CBraMod's recipe where the paper (Ghallab et al.,
arXiv 2512.15250) is silent: AdamW, lr 5e-4, weight decay 0.05, cosine schedule to 1e-5 after a
short linear warm-up, gradient clipping at 1, batch 128, r = 0.5, r_c = 0.25.

What a run directory holds::

    config.json            the resolved PretrainConfig
    metrics.jsonl          one line every ``log_every`` steps: loss (mean over the interval),
                           each loss term, zero_mse, lr, grad norm, samples/s, data-wait
                           fraction
    loss_curve.png         the loss against steps (like the paper's Figure 2), at the end,
                           with zero_mse dashed
    checkpoints/latest     name of the newest complete checkpoint
    checkpoints/step_NNNNNNNN/
        model.safetensors + model.json   weights + EncoderConfig (criss_cross.load_checkpoint)
        optimizer.safetensors            AdamW moments and step counts (tensors only)
        rng.safetensors                  torch RNG states
        trainer.json                     step, config, optimizer hyper-parameters; the
                                         learning rate is get_lr(step), so the step is the
                                         whole scheduler state

The reference a loss is read against. ``zero_mse`` is the same dual-masking loss for a model
that predicts zeros, over the same masked positions of the same batch (the mean square of the
target there; windows are band-passed, so about their variance). A loss near it means the model
has learnt the output scale, not the signal; the progress bar shows both.

The reconstruction head starts at zero (``head_init="zero"``, the default). CBraMod's
kaiming-normal (fan_out) init of ``proj_out`` makes a fresh model predict patches of ~300x the
variance of ECG in mV (loss ~8 mV^2 against a zero predictor's ~0.024 on the small preset),
and the first few hundred steps go into shrinking that output. Measured with the small preset
at batch 16 (loss / zero_mse, mean of steps 91-100 and 291-300): synthetic 12-lead ECG, 3.3
and 1.5 with CBraMod's head, 0.48 and 0.31 with a zero head; the 50 real CinC records, 2.1 and
1.3 against 0.76 and 0.55. Scaling the input to unit variance (input_scale 6) did not fix the
kaiming head (1.05 and 0.90) nor improve the zero head (0.50 and 0.30), so ECG stays in mV.
Only the head of a fresh run changes: the rest keeps CBraMod's init, key names and shapes are
unchanged (official weights still load), and ``head_init="cbramod"`` restores the original.

Reproducibility and resume. Every random draw of a step is derived from ``(seed, rank, step)``:
the data order (the loader's plan, see :mod:`criss_cross.loader`), the dual masks (an explicit
``torch.Generator``) and dropout (the global generator is re-seeded each step). A checkpoint is
written to a temporary directory and renamed into place, so a run killed at any moment (SIGKILL
included) leaves only complete checkpoints; ``resume=True`` restores weights and optimizer
state from the newest one and continues with the same batches and masks, so the loss curve is
the one an uninterrupted run draws.

Scale. One process by default. Under ``torchrun --nproc-per-node N`` (``RANK``/``WORLD_SIZE``/
``LOCAL_RANK`` set) the model is wrapped in DistributedDataParallel (gloo on CPU, nccl on GPU),
``batch_size`` is the global batch (each rank takes ``batch_size / N``) and every rank reads a
disjoint part of each epoch. bf16 autocast on GPU. Only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from criss_cross.config import EncoderConfig
from criss_cross.loader import WindowDataset, make_loader, open_sources, steps_per_epoch

__all__ = [
    "PretrainConfig",
    "RunSummary",
    "SMALL_PRESET",
    "get_lr",
    "pretrain",
    "latest_checkpoint",
    "parameter_digest",
    "plot_loss_curve",
]

# Fields that may change when a run is resumed; the others fix the data order and the model.
RESUMABLE_CHANGES = frozenset(
    {"steps", "epochs", "checkpoint_every", "keep_checkpoints", "log_every", "prefetch_factor",
     "device", "threads", "loader_workers"}
)

# ``--small``: what changes for a CPU demo. d_model/heads/patch stay CBraMod's, so the layer
# structure (criss-cross attention, patch embedding, positional conv) is the real one.
SMALL_PRESET: dict[str, Any] = {
    "encoder": {"n_layers": 2},
    "batch_size": 32,
    "steps": 300,
    "warmup_steps": 20,
    "checkpoint_every": 100,
    "log_every": 10,
}

_SALT_MASK = 0x3A5C_0001
_SALT_DROPOUT = 0x3A5C_0002


class PretrainConfig(BaseModel):
    """Everything a pretraining run needs; loads from YAML/JSON (:meth:`from_file`).

    ``batch_size`` is the global batch over all DDP ranks. ``steps`` (optimizer steps) wins
    over ``epochs`` (passes over all windows of all streams, rounded up to whole batches).
    ``warmup_steps`` None means 5 % of the steps. ``mask_ratio`` is r (Bernoulli per patch),
    ``channel_mask_proportion`` r_c (round(r_c * C) whole channels per window).
    ``num_workers`` readers (threads, or processes with ``loader_workers="process"``) read
    ahead of the training step; the data order depends on their number, not on their kind.
    ``threads`` sets torch's intra-op CPU threads for the run (None: torch's default); on a
    shared CPU, fewer threads than cores avoids OpenMP oversubscription, which can cost 10x.
    ``head_init`` is the initialisation of the reconstruction head ``proj_out`` of a fresh run:
    "zero" (default; the run starts at the zero predictor's loss, see the module docstring) or
    "cbramod" (kaiming-normal fan_out, as every other Linear).
    """

    model_config = ConfigDict(extra="forbid")

    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    stores: list[str] = Field(default_factory=list)
    streams: list[str] = Field(default_factory=lambda: ["ecg@500"])
    steps: int | None = Field(None, ge=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(5e-4, gt=0)
    min_lr: float = Field(1e-5, ge=0)
    warmup_steps: int | None = Field(None, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = Field(1.0, gt=0)
    mask_ratio: float = Field(0.5, ge=0, le=1)
    channel_mask_proportion: float = Field(0.25, ge=0, le=1)
    seed: int = Field(0, ge=0)
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    num_workers: int = Field(2, ge=0)
    loader_workers: Literal["thread", "process"] = "thread"
    prefetch_factor: int = Field(4, ge=1)
    shuffle_windows: int = Field(1024, ge=1)
    mix_streams: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True
    threads: int | None = Field(None, ge=1)
    head_init: Literal["zero", "cbramod"] = "zero"

    @model_validator(mode="after")
    def _check(self) -> PretrainConfig:
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        if not self.streams:
            raise ValueError("streams must name at least one stream, e.g. ecg@500")
        for s in self.streams:
            mod, _, fs = s.partition("@")
            if not mod or not fs.isdigit():
                raise ValueError(f"stream {s!r} is not of the form MODALITY@RATE, e.g. ecg@500")
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> PretrainConfig:
        """Read a YAML (.yaml/.yml) or JSON file."""
        return cls.model_validate(_read_mapping(path))

    def total_steps(self, total_windows: int) -> int:
        if self.steps is not None:
            return self.steps
        return self.epochs * steps_per_epoch(total_windows, self.batch_size)

    def warmup(self, total_steps: int) -> int:
        if self.warmup_steps is not None:
            return min(self.warmup_steps, total_steps)
        return max(1, round(0.05 * total_steps))


def _read_mapping(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return data


def get_lr(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine from lr to min_lr."""
    if step < warmup_steps:
        return lr * (step + 1) / (warmup_steps + 1)
    if step >= total_steps:
        return min_lr
    span = max(1, total_steps - warmup_steps)
    coeff = 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / span))
    return min_lr + coeff * (lr - min_lr)


@dataclass
class RunSummary:
    """What :func:`pretrain` did. ``losses`` holds the loss of every step this call ran."""

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


# --------------------------------------------------------------------------------------------
# Seeds, DDP, devices
# --------------------------------------------------------------------------------------------


def _derive_seed(*words: int) -> int:
    state = np.random.SeedSequence([int(w) for w in words]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
        created = True
    return _Dist(dist.get_rank(), dist.get_world_size(),
                 int(os.environ.get("LOCAL_RANK", "0")), created)


def _resolve_device(choice: str, local_rank: int) -> torch.device:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no GPU; use --device cpu")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = v
    for pid, sc in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(sc)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def _save_checkpoint(run: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer,
                     config: PretrainConfig, extra: dict[str, Any], keep: int) -> Path:
    """Write checkpoint ``step`` atomically: a temporary directory renamed into place."""
    from safetensors.torch import save_file

    from criss_cross.checkpoint import save_checkpoint

    ckdir = run / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = ckdir / name
    tmp = ckdir / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_checkpoint(model, tmp / "model", extra={"step": step, "pretrain": config.model_dump(mode="json")})
    tensors, meta = _optimizer_to_flat(opt)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda.{i}"] = s
    save_file(rng, str(tmp / "rng.safetensors"))
    trainer = {"step": step, "config": config.model_dump(mode="json"), "optimizer": meta, **extra}
    (tmp / "trainer.json").write_text(json.dumps(trainer, indent=2))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    if final.exists():  # a re-run of the same step: set the old one aside first
        old = ckdir / f".old-{name}-{os.getpid()}"
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)
    _fsync_dir(ckdir)
    _write_json_atomic(ckdir / "latest", {"checkpoint": name, "step": step})
    existing = sorted(p for p in ckdir.glob("step_*") if p.is_dir())
    for p in existing[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or None."""
    ckdir = Path(run_dir) / "checkpoints"
    pointer = ckdir / "latest"
    if pointer.is_file():
        name = json.loads(pointer.read_text())["checkpoint"]
        if (ckdir / name / "trainer.json").is_file():
            return ckdir / name
    done = sorted(p for p in ckdir.glob("step_*") if (p / "trainer.json").is_file())
    return done[-1] if done else None


def _load_trainer_state(ckpt: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
    from safetensors.torch import load_file

    trainer = json.loads((ckpt / "trainer.json").read_text())
    weights = load_file(str(ckpt / "model.safetensors"))
    model.load_state_dict(weights, strict=True)
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    opt.load_state_dict(_optimizer_from_flat(tensors, trainer["optimizer"]))
    rng = load_file(str(ckpt / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        states = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda."))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    return trainer


def _check_resume_config(saved: dict, config: PretrainConfig) -> None:
    now = config.model_dump(mode="json")
    diff = sorted(k for k in now if k not in RESUMABLE_CHANGES and now[k] != saved.get(k))
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise ValueError(
            f"cannot resume: the run was started with a different configuration ({detail}); "
            "resume with the run's own config (RUN_DIR/config.json) or start a new --out"
        )


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after ``step`` (a killed run may have logged past its checkpoint)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError):
            continue
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def plot_loss_curve(metrics: str | Path, out: str | Path) -> Path:
    """PNG of the pretraining loss (and its terms) against steps, from metrics.jsonl; the
    zero predictor's loss (``zero_mse``, the reference) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    out = Path(out)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if rows:
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["loss"] for r in rows], label="total", color="C0", lw=1.6)
        for i, key in enumerate(k for k in rows[0] if k.startswith("loss_") and k != "loss_last"):
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=key[5:], lw=1.0,
                    alpha=0.8, color=f"C{i + 1}")
        if "zero_mse" in rows[0]:
            ax.plot(steps, [r.get("zero_mse", float("nan")) for r in rows], ls="--", lw=1.2,
                    color="0.35", label="predict zeros")
        if min(r["loss"] for r in rows) > 0:
            ax.set_yscale("log")
        ax.legend(frameon=False)
    ax.set_xlabel("step")
    ax.set_ylabel("masked reconstruction loss (MSE)")
    ax.set_title("Dual-masking pretraining")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def _zero_head(model: torch.nn.Module) -> None:
    """Zero the weights and biases of the reconstruction head ``model.proj_out`` (in place)."""
    with torch.no_grad():
        for p in model.proj_out.parameters():
            p.zero_()


def _loss_terms(loss_fn: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor, masked_channels: torch.Tensor,
                valid: torch.Tensor, valid_patches: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total, terms) of the dual-masking loss; zero-filled leads (``valid`` False) and padded
    patches (``valid_patches`` False) are left out of every term by the loss itself."""
    kw = {} if valid_patches is None else {"valid_patches": valid_patches}
    out = loss_fn(pred, target, mask, masked_channels=masked_channels, valid_channels=valid,
                  **kw)
    return out.total, dict(out.terms)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def pretrain(
    config: PretrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
) -> RunSummary:
    """Pretrain the encoder with dual masking; see the module docstring.

    Parameters
    ----------
    config : PretrainConfig
    out_dir : run directory (created); a directory that already holds checkpoints needs
        ``resume=True``.
    resume : continue from the newest complete checkpoint in ``out_dir`` (start fresh if there
        is none). The configuration must match the run's except for RESUMABLE_CHANGES.
    progress : show a rich progress bar (default: on rank 0).
    """
    from criss_cross.encoder import CrissCrossEncoder
    from criss_cross.losses import DualMaskingLoss
    from criss_cross.masking import dual_mask

    if not config.stores:
        raise ValueError("no stores given: set stores in the config or pass --store")
    out = Path(out_dir)
    want = "cuda" if (config.device == "cuda" or
                      (config.device == "auto" and torch.cuda.is_available())) else "cpu"
    dist_info = _init_distributed(want)
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, out, resume, progress, dist_info, CrissCrossEncoder,
                    DualMaskingLoss, dual_mask)
    finally:
        torch.set_num_threads(threads)
        if dist_info.created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _run(config, out, resume, progress, dist_info, encoder_cls, loss_cls, dual_mask) -> RunSummary:
    import torch.distributed as dist

    rank, world = dist_info.rank, dist_info.world_size
    device = _resolve_device(config.device, dist_info.local_rank)
    if config.batch_size % world:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be divisible by the number of processes "
            f"({world}): it is the global batch, split evenly over the ranks"
        )
    local_batch = config.batch_size // world

    ckpt = latest_checkpoint(out) if out.exists() else None
    if ckpt is not None and not resume:
        raise ValueError(
            f"{out} already holds a run (checkpoint {ckpt.name}); pass resume=True (--resume) to "
            "continue it, or choose a new output directory"
        )

    sources = open_sources(config.stores, config.streams)
    total_windows = sum(s.n for s in sources)
    total_steps = config.total_steps(total_windows)
    warmup = config.warmup(total_steps)

    torch.manual_seed(_derive_seed(config.seed, 0, 0))  # identical initial weights on all ranks
    model = encoder_cls(config.encoder).to(device)
    if config.head_init == "zero":
        _zero_head(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, betas=config.betas,
                            weight_decay=config.weight_decay)
    start_step = 0
    if ckpt is not None:
        _check_resume_config(json.loads((ckpt / "trainer.json").read_text())["config"], config)
        trainer = _load_trainer_state(ckpt, model, opt)
        start_step = int(trainer["step"])
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(out / "config.json", config.model_dump(mode="json"))
        if start_step == 0:
            (out / "metrics.jsonl").unlink(missing_ok=True)
        else:
            _truncate_metrics(out / "metrics.jsonl", start_step)
        for tmp in (out / "checkpoints").glob(".tmp-*") if (out / "checkpoints").exists() else []:
            shutil.rmtree(tmp, ignore_errors=True)  # left by a killed run

    net: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
    loss_fn = loss_cls()

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
                         world_size=world)
    metrics_path = out / "metrics.jsonl"
    interval: dict[str, list[float]] = {}
    wait_s = busy_s = 0.0
    samples = 0
    t_run = time.perf_counter()
    epoch = 0

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
            batch = next(it)
            t1 = time.perf_counter()
            x = batch["windows"].to(device, non_blocking=True)
            valid = batch["channel_mask"].to(device, non_blocking=True)
            patches_cpu = batch.get("patch_mask")  # (B, P) True = real samples; None: all
            patches = None if patches_cpu is None else patches_cpu.to(device, non_blocking=True)
            epoch = int(batch["epoch"])
            gen = torch.Generator().manual_seed(_derive_seed(config.seed, rank, step, _SALT_MASK))
            mask, masked_ch = dual_mask(tuple(x.shape[:3]), config.mask_ratio,
                                        config.channel_mask_proportion, gen,
                                        valid_channels=batch["channel_mask"],
                                        valid_patches=patches_cpu)
            mask, masked_ch = mask.to(device), masked_ch.to(device)
            torch.manual_seed(_derive_seed(config.seed, rank, step, _SALT_DROPOUT))
            lr = get_lr(step, lr=config.lr, min_lr=config.min_lr, warmup_steps=warmup,
                        total_steps=total_steps)
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                pred = net(x, mask)
            loss, terms = _loss_terms(loss_fn, pred.float(), x, mask, masked_ch, valid, patches)
            with torch.no_grad():
                zero_mse = _loss_terms(loss_fn, torch.zeros_like(x), x, mask, masked_ch, valid,
                                       patches)[0]
            values = torch.stack([loss.detach(), zero_mse.float(),
                                  *(t.detach().float() for t in terms.values())])
            if world > 1:
                dist.all_reduce(values)
                values /= world
            values_list = values.tolist()
            loss_value, zero_value = values_list[0], values_list[1]
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"non-finite loss ({loss_value}) at step {step}; the newest checkpoint is "
                    f"{latest_checkpoint(out)}. Lower lr or check the input scaling."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.grad_clip))
            else:
                grad_norm = float(torch.linalg.vector_norm(
                    torch.stack([p.grad.norm() for p in params if p.grad is not None])))
            opt.step()
            t2 = time.perf_counter()

            n_local = int(x.shape[0])
            wait_s += t1 - t0
            busy_s += t2 - t0
            samples += n_local * world
            summary.losses.append(loss_value)
            summary.zero_mses.append(zero_value)
            rec = interval
            rec.setdefault("loss", []).append(loss_value)
            rec.setdefault("zero_mse", []).append(zero_value)
            for k, v in zip(terms, values_list[2:], strict=True):
                rec.setdefault(f"loss_{k}", []).append(v)
            rec.setdefault("grad_norm", []).append(grad_norm)
            rec.setdefault("wait", []).append(t1 - t0)
            rec.setdefault("time", []).append(t2 - t0)
            rec.setdefault("n", []).append(n_local * world)
            done = step + 1
            if bar is not None:
                bar.update(task, completed=done, loss=loss_value, zero=zero_value,
                           sps=(n_local * world) / max(t2 - t0, 1e-9))
            if dist_info.main and (done % config.log_every == 0 or done == total_steps):
                t_int = sum(rec["time"])
                line = {
                    "step": done,
                    "epoch": epoch,
                    "loss": float(np.mean(rec["loss"])),
                    "loss_last": loss_value,
                    **{k: float(np.mean(v)) for k, v in rec.items() if k.startswith("loss_")},
                    "zero_mse": float(np.mean(rec["zero_mse"])),
                    "lr": lr,
                    "grad_norm": float(np.mean(rec["grad_norm"])),
                    "samples_per_s": sum(rec["n"]) / max(t_int, 1e-9),
                    "data_wait_fraction": sum(rec["wait"]) / max(t_int, 1e-9),
                    "elapsed_s": time.perf_counter() - t_run,
                }
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(line) + "\n")
                interval = {}
            if done % config.checkpoint_every == 0 or done == total_steps:
                if dist_info.main:
                    summary.checkpoint = _save_checkpoint(
                        out, done, model, opt, config,
                        {"epoch": epoch, "world_size": world, "total_steps": total_steps},
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
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def apply_preset(data: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """``preset`` under ``data``: explicit values win, nested dicts merge."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in preset.items()}
    for k, v in data.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        else:
            merged[k] = v
    return merged
