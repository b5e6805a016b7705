"""Sections of ``report.md`` beyond Table 1: the protocol line, the F1 floor of always answering
High, calibration and the missing-modality AUCs. Pure functions of ``metrics.json``'s content."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusion_emotion.baselines import always_high_f1
from fusion_emotion.config import DIMENSIONS, row_fusion
from fusion_emotion.metrics import evaluate, mean_std

__all__ = [
    "protocol_lines",
    "f1_floor_section",
    "calibration_section",
    "summarise_absent",
    "absent_section",
    "best_fusion_row",
]

#: the single-modality row that survives when a modality is absent
SURVIVOR = {"eeg": "ecg", "ecg": "eeg"}
#: a fusion row with a modality absent "collapses" when its AUC falls this far below the
#: surviving modality's own row (smaller gaps are within fold-to-fold noise on DREAMER's size)
COLLAPSE_AUC = 0.05


def protocol_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The report's first lines: protocol, seeds, level(s), threshold, modality dropout."""
    cfg = metrics["config"]
    n_folds = metrics.get("n_folds") or cfg["folds"]
    split = metrics.get("splits", {})
    first: Mapping[str, Any] = next(iter(split.values()), [{}])[0] if split else {}
    if cfg["folds"] == "loso":
        proto = (f"**Protocol: leave one subject out** ({n_folds} folds: each subject is the test set "
                 f"once, alone; {len(first.get('val', []))} validation subjects per fold taken from the "
                 "training side)")
    else:
        proto = (f"**Protocol: subject-independent {n_folds}-fold rotation** (train : validation : test "
                 f"= {n_folds - 2} : 1 : 1 groups of subjects; every subject tested once per seed)")
    levels = metrics.get("levels") or ["window"]
    level = " and ".join(levels) + (" level" if len(levels) == 1 else " levels")
    drop = cfg.get("modality_dropout") or 0.0
    line = (f"{proto}; seeds {cfg['seeds']}; scored at {level}; High = rating ≥ {cfg['threshold']}"
            + (" (torcheeg's default; the alternative > 3 is --threshold 4)" if cfg["threshold"] == 3 else "")
            + (f"; fusion rows trained with modality dropout p = {drop:g}" if drop else "") + ".")
    return [line]


def f1_floor_section(metrics: Mapping[str, Any], level: str) -> list[str]:
    """One sentence per dimension naming the rows whose F1 does not beat always-High's."""
    rows = (metrics.get("rows_by_level") or {}).get(level) or metrics["rows"]
    skip = {"always_high", "always_low"}
    parts = []
    for dim in DIMENSIONS:
        if "always_high" in rows:
            floor = rows["always_high"]["per_subject"][dim]["f1"]["mean"]
            what = "the always-high row"
        else:
            balance = metrics.get("class_balance_clip" if level == "clip" else "class_balance") or {}
            if dim not in balance:
                continue
            floor, what = always_high_f1(balance[dim]), "2a/(1+a)"
        if floor is None:
            continue
        weak = [f"{r['label']} ({100 * r['per_subject'][dim]['f1']['mean']:.1f})" for name, r in rows.items()
                if name not in skip and r["per_subject"][dim]["f1"]["mean"] is not None
                and r["per_subject"][dim]["f1"]["mean"] <= floor]
        if weak:
            parts.append(f"- **{dim}**: F1 not above always answering High ({what}, {100 * floor:.1f}): "
                         + ", ".join(weak) + ". Their F1 says nothing a constant guess would not; read the AUC.")
    return [*parts, ""] if parts else []


def calibration_section(metrics: Mapping[str, Any]) -> list[str]:
    """ECE (15 bins) and Brier score per row and dimension, on the pooled test predictions."""
    rows = metrics["rows"]
    if not any("ece" in r["pooled"][DIMENSIONS[0]] for r in rows.values()):
        return []
    head = " | ".join(f"{d.capitalize()} {m}" for d in DIMENSIONS for m in ("ECE", "Brier"))
    out = [
        "## Calibration",
        "",
        "Out-of-fold probabilities of High pooled over the test folds (mean over seeds). ECE: 15 "
        "equal-width bins, the window-weighted mean |observed share of High − mean probability| "
        "(0 = calibrated); Brier: mean squared error of the probability (0.25 = a constant 0.5). "
        "Lower is better for both; a row can rank well (AUC) and still be badly calibrated.",
        "",
        f"| Method | {head} |",
        "|---|" + "---:|" * (2 * len(DIMENSIONS)),
    ]
    for r in rows.values():
        cells = []
        for d in DIMENSIONS:
            for m in ("ece", "brier"):
                v = r["pooled"][d].get(m)
                cells.append("–" if v is None else f"{v:.3f}")
        out.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    best = best_fusion_row(metrics)
    if best is not None:
        out += ["", f"Reliability plot of the best fusion row ({rows[best]['label']}): `reliability.png`."]
    return [*out, ""]


def best_fusion_row(metrics: Mapping[str, Any]) -> str | None:
    """The fusion row with the highest per-subject AUC averaged over the dimensions."""
    scored = []
    for name, r in metrics["rows"].items():
        if row_fusion(name) is None:
            continue
        aucs = [r["per_subject"][d]["auc"]["mean"] for d in DIMENSIONS]
        if all(a is not None for a in aucs):
            scored.append((float(np.mean(aucs)), name))
    return max(scored)[1] if scored else None


def summarise_absent(results: Mapping[str, Sequence[Mapping[str, Any]]], dimensions: Sequence[str]) -> dict:
    """``{row: {absent modality: {dim: mean_std of the per-subject AUC over folds}}}`` for the rows
    whose fold files hold scores with a modality blanked at test time."""
    out: dict[str, Any] = {}
    for row, res in results.items():
        if not res or "scores_absent" not in res[0]:
            continue
        out[row] = {}
        for m in res[0]["scores_absent"]:
            out[row][m] = {
                dim: mean_std(
                    evaluate(r["y"][dim], r["scores_absent"][m][dim], r["test_subject"])["subject"]["auc"]
                    for r in res)
                for dim in dimensions
            }
    return out


def absent_section(metrics: Mapping[str, Any]) -> list[str]:
    """Per fusion row: AUC with EEG absent and with ECG absent, beside the surviving modality's
    own row; rows that fall below it are named."""
    absent = metrics.get("absent") or {}
    if not absent:
        return []
    rows = metrics["rows"]
    drop = metrics["config"].get("modality_dropout") or 0.0

    def auc(stat: Mapping[str, Any]) -> str:
        return "–" if stat["mean"] is None else f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"

    out = [
        "## A missing signal",
        "",
        "Each fusion row scored again with one modality absent at test time for every window: its "
        "tokens replaced by the strategy's learned absent token (the head is told it is missing, "
        "not shown zeros), beside the single-modality row of the modality that survives. "
        + (f"The fusion rows trained with modality dropout p = {drop:g}. " if drop else
           "These rows were trained without modality dropout (--modality-dropout 0): their absent "
           "token never trained, so this shows how a row that always saw both signals fares. ")
        + "Per-subject AUC, percent.",
        "",
        "| Method | Absent | " + " | ".join(f"{d.capitalize()} AUC" for d in DIMENSIONS) + " |",
        "|---|---|" + "---:|" * len(DIMENSIONS),
    ]
    collapses = []
    for row, per in absent.items():
        for m, dims in per.items():
            out.append(f"| {rows[row]['label']} | {m.upper()} | " + " | ".join(auc(dims[d]) for d in DIMENSIONS) + " |")
            own = rows.get(SURVIVOR[m])
            if own is None:
                continue
            for d in DIMENSIONS:
                a, b = dims[d]["mean"], own["per_subject"][d]["auc"]["mean"]
                if a is not None and b is not None and a < b - COLLAPSE_AUC:
                    collapses.append(f"{rows[row]['label']} without {m.upper()} on {d} "
                                     f"({100 * a:.1f} < {own['label']} {100 * b:.1f})")
    for single in ("eeg", "ecg"):
        if single in rows:
            out.append(f"| {rows[single]['label']} (own row) | {SURVIVOR[single].upper()} | "
                       + " | ".join(auc(rows[single]["per_subject"][d]["auc"]) for d in DIMENSIONS) + " |")
    out.append("")
    if collapses:
        out += [f"**Collapsed** (more than {100 * COLLAPSE_AUC:.0f} AUC points below the surviving "
                "modality's own row): " + "; ".join(collapses) + ".", ""]
    else:
        out += [f"No fusion row falls more than {100 * COLLAPSE_AUC:.0f} AUC points below the surviving "
                "modality's own row.", ""]
    return out
