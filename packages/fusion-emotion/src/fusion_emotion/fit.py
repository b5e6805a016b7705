"""The epoch loop: train a module, keep each output column's best epoch, predict with it.

Pure training machinery: no files, no data set, no knowledge of rows or folds. The module is
whatever :mod:`fusion_emotion.protocol` builds (heads on cached embeddings, or encoders + heads),
reached through a ``forward(window_indices) -> logits`` closure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fusion_emotion.config import FusionConfig
from fusion_emotion.metrics import evaluate

__all__ = ["bce", "subject_auc", "fit", "predict", "best_logits", "merge_histories"]

Forward = Callable[[torch.Tensor], torch.Tensor]


def bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the batch and the heads."""
    return F.binary_cross_entropy_with_logits(logits.float(), y.float())


def subject_auc(scores: np.ndarray, y: np.ndarray, subject: np.ndarray) -> float:
    """Subject-averaged AUC of one dimension (pooled where no subject has both classes)."""
    m = evaluate(y, scores, subject)
    auc = m["subject"]["auc"] if m["subject"]["auc"] is not None else m["pooled"]["auc"]
    return float("nan") if auc is None else float(auc)


def fit(
    module: torch.nn.Module,
    groups: list[dict[str, Any]],
    forward: Forward,
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
            loss = bce(logits, y[idx].to(logits.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"training loss became {value} at epoch {epoch + 1}")
            total += value * len(idx)
            count += len(idx)
        sched.step()
        val_logits = predict(module, forward, val_t, config.eval_batch_size)
        losses = [float(bce(val_logits[:, j], y_val[:, j])) for j in range(k)]
        probs = torch.sigmoid(val_logits).numpy()
        aucs = [subject_auc(probs[:, j], y_val[:, j].numpy(), subject[val_idx]) for j in range(k)]
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


def predict(module: torch.nn.Module, forward: Forward, idx: torch.Tensor, batch: int) -> torch.Tensor:
    """Logits (n, k) on the CPU, in eval mode, without gradients."""
    module.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(idx), batch):
            outs.append(forward(idx[i : i + batch]).float().cpu())
    return torch.cat(outs)


def best_logits(
    module: torch.nn.Module,
    forward: Forward,
    best: list[tuple[int, dict[str, torch.Tensor]]],
    idx: torch.Tensor,
    batch: int,
) -> torch.Tensor:
    """Logits (n, k): column j from the state of column j's best epoch (one pass per distinct epoch)."""
    out = torch.empty(len(idx), len(best))
    for epoch in sorted({e for e, _ in best}):
        cols = [j for j, (e, _) in enumerate(best) if e == epoch]
        module.load_state_dict(best[cols[0]][1])
        logits = predict(module, forward, idx, batch)
        out[:, cols] = logits[:, cols]
    return out


def merge_histories(parts: list[dict[str, list]]) -> dict[str, list]:
    """Histories of heads trained one by one -> one history with a column per head."""
    n = len(parts[0]["train_loss"])
    return {
        "train_loss": [float(np.mean([p["train_loss"][e] for p in parts])) for e in range(n)],
        "val_loss": [float(np.mean([p["val_loss"][e] for p in parts])) for e in range(n)],
        "val_loss_cols": [[p["val_loss_cols"][e][0] for p in parts] for e in range(n)],
        "val_auc_cols": [[p["val_auc_cols"][e][0] for p in parts] for e in range(n)],
        "lr": parts[0]["lr"],
    }
