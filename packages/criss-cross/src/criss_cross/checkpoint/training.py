"""Training checkpoints of a pretraining run: weights, optimizer, RNG and trainer state.

One folder per checkpoint, ``RUN/checkpoints/step_NNNNNNNN/``::

    model.safetensors + model.json   weights + EncoderConfig (criss_cross.load_checkpoint)
    optimizer.safetensors            AdamW moments and step counts (tensors only)
    rng.safetensors                  torch RNG states
    trainer.json                     step, config, optimizer hyper-parameters and scalars

written into a temporary folder, fsync'ed and renamed into place, so a run killed at any
moment (SIGKILL included) leaves only complete checkpoints; ``checkpoints/latest`` names the
newest. No pickle: tensors in safetensors, the rest in JSON. A write that fails (disk full)
removes its temporary folder, keeps the older checkpoints and raises one line naming the
checkpoint and the reason.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from criss_cross.checkpoint.model import save_checkpoint

if TYPE_CHECKING:
    from criss_cross.encoder import CrissCrossEncoder

__all__ = ["CHECKPOINT_FILES", "load_training_checkpoint", "save_training_checkpoint",
           "write_file"]

CHECKPOINT_FILES = ("model.safetensors", "model.json", "optimizer.safetensors",
                    "rng.safetensors", "trainer.json")


def write_file(path: Path, data: bytes) -> None:
    """Write and fsync one file of a checkpoint (the one place checkpoint bytes hit the disk)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path,
                  metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    write_file(path, save(tensors, metadata=metadata))


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


def _write_folder(tmp: Path, step: int, model: CrissCrossEncoder, opt: torch.optim.Optimizer,
                  config: dict[str, Any], extra: dict[str, Any]) -> None:
    from biosig_prep.util import fsync_dir

    save_checkpoint(model, tmp / "model", extra={"step": step, "pretrain": config},
                    writer=write_file)
    tensors, meta = _optimizer_to_flat(opt)
    _save_tensors(tensors, tmp / "optimizer.safetensors")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda.{i}"] = s
    _save_tensors(rng, tmp / "rng.safetensors")
    trainer = {"step": step, "config": config, "optimizer": meta, **extra}
    write_file(tmp / "trainer.json", json.dumps(trainer, indent=2).encode())
    fsync_dir(tmp)


def save_training_checkpoint(run: Path, step: int, model: CrissCrossEncoder,
                             opt: torch.optim.Optimizer, config: dict[str, Any],
                             extra: dict[str, Any], keep: int) -> Path:
    """Write checkpoint ``step`` of ``run`` atomically, point ``latest`` at it, keep the newest
    ``keep``. Raises OSError naming the checkpoint (its temporary folder removed) if the write
    fails."""
    from biosig_prep.util import atomic_write_json, fsync_dir

    ckdir = run / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = ckdir / name
    tmp = ckdir / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        _write_folder(tmp, step, model, opt, config, extra)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(err.errno, f"could not write checkpoint {final}: "
                      f"{err.strerror or err}") from None
    if final.exists():  # a re-run of the same step: set the old one aside first
        old = ckdir / f".old-{name}-{os.getpid()}"
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)
    fsync_dir(ckdir)
    atomic_write_json(ckdir / "latest", {"checkpoint": name, "step": step})
    existing = sorted(p for p in ckdir.glob("step_*") if p.is_dir())
    for p in existing[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def load_training_checkpoint(ckpt: Path, model: torch.nn.Module,
                             opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore weights, optimizer state and torch RNG from ``ckpt``; return trainer.json."""
    from safetensors.torch import load_file

    from criss_cross.checkpoint.guard import check_weights_fit
    from criss_cross.checkpoint.safetensors_file import read_header

    trainer = json.loads((ckpt / "trainer.json").read_text())
    config = getattr(model, "config", None)
    if config is not None:  # the weights' names and shapes against the run's encoder, first
        check_weights_fit(config, read_header(ckpt / "model.safetensors"),
                          str(ckpt / "model.safetensors"))
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
