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

Every row is compared with the best single-modality row and the best baseline, so a dimension
makes several comparisons per metric; their p-values are corrected together with Holm's
step-down method (Holm 1979, :func:`holm`), which keeps the family-wise error rate at 0.05. A
difference is called *beyond noise* when the interval excludes 0 and the Holm-corrected p < 0.05.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["subject_values", "bootstrap_ci", "paired", "holm", "compare_rows", "markdown_section", "ALPHA", "N_BOOT"]

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


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None entries stay None and do not count).

    Sorted ascending, the i-th smallest of m p-values becomes ``min(1, max_{j <= i} (m - j) p_(j))``
    (0-based j): reject where the adjusted p < alpha, the same decisions as Holm's step-down test.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: float(pvalues[i]))):  # type: ignore[arg-type]
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))  # type: ignore[arg-type]
        out[i] = running
    return out


def _correct(comps: list[dict[str, Any]], metrics: Sequence[str]) -> None:
    """Add ``p_holm`` to every comparison (per metric, over the comparisons of one dimension) and
    decide ``distinguishable`` on it."""
    for m in metrics:
        adjusted = holm([c[m]["p"] for c in comps])
        for c, p in zip(comps, adjusted, strict=True):
            c[m]["p_holm"] = p
            lo, hi = c[m]["ci"]
            c[m]["distinguishable"] = bool(p is not None and (lo > 0 or hi < 0) and p < ALPHA)


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
    "kind" ("single" | "baseline"), metric: paired(...) + "p_holm" for each metric}]}}``;
    ``distinguishable`` is decided on the Holm-corrected p (over that dimension's comparisons).
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
        _correct(comps, metrics)
        out[dim] = {"best_single": best_single, "best_baseline": best_base, "comparisons": comps}
    return out


# ---- the report's section ------------------------------------------------------------------


def _delta(c: Mapping[str, Any]) -> str:
    if c["diff"] is None:
        return "–"
    lo, hi = c["ci"]
    return f"{100 * c['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _p(c: Mapping[str, Any], key: str = "p") -> str:
    p = c.get(key)
    return "–" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def markdown_section(metrics: Mapping[str, Any]) -> list[str]:
    """The paired-comparison table and, per dimension, what it says in words."""
    comps = metrics.get("comparisons") or {}
    if not any(c["comparisons"] for c in comps.values()):
        return []
    label = {row: r["label"] for row, r in metrics["rows"].items()}
    seeds = metrics["config"]["seeds"]
    out = [
        "## Paired comparisons: which differences are more than noise",
        "",
        "Each row against the best single-modality row and the best baseline of that dimension "
        "(best = highest mean per-subject AUC). Per test subject (averaged over seeds "
        f"{seeds} first), the difference of the two rows; shown: mean difference in percentage "
        "points with its 95 % bootstrap interval (subjects resampled), the Wilcoxon signed-rank "
        "p-value raw and Holm-corrected (Holm-Bonferroni over the comparisons of that dimension, "
        f"per metric), and n subjects. **yes** = the interval excludes 0 and the Holm-corrected "
        f"p < {ALPHA}.",
        "",
        "| Dimension | Row | vs | ΔAUC [95 % CI] | p | p (Holm) | ΔAcc [95 % CI] | p (Holm) | n | Beyond noise (AUC, Holm) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    words = []
    for dim, block in comps.items():
        for c in block["comparisons"]:
            a = c["auc"]
            out.append(
                f"| {dim} | {label[c['row']]} | {label[c['vs']]} | {_delta(a)} | {_p(a)} | {_p(a, 'p_holm')} | "
                f"{_delta(c['acc'])} | {_p(c['acc'], 'p_holm')} | {a['n']} | {'**yes**' if a['distinguishable'] else 'no'} |"
            )
        real = [c for c in block["comparisons"] if c["auc"]["distinguishable"]]
        noise = [c for c in block["comparisons"] if not c["auc"]["distinguishable"] and c["auc"]["diff"] is not None]
        parts = []
        for c in real:
            a = c["auc"]
            verb = "beats" if a["diff"] > 0 else "falls below"
            parts.append(f"{label[c['row']]} {verb} {label[c['vs']]} by {100 * abs(a['diff']):.1f} AUC "
                         f"points (Holm-corrected p = {_p(a, 'p_holm')})")
        text = f"- **{dim}**: " + ("; ".join(parts) + "." if parts else "no difference is beyond noise.")
        if real and noise:
            text += " Not distinguishable from noise: " + "; ".join(
                f"{label[c['row']]} vs {label[c['vs']]} ({100 * c['auc']['diff']:+.1f})" for c in noise) + "."
        words.append(text)
    out += [
        "",
        "In words (AUC; beyond noise = the bootstrap interval excludes 0 and the Holm-corrected "
        f"p < {ALPHA}, a family-wise error rate of {ALPHA} over the comparisons of each dimension):",
        "",
        *words,
        "",
        "The per-subject spread behind these numbers: `subject_auc.png`.",
        "",
    ]
    return out
