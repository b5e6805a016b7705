"""Splits, the linear probe, fine-tuning and the metrics of one evaluation.

- :func:`group_split`: whole groups (records, or subjects/sources...) go to train or test.
- :func:`fit_linear_probe`: a multi-label logistic regression (one ``nn.Linear`` on
  standardised embeddings, BCE, full-batch Adam with weight decay, fixed steps, seeded).
- :func:`finetune`: encoder + linear head trained end to end on windows (records' labels on
  each window), predictions averaged per record.
- :func:`evaluate`: macro AUROC, macro F1 (threshold 0.5) and the Challenge 2021 score.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from criss_cross.probe.challenge import challenge_labels, challenge_score, macro_auroc, macro_f1
from criss_cross.probe.data import pooled_embeddings

__all__ = ["evaluate", "finetune", "fit_linear_probe", "group_split", "predict_linear"]


def group_split(groups: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train and test masks over ``groups`` (N,): a seeded share of the distinct
    groups (at least one, never all) is held out whole."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction ({test_fraction}) must be between 0 and 1")
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError(f"cannot split {len(unique)} group(s) into train and test; split by "
                         "record or by a field with at least two values")
    rng = np.random.default_rng(seed)
    n_test = min(len(unique) - 1, max(1, round(test_fraction * len(unique))))
    test_groups = rng.permutation(unique)[:n_test]
    test = np.isin(groups, test_groups)
    return ~test, test


def fit_linear_probe(x: np.ndarray, y: np.ndarray, *, steps: int = 300, lr: float = 0.05,
                     weight_decay: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """Multi-label logistic regression on ``x`` (N, D) for ``y`` (N, K) binary.

    Returns the fitted ``mean``/``std`` (standardisation), ``weight`` (K, D), ``bias`` (K,)
    and the training ``losses`` (one per step).
    """
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.01)
        prior = yt.mean(dim=0).clamp(1e-3, 1 - 1e-3)
        head.bias.copy_(torch.log(prior / (1 - prior)))
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(head(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"mean": mean, "std": std, "weight": head.weight.detach().numpy().copy(),
            "bias": head.bias.detach().numpy().copy(), "losses": losses}


def predict_linear(probe: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Probabilities (N, K) of a :func:`fit_linear_probe` result."""
    z = ((x - probe["mean"]) / probe["std"]) @ probe["weight"].T + probe["bias"]
    return 1.0 / (1.0 + np.exp(-z))


def finetune(model: nn.Module, windows: np.ndarray, channel_mask: np.ndarray,
             patch_mask: np.ndarray | None, y: np.ndarray, *, epochs: int, lr: float = 1e-4,
             batch_size: int = 32, seed: int = 0, device: str | torch.device = "cpu",
             bf16: bool = False) -> tuple[nn.Module, nn.Linear, list[float]]:
    """Train ``model`` and a linear head on windows (N, C, P, S) for labels ``y`` (N, K).

    The input is scaled by the model's ``input_scale``; features are pooled over valid channels
    and patches. Returns the model, the head and the mean loss of each epoch.
    """
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = model.to(dev).train()
    head = nn.Linear(int(model.config.d_model), y.shape[1]).to(dev)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=lr, weight_decay=0.01)
    loss_fn = nn.BCEWithLogitsLoss()
    scale = float(model.config.input_scale)
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(windows))
        total, count = 0.0, 0
        for lo in range(0, len(order), batch_size):
            idx = np.sort(order[lo:lo + batch_size])
            x = torch.from_numpy(windows[idx]).to(dev) * scale
            cm = torch.from_numpy(channel_mask[idx]).to(dev)
            pm = None if patch_mask is None else torch.from_numpy(patch_mask[idx]).to(dev)
            target = torch.from_numpy(y[idx].astype(np.float32)).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                logits = head(pooled_embeddings(model, x, cm, pm))
            loss = loss_fn(logits.float(), target)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"fine-tuning loss is {loss.item()}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        history.append(total / max(count, 1))
    return model.eval(), head.eval(), history


def evaluate(y_true: np.ndarray, prob: np.ndarray, classes: list[str],
             codes_true: list[list[str]], threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of probabilities ``prob`` (R, K) for records with labels ``y_true`` (R, K) over
    ``classes`` (label codes); ``codes_true`` holds every record's full code list, so the
    Challenge score also charges the scored classes the probe does not model."""
    auroc, auroc_per = macro_auroc(y_true, prob)
    out = prob >= threshold
    f1, f1_per = macro_f1(y_true, out)
    predicted_codes = [[c for c, hit in zip(classes, row, strict=True) if hit] for row in out]
    score = challenge_score(challenge_labels(codes_true), challenge_labels(predicted_codes))
    return {
        "macro_auroc": _nan_none(auroc),
        "macro_f1": _nan_none(f1),
        "challenge_score": score,
        "threshold": threshold,
        "per_class": {c: {"auroc": _nan_none(a), "f1": _nan_none(f),
                          "support": int(y_true[:, k].sum())}
                      for k, (c, a, f) in enumerate(zip(classes, auroc_per, f1_per, strict=True))},
    }


def _nan_none(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
