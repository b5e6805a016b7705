"""metrics.json, report.md (the paper's Table 1 layout) and the plots of a run folder.

Pure: it reads the run folder's files (config.yaml, run.json, folds/) and writes the report;
it fits nothing and imports nothing of the training side.

Table 1 of Ghallab et al. (arXiv 2512.15250) has one row per method and, for each of valence,
arousal and dominance, accuracy, F1 and ROC-AUC in percent. ``report.md`` puts the paper's
published row beside this run's rows: the fusion rows (one per strategy), the EEG-only and
ECG-only ablations and the baselines (majority class, per-clip majority, always high, always
low), at window level, clip level or both (:mod:`fusion_emotion.levels`). Each of this run's cells is the mean ±
standard deviation (ddof 0) over the (seed, fold) test sets of the metric computed per test
subject and averaged across subjects. Below it, paired statistics (:mod:`fusion_emotion.stats`)
say which differences between rows are beyond noise (Holm-corrected); calibration (ECE, Brier)
and the missing-modality AUCs follow (:mod:`fusion_emotion.report_sections`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fusion_emotion import stats
from fusion_emotion.baselines import always_high_f1
from fusion_emotion.calibration import brier, ece
from fusion_emotion.config import DIMENSIONS, FusionConfig, row_fusion
from fusion_emotion.levels import clip_result, levels_of
from fusion_emotion.metrics import evaluate, mean_std
from fusion_emotion.plots import loss_figure, reliability_figure, roc_figure, subject_auc_figure
from fusion_emotion.report_sections import (
    absent_section,
    best_fusion_row,
    calibration_section,
    f1_floor_section,
    protocol_lines,
    summarise_absent,
)
from fusion_emotion.rundir import RunDir
from fusion_emotion.splits import n_folds_of

__all__ = [
    "PAPER_ROW",
    "ROW_LABELS",
    "report_path",
    "build_metrics",
    "write_report",
    "render_markdown",
    "compare_runs",
    "row_label",
]

SCHEMA = 1
#: Table 1 of the paper, "Ours" (percent): dimension -> (accuracy, F1, AUC).
PAPER_ROW: dict[str, dict[str, float]] = {
    "valence": {"acc": 69.44, "f1": 81.14, "auc": 68.69},
    "arousal": {"acc": 75.00, "f1": 84.21, "auc": 84.79},
    "dominance": {"acc": 79.63, "f1": 88.30, "auc": 86.69},
}
PAPER_LABEL = "Ghallab et al. (paper)"
ROW_LABELS: dict[str, str] = {
    "fusion": "Fusion (EEG+ECG)",
    "eeg": "EEG only",
    "ecg": "ECG only",
    "majority": "Majority class",
    "per_clip": "Per-clip majority",
    "always_high": "Always high",
    "always_low": "Always low",
}
BASELINES = ("majority", "per_clip", "always_high", "always_low")
#: the baselines a model row is compared with (always high/low: AUC 0.5 like the majority row)
COMPARED_BASELINES = ("majority", "per_clip")
SINGLE_ROWS = ("eeg", "ecg")
METRICS = ("acc", "f1", "auc")
_METRIC_NAMES = {"acc": "Acc", "f1": "F1", "auc": "AUC"}


def report_path(run_dir: str | Path) -> Path:
    """The absolute path of a run's ``report.md`` (what ``make demo`` prints at the end)."""
    return (Path(run_dir) / "report.md").resolve()


# ---- collecting -----------------------------------------------------------------------------


def row_label(row: str, several_fusions: bool = False) -> str:
    """The report's name of a row ("Fusion: gated (EEG+ECG)", "EEG only", ...)."""
    strategy = row_fusion(row)
    if strategy is not None and (strategy != "concat" or several_fusions):
        return f"Fusion: {strategy} (EEG+ECG)"
    return ROW_LABELS[row]


def _load_results(rundir: RunDir, config: FusionConfig, n_folds: int) -> dict[str, list[dict]]:
    rows = list(config.variants) + (list(BASELINES) if config.baselines else [])
    results: dict[str, list[dict]] = {r: [] for r in rows}
    folds = sorted(int(p.name[4:]) for p in (rundir.folds / f"seed{config.seeds[0]}").glob("fold*"))
    if len(folds) != n_folds:
        raise FileNotFoundError(f"{rundir.folds} holds {len(folds)} of {n_folds} folds: the run is not finished")
    for seed in config.seeds:
        for fold in range(n_folds):
            for row in rows:
                path = rundir.fold_result(seed, fold, row)
                if not path.is_file():
                    raise FileNotFoundError(f"{path} is missing: the run is not finished")
                results[row].append(rundir.read_json(path))
    return results


def _summarise(results: dict[str, list[dict]], seeds: list[int], several: bool) -> dict:
    rows: dict[str, Any] = {}
    for row, res in results.items():
        per_subject: dict[str, dict[str, Any]] = {}
        pooled: dict[str, dict[str, Any]] = {}
        for dim in DIMENSIONS:
            per_subject[dim] = {
                m: mean_std(r["metrics"][dim]["subject"][m] for r in res) for m in METRICS
            }
            per_subject[dim]["n_auc_excluded"] = int(
                sum(r["metrics"][dim]["subject"]["n_auc_excluded"] for r in res)
            )
            per_subject[dim]["n_subject_tests"] = int(
                sum(r["metrics"][dim]["subject"]["n_subjects"] for r in res)
            )
            # out-of-fold predictions of each seed cover every window once: pool, then average seeds
            seed_vals = []
            for seed in seeds:
                mine = [r for r in res if r["seed"] == seed]
                y = np.concatenate([np.asarray(r["y"][dim], dtype=np.int64) for r in mine])
                sc = np.concatenate([np.asarray(r["scores"][dim]) for r in mine])
                subj = np.concatenate([np.asarray(r["test_subject"]) for r in mine])
                seed_vals.append({**evaluate(y, sc, subj)["pooled"], "ece": ece(y, sc), "brier": brier(y, sc)})
            pooled[dim] = {m: mean_std(v[m] for v in seed_vals)["mean"] for m in (*METRICS, "ece", "brier")}
        rows[row] = {"label": row_label(row, several), "per_subject": per_subject, "pooled": pooled}
    return rows


def _splits(results: dict[str, list[dict]], seeds: list[int]) -> dict[str, list[dict]]:
    first = next(iter(results.values()))
    return {
        f"seed{seed}": [{"fold": r["fold"], **r["subjects"]} for r in sorted(first, key=lambda r: r["fold"])
                        if r["seed"] == seed]
        for seed in seeds
    }


def build_metrics(out_dir: str | Path, *, seconds: float | None = None) -> dict[str, Any]:
    """The content of ``metrics.json`` from the finished job files of ``out_dir``."""
    rundir = RunDir(Path(out_dir))
    config = FusionConfig.from_file(rundir.config)
    run = rundir.read_json(rundir.run_json)
    info = run.get("data", {})
    n_folds = n_folds_of(config.folds, int(info.get("n_subjects") or 0))
    window_results = _load_results(rundir, config, n_folds)
    levels = levels_of(config.level)
    primary = levels[0]
    by_level = {"window": window_results}
    if "clip" in levels:
        by_level["clip"] = {row: [clip_result(r, DIMENSIONS) for r in res] for row, res in window_results.items()}
    results = by_level[primary]
    several = len(config.fusion) > 1
    model_rows = list(config.variants)  # every trained row is compared
    folds = {
        row: [
            {
                "seed": r["seed"],
                "fold": r["fold"],
                "best_epoch": r.get("best_epoch"),
                "test_subjects": r["subjects"]["test"],
                **{dim: {m: r["metrics"][dim]["subject"][m] for m in METRICS} for dim in DIMENSIONS},
            }
            for r in res
        ]
        for row, res in results.items()
    }
    history = {
        row: [
            {"seed": r["seed"], "fold": r["fold"], "best_epoch": r["best_epoch"], **r["history"]}
            for r in res
        ]
        for row, res in results.items()
        if row not in BASELINES
    }
    subject_auc = {
        dim: {row: {str(k): v for k, v in stats.subject_values(res, dim, "auc").items()}
              for row, res in results.items()}
        for dim in DIMENSIONS
    }
    return {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "store": run.get("store"),
        "n_windows": info.get("n_windows"),
        "n_subjects": info.get("n_subjects"),
        "n_clips": info.get("n_clips"),
        "mode": "frozen encoders, cached embeddings" if config.freeze_encoders else "full fine-tuning",
        "config": config.model_dump(mode="json"),
        "weights": run.get("weights"),
        "encoders": run.get("encoders"),
        "warnings": run.get("warnings", []),
        "class_balance": info.get("class_balance", {}),
        "class_balance_clip": info.get("class_balance_clip", {}),
        "levels": levels,
        "n_folds": n_folds,
        "splits": _splits(results, config.seeds),
        "rows": _summarise(results, config.seeds, several),
        "rows_by_level": {lv: _summarise(res, config.seeds, several) for lv, res in by_level.items()
                          if lv in levels},
        "absent": summarise_absent(results, DIMENSIONS),
        "comparisons": stats.compare_rows(
            results, DIMENSIONS, model_rows=model_rows,
            single_rows=[r for r in SINGLE_ROWS if r in results and len(config.modalities) > 1],
            baseline_rows=[r for r in COMPARED_BASELINES if r in results],
        ),
        "subject_auc": subject_auc,
        "folds": folds,
        "history": history,
        "seconds": seconds,
        "_roc": {
            row: {
                dim: {
                    "y": np.concatenate([np.asarray(r["y"][dim], dtype=np.int64) for r in res]).tolist(),
                    "score": np.concatenate([np.asarray(r["scores"][dim]) for r in res]).tolist(),
                }
                for dim in DIMENSIONS
            }
            for row, res in results.items()
        },
    }


# ---- rendering ------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def _cell(stat: Mapping[str, Any]) -> str:
    if stat["mean"] is None:
        return "–"
    return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"


def _header(first: str = "Method") -> list[str]:
    cols = [f"{dim.capitalize()} {_METRIC_NAMES[m]}" for dim in DIMENSIONS for m in METRICS]
    return [
        "| " + " | ".join([first, *cols]) + " |",
        "|" + "---|" + "---:|" * len(cols),
    ]


def table1(metrics: Mapping[str, Any], *, paper: bool = True, label_prefix: str = "",
           level: str | None = None) -> list[str]:
    """Markdown lines of Table 1 (per-subject means, mean ± std over folds); ``level`` picks
    ``rows_by_level[level]`` (default: the primary level's ``rows``). With the paper's row
    comes the F1 that always answering High reaches on this store's labels, 2a/(1+a)."""
    lines = []
    if paper:
        cells = [f"{PAPER_ROW[dim][m]:.2f}" for dim in DIMENSIONS for m in METRICS]
        lines.append("| " + " | ".join([PAPER_LABEL, *cells]) + " |")
        balance = metrics.get("class_balance_clip" if level == "clip" else "class_balance") or {}
        if balance:
            cells = [f"{100 * always_high_f1(balance[dim]):.2f}" if m == "f1" else ""
                     for dim in DIMENSIONS for m in METRICS]
            lines.append("| " + " | ".join(["F1 of always High on this store's labels, 2a/(1+a)", *cells]) + " |")
    rows = metrics["rows"] if level is None else metrics["rows_by_level"][level]
    for row in rows.values():
        cells = [_cell(row["per_subject"][dim][m]) for dim in DIMENSIONS for m in METRICS]
        lines.append("| " + " | ".join([label_prefix + row["label"], *cells]) + " |")
    return lines


def render_markdown(metrics: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    cfg = metrics["config"]
    seeds = cfg["seeds"]
    n_folds = metrics.get("n_folds") or cfg["folds"]
    levels = metrics.get("levels") or ["window"]
    out: list[str] = ["# DREAMER emotion recognition: EEG + ECG fusion", "", *protocol_lines(metrics), ""]
    for w in metrics.get("warnings", []):
        out += [f"> **WARNING:** {w}", ">"]
    if metrics.get("warnings"):
        out.append("")
    out += [
        f"Store `{metrics['store']}`: {metrics['n_windows']} windows of {metrics['n_subjects']} "
        f"subjects × {metrics['n_clips']} clips. Mode: {metrics['mode']}. Best epoch by validation "
        f"{cfg['select_by']}.",
        "",
        "## Table 1",
        "",
        "Percent. This run: metric per test subject, averaged across subjects, then mean ± std "
        f"over {len(seeds) * n_folds} test folds. The paper's row is its published figures (clip "
        "level, one split); below it, the F1 that answering High for everything reaches on this "
        "store's labels at that level (a = share of High): a row's F1 says something only above it.",
        "",
    ]
    for level in levels:
        title = {"window": "Window level (every 10-s window scored)",
                 "clip": "Clip level (a clip's score = mean of its windows' probabilities; the paper's unit)"}
        if len(levels) > 1:
            out += [f"### {title[level]}", ""]
        else:
            out += [f"Unit: {title[level].lower()}.", ""]
        out += [*_header(), *table1(metrics, level=level if "rows_by_level" in metrics else None), ""]
        out += f1_floor_section(metrics, level)
    excl = {
        dim: metrics["rows"][next(iter(metrics["rows"]))]["per_subject"][dim]["n_auc_excluded"]
        for dim in DIMENSIONS
    }
    n_tests = metrics["rows"][next(iter(metrics["rows"]))]["per_subject"][DIMENSIONS[0]]["n_subject_tests"]
    out += [
        "Subjects whose test windows hold one class only are left out of the AUC mean (counted "
        f"in accuracy and F1): valence {excl['valence']}, arousal {excl['arousal']}, dominance "
        f"{excl['dominance']} of {n_tests} subject tests.",
        "",
        *stats.markdown_section(metrics),
        *calibration_section(metrics),
        *absent_section(metrics),
        "## Pooled over all test windows",
        "",
        "Percent; the out-of-fold predictions of every test fold pooled into one set (mean over seeds).",
        "",
        *_header(),
    ]
    for row in metrics["rows"].values():
        cells = [_pct(row["pooled"][dim][m]) for dim in DIMENSIONS for m in METRICS]
        out.append("| " + " | ".join([row["label"], *cells]) + " |")
    out += [
        "",
        "## Per fold",
        "",
        "Per-subject means (percent) on each test fold. Best epoch: the epoch whose weights scored "
        f"the test set, per dimension (valence/arousal/dominance), chosen on validation {cfg['select_by']}.",
        "",
    ]
    out.append("| Method | Seed | Fold | Test subjects | Best epochs | " + " | ".join(
        f"{d.capitalize()} {_METRIC_NAMES[m]}" for d in DIMENSIONS for m in METRICS) + " |")
    out.append("|---|---:|---:|---|---:|" + "---:|" * (len(DIMENSIONS) * len(METRICS)))
    for row, entries in metrics["folds"].items():
        for e in entries:
            cells = [_pct(e[dim][m]) for dim in DIMENSIONS for m in METRICS]
            subj = ", ".join(str(s) for s in e["test_subjects"])
            best = "/".join(str(e["best_epoch"][d]) for d in DIMENSIONS) if e["best_epoch"] else "–"
            out.append(
                f"| {metrics['rows'][row]['label']} | {e['seed']} | {e['fold']} | {subj} | {best} | " + " | ".join(cells) + " |"
            )
    out += ["", "## Class balance", "", f"High = rating ≥ {cfg['threshold']}. Share of High windows: " + ", ".join(
        f"{dim} {100 * v:.1f} %" for dim, v in metrics["class_balance"].items()) + "."]
    if metrics.get("class_balance_clip"):
        out += ["Share of High (subject, clip) pairs: " + ", ".join(
            f"{dim} {100 * v:.1f} %" for dim, v in metrics["class_balance_clip"].items()) + "."]
    out.append("")
    if plots:
        out += ["## Plots", ""]
        out += [f"![{Path(p).stem}]({p})" for p in plots]
        out.append("")
    out += ["## Encoders", ""]
    for m, e in (metrics.get("encoders") or {}).items():
        src = e["source"] + (f" `{e['path']}`" if e.get("path") else "")
        c = e["config"]
        out.append(
            f"- {m.upper()}: {src}; {c['n_layers']} layers, d_model {c['d_model']}, input × "
            f"{e['input_scale']:g}"
        )
    out += ["", "## Splits", ""]
    for seed, folds in metrics["splits"].items():
        for f in folds:
            out.append(f"- {seed} fold {f['fold']}: test {f['test']}, validation {f['val']}, train {f['train']}")
    seconds = metrics.get("seconds")
    out += [
        "",
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(cfg, sort_keys=False).rstrip(),
        "```",
        "",
        f"Wall time: {seconds:.0f} s." if seconds is not None else "",
        "",
    ]
    return "\n".join(out)


# ---- writing --------------------------------------------------------------------------------


def write_report(out_dir: str | Path, *, seconds: float | None = None) -> dict[str, Any]:
    """Write metrics.json, the plots and report.md into ``out_dir``; return the metrics."""
    rundir = RunDir(Path(out_dir))
    metrics = build_metrics(rundir.root, seconds=seconds)
    roc = metrics.pop("_roc")
    labels = {row: r["label"] for row, r in metrics["rows"].items()}
    plots = []
    for row, hist in metrics["history"].items():
        name = "loss_curves.png" if row == next(iter(metrics["history"])) else f"loss_curves_{row}.png"
        rundir.write_plot(name, loss_figure(hist, f"{labels[row]}: training and validation loss"))
        plots.append(name)
    rundir.write_plot("roc_curves.png", roc_figure(roc, labels.__getitem__))
    plots.append("roc_curves.png")
    best = best_fusion_row(metrics)
    if best is not None:
        rundir.write_plot("reliability.png", reliability_figure(roc[best], labels[best]))
        plots.append("reliability.png")
    values = {dim: {row: {int(k): v for k, v in per.items()} for row, per in rows.items()}
              for dim, rows in metrics["subject_auc"].items()}
    rundir.write_plot("subject_auc.png", subject_auc_figure(values, list(metrics["rows"]), labels.__getitem__))
    plots.insert(0, "subject_auc.png")
    rundir.write_json(rundir.metrics, metrics)
    rundir.write_text(rundir.report, render_markdown(metrics, plots))
    return metrics


# ---- several runs ---------------------------------------------------------------------------


def compare_runs(run_dirs: Sequence[str | Path]) -> str:
    """Markdown: Table 1 with the rows of every run (named by folder) and the paper's row."""
    lines = ["# Runs side by side", "", "Percent; per-subject means, mean ± std over folds.", ""]
    lines += _header()
    lines += table1({"rows": {}}, paper=True)
    notes = []
    names = [Path(d).resolve().name for d in run_dirs]
    if len(set(names)) < len(names):  # folders of the same name: tell them apart by their path
        names = [str(d) for d in run_dirs]
    for d, name in zip(run_dirs, names, strict=True):
        path = Path(d) / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: is {d} a finished fusion-emotion run?")
        m = json.loads(path.read_text())
        lines += table1(m, paper=False, label_prefix=f"{name}: ")
        cfg = m["config"]
        notes.append(
            f"- `{name}`: {m['mode']}, modalities {'+'.join(cfg['modalities'])}, pool "
            f"{cfg['pool']}, {cfg['folds']} folds × seeds {cfg['seeds']}, {m['n_windows']} windows"
            + (f"; {len(m['warnings'])} warning(s): random-init encoder" if m.get("warnings") else "")
        )
    return "\n".join([*lines, "", *notes, ""])
