"""The report's figures (matplotlib's object API: no global state, no backend switch).

- loss curves per row, one panel per (seed, fold), as the paper's Figure 3;
- ROC curves of the pooled test windows, one panel per dimension;
- per-subject AUC: per dimension, each row's subjects as dots (seeds averaged per subject),
  with the mean and its 95 % bootstrap interval, so the spread across subjects shows at a glance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fusion_emotion.config import DIMENSIONS
from fusion_emotion.metrics import roc_auc, roc_curve
from fusion_emotion.stats import bootstrap_ci

__all__ = ["loss_figure", "roc_figure", "subject_auc_figure", "reliability_figure"]


def _figure(**kw: Any):
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kw)


def loss_figure(history: list[dict], title: str):
    n = len(history)
    cols = min(n, 5)
    rows = (n + cols - 1) // cols
    fig = _figure(figsize=(3.2 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, h in zip(axes.flat, history, strict=False):
        ep = np.arange(1, len(h["train_loss"]) + 1)
        ax.plot(ep, h["train_loss"], label="train", marker="o", ms=3)
        ax.plot(ep, h["val_loss"], label="validation", marker="o", ms=3)
        for epoch in sorted(set(h["best_epoch"].values())):
            ax.axvline(epoch, color="grey", ls=":", lw=1)
        ax.set_title(f"seed {h['seed']} fold {h['fold']}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("BCE loss")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def roc_figure(roc: Mapping[str, Mapping[str, Mapping[str, list]]], label: Callable[[str], str]):
    fig = _figure(figsize=(12, 4))
    axes = fig.subplots(1, len(DIMENSIONS))
    for ax, dim in zip(axes, DIMENSIONS, strict=True):
        for row, per_dim in roc.items():
            y, s = np.asarray(per_dim[dim]["y"]), np.asarray(per_dim[dim]["score"])
            if y.min() == y.max():
                continue
            fpr, tpr = roc_curve(y, s)
            ax.plot(fpr, tpr, label=f"{label(row)} ({100 * roc_auc(y, s):.1f})")
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        ax.set_title(f"{dim} (pooled test windows)")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    return fig


def subject_auc_figure(values: Mapping[str, Mapping[str, Mapping[int, float]]], rows: Sequence[str],
                       label: Callable[[str], str]):
    """values : dim -> row -> {subject: AUC (seeds averaged)}; rows top to bottom."""
    fig = _figure(figsize=(4.2 * len(DIMENSIONS), 0.9 + 0.42 * len(rows)))
    axes = fig.subplots(1, len(DIMENSIONS), sharey=True, squeeze=False)[0]
    rng = np.random.default_rng(0)  # jitter only
    for ax, dim in zip(axes, DIMENSIONS, strict=True):
        for i, row in enumerate(rows):
            y = len(rows) - 1 - i
            v = np.array(list(values[dim].get(row, {}).values()), dtype=float)
            if v.size == 0:
                continue
            ax.scatter(v, y + rng.uniform(-0.18, 0.18, v.size), s=12, alpha=0.55, color=f"C{i % 10}",
                       edgecolors="none")
            lo, hi = bootstrap_ci(v)
            ax.errorbar([v.mean()], [y], xerr=[[v.mean() - lo], [hi - v.mean()]], fmt="D", color="black",
                        ms=5, capsize=3, lw=1.5)
        ax.axvline(0.5, color="grey", ls=":", lw=1)
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(f"{dim}: AUC per test subject")
        ax.set_xlabel("AUC (dots: subjects; ◆ mean, bar 95 % CI)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)), [label(r) for r in reversed(rows)])
    return fig


def reliability_figure(roc: Mapping[str, Mapping[str, Sequence[float]]], title: str):
    """Reliability diagram per dimension: observed share of High against the mean predicted
    probability in 15 equal-width bins (marker area ~ windows in the bin), the diagonal = calibrated."""
    from fusion_emotion.calibration import ece, reliability_bins

    fig = _figure(figsize=(4.0 * len(DIMENSIONS), 3.6))
    axes = fig.subplots(1, len(DIMENSIONS), squeeze=False)[0]
    for ax, dim in zip(axes, DIMENSIONS, strict=True):
        y, p = np.asarray(roc[dim]["y"]), np.asarray(roc[dim]["score"])
        b = reliability_bins(y, p)
        full = b["count"] > 0
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        ax.plot(b["mean_prob"][full], b["frac_high"][full], color="C0", lw=1)
        ax.scatter(b["mean_prob"][full], b["frac_high"][full], s=10 + 200 * b["count"][full] / b["count"].sum(),
                   color="C0")
        ax.set_title(f"{dim}: ECE {ece(y, p):.3f}", fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted P(High)")
        ax.set_ylabel("observed share of High")
    fig.suptitle(f"{title}: reliability (15 bins, pooled test predictions)")
    return fig
