"""Paired comparisons between rows, over test subjects: is a difference more than noise?

Every subject is tested once per seed, so each row has one value per (subject, seed) of a
metric; seeds are averaged per subject first, so a subject counts once. For two rows A and B of
one dimension, on the subjects where both are defined (a subject whose test windows hold one
class has no AUC):

- the mean difference A - B over subjects;
- its 95 % bootstrap confidence interval: subjects resampled with replacement (10,000 times,
  a fixed generator, so a report is reproducible), percentile interval;
- the Wilcoxon signed-rank p-value (two-sided, ``scipy.stats.wilcoxon``; zero differences
  dropped; 1.0 when every difference is zero).

A difference is called *distinguishable from noise* when the interval excludes 0 and p < 0.05.
With 23 subjects and several rows this is a screen, not a family-wise test: the report says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["subject_values", "bootstrap_ci", "paired", "compare_rows", "ALPHA", "N_BOOT"]

ALPHA = 0.05
N_BOOT = 10_000


def subject_values(results: Iterable[Mapping[str, Any]], dim: str, metric: str) -> dict[int, float]:
    """Per-subject value of ``metric`` on ``dim``, averaged over seeds (undefined ones left out).

    results : fold files of one row (``metrics[dim]["per_subject"][sid][metric]``).
    """
    acc: dict[int, list[float]] = {}
    for r in results:
        for sid, m in r["metrics"][dim]["per_subject"].items():
            v = m.get(metric)
            if v is not None and math.isfinite(float(v)):
                acc.setdefault(int(sid), []).append(float(v))
    return {sid: float(np.mean(v)) for sid, v in sorted(acc.items())}


def bootstrap_ci(values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``values`` (resampling the values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.percentile(means, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(lo), float(hi)


def paired(a: Mapping[int, float], b: Mapping[int, float], n_boot: int = N_BOOT) -> dict[str, Any]:
    """Mean difference a - b over the subjects both define, its bootstrap CI and Wilcoxon p."""
    from scipy.stats import wilcoxon

    subjects = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in subjects], dtype=np.float64)
    if d.size == 0:
        return {"n": 0, "diff": None, "ci": [None, None], "p": None, "distinguishable": False}
    lo, hi = bootstrap_ci(d, n_boot)
    if np.all(d == 0):
        p = 1.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small samples with ties: scipy notes the approximation
            p = float(wilcoxon(d).pvalue)
    distinct = bool((lo > 0 or hi < 0) and p < ALPHA)
    return {"n": int(d.size), "diff": float(d.mean()), "ci": [lo, hi], "p": p, "distinguishable": distinct}


def _best(rows: Sequence[str], values: Mapping[str, Mapping[int, float]]) -> str | None:
    scored = [(np.mean(list(values[r].values())), r) for r in rows if values.get(r)]
    return max(scored, key=lambda t: t[0])[1] if scored else None


def compare_rows(
    results: Mapping[str, Sequence[Mapping[str, Any]]],
    dimensions: Sequence[str],
    *,
    model_rows: Sequence[str],
    single_rows: Sequence[str],
    baseline_rows: Sequence[str],
    metrics: Sequence[str] = ("auc", "acc"),
) -> dict[str, Any]:
    """Per dimension: every model row against the best single-modality row and the best baseline.

    "Best" = highest mean per-subject AUC on that dimension. A row is not compared with itself.
    Returns ``{dim: {"best_single": row, "best_baseline": row, "comparisons": [{"row", "vs",
    "kind" ("single" | "baseline"), metric: paired(...) for each metric}]}}``.
    """
    out: dict[str, Any] = {}
    for dim in dimensions:
        values = {m: {row: subject_values(res, dim, m) for row, res in results.items()} for m in metrics}
        best_single = _best(single_rows, values["auc"])
        best_base = _best(baseline_rows, values["auc"])
        comps = []
        for row in model_rows:
            for kind, ref in (("single", best_single), ("baseline", best_base)):
                if ref is None or ref == row:
                    continue
                comps.append({"row": row, "vs": ref, "kind": kind,
                              **{m: paired(values[m][row], values[m][ref]) for m in metrics}})
        out[dim] = {"best_single": best_single, "best_baseline": best_base, "comparisons": comps}
    return out
