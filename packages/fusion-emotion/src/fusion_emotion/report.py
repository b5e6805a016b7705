"""metrics.json, report.md (the paper's Table 1 layout) and the plots of a run folder.

Table 1 of Ghallab et al. (arXiv 2512.15250) has one row per method and, for each of valence,
arousal and dominance, accuracy, F1 and ROC-AUC in percent. ``report.md`` puts the paper's
published row beside this run's rows: the fusion model, the EEG-only and ECG-only ablations and
the two baselines (majority class, per-clip majority). Each of this run's cells is the mean ±
standard deviation (ddof 0) over the (seed, fold) test sets of the metric computed per test
subject and averaged across subjects.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fusion_emotion.baselines import majority_class, per_clip_majority
from fusion_emotion.config import DIMENSIONS, FusionConfig
from fusion_emotion.data import DreamerData
from fusion_emotion.metrics import evaluate, mean_std, roc_auc, roc_curve
from fusion_emotion.splits import Fold, fold_windows

__all__ = [
    "PAPER_ROW",
    "ROW_LABELS",
    "report_path",
    "build_metrics",
    "write_report",
    "render_markdown",
    "compare_runs",
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
}
BASELINES = ("majority", "per_clip")
METRICS = ("acc", "f1", "auc")
_METRIC_NAMES = {"acc": "Acc", "f1": "F1", "auc": "AUC"}


def report_path(run_dir: str | Path) -> Path:
    """The absolute path of a run's ``report.md`` (what ``make demo`` prints at the end)."""
    return (Path(run_dir) / "report.md").resolve()


# ---- collecting -----------------------------------------------------------------------------


def _baseline_result(row: str, seed: int, fold: Fold, data: DreamerData, targets: np.ndarray) -> dict:
    train_idx, _, test_idx = fold_windows(data.subject, fold)
    scores, metrics = {}, {}
    for j, dim in enumerate(DIMENSIONS):
        if row == "majority":
            s = majority_class(targets[train_idx, j], len(test_idx))
        else:
            s = per_clip_majority(
                targets[train_idx, j], data.clip[train_idx], data.subject[train_idx], data.clip[test_idx]
            )
        scores[dim] = s.tolist()
        metrics[dim] = evaluate(targets[test_idx, j], s, data.subject[test_idx])
    return {
        "seed": seed,
        "fold": fold.index,
        "row": row,
        "subjects": fold.as_dict(),
        "test_index": test_idx.tolist(),
        "scores": scores,
        "metrics": metrics,
    }


def _load_results(
    out_dir: Path, config: FusionConfig, data: DreamerData, splits: Mapping[int, Sequence[Fold]]
) -> dict[str, list[dict]]:
    from fusion_emotion.train import fold_result_path

    targets = data.targets(config.threshold)
    rows = list(config.variants) + (list(BASELINES) if config.baselines else [])
    results: dict[str, list[dict]] = {r: [] for r in rows}
    for seed in config.seeds:
        for fold in splits[seed]:
            for row in rows:
                if row in BASELINES:
                    results[row].append(_baseline_result(row, seed, fold, data, targets))
                    continue
                path = fold_result_path(out_dir, seed, fold.index, row)
                if not path.is_file():
                    raise FileNotFoundError(f"{path} is missing: the run is not finished")
                results[row].append(json.loads(path.read_text()))
    return results


def _summarise(results: dict[str, list[dict]], data: DreamerData, targets: np.ndarray, seeds: list[int]) -> dict:
    rows: dict[str, Any] = {}
    for row, res in results.items():
        per_subject, pooled = {}, {}
        for j, dim in enumerate(DIMENSIONS):
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
                idx = np.concatenate([np.asarray(r["test_index"]) for r in res if r["seed"] == seed])
                sc = np.concatenate([np.asarray(r["scores"][dim]) for r in res if r["seed"] == seed])
                seed_vals.append(evaluate(targets[idx, j], sc, data.subject[idx])["pooled"])
            pooled[dim] = {m: mean_std(v[m] for v in seed_vals)["mean"] for m in METRICS}
        rows[row] = {"label": ROW_LABELS[row], "per_subject": per_subject, "pooled": pooled}
    return rows


def build_metrics(
    out_dir: str | Path,
    *,
    data: DreamerData,
    splits: Mapping[int, Sequence[Fold]],
    seconds: float | None = None,
) -> dict[str, Any]:
    """The content of ``metrics.json`` from the finished job files of ``out_dir``."""
    out = Path(out_dir)
    config = FusionConfig.from_file(out / "config.yaml")
    run = json.loads((out / "run.json").read_text())
    targets = data.targets(config.threshold)
    results = _load_results(out, config, data, splits)
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
    return {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "store": run.get("store"),
        "n_windows": data.n_windows,
        "n_subjects": len(data.subjects),
        "n_clips": len(np.unique(data.clip)),
        "mode": "frozen encoders, cached embeddings" if config.freeze_encoders else "full fine-tuning",
        "config": config.model_dump(mode="json"),
        "weights": run.get("weights"),
        "encoders": run.get("encoders"),
        "warnings": run.get("warnings", []),
        "class_balance": {dim: float(targets[:, j].mean()) for j, dim in enumerate(DIMENSIONS)},
        "splits": {
            f"seed{seed}": [{"fold": f.index, **f.as_dict()} for f in splits[seed]] for seed in config.seeds
        },
        "rows": _summarise(results, data, targets, config.seeds),
        "folds": folds,
        "history": history,
        "seconds": seconds,
        "_roc": {
            row: {
                dim: {
                    "y": np.concatenate([targets[np.asarray(r["test_index"]), j] for r in res]).tolist(),
                    "score": np.concatenate([np.asarray(r["scores"][dim]) for r in res]).tolist(),
                }
                for j, dim in enumerate(DIMENSIONS)
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


def table1(metrics: Mapping[str, Any], *, paper: bool = True, label_prefix: str = "") -> list[str]:
    """Markdown lines of Table 1 (per-subject means, mean ± std over folds)."""
    lines = []
    if paper:
        cells = [f"{PAPER_ROW[dim][m]:.2f}" for dim in DIMENSIONS for m in METRICS]
        lines.append("| " + " | ".join([PAPER_LABEL, *cells]) + " |")
    for row in metrics["rows"].values():
        cells = [_cell(row["per_subject"][dim][m]) for dim in DIMENSIONS for m in METRICS]
        lines.append("| " + " | ".join([label_prefix + row["label"], *cells]) + " |")
    return lines


def render_markdown(metrics: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    cfg = metrics["config"]
    seeds, n_folds = cfg["seeds"], cfg["folds"]
    out: list[str] = ["# DREAMER emotion recognition: EEG + ECG fusion", ""]
    for w in metrics.get("warnings", []):
        out += [f"> **WARNING:** {w}", ">"]
    if metrics.get("warnings"):
        out.append("")
    out += [
        f"Store `{metrics['store']}`: {metrics['n_windows']} windows of {metrics['n_subjects']} "
        f"subjects × {metrics['n_clips']} clips. Mode: {metrics['mode']}. "
        f"Protocol: subject-independent {n_folds}-fold rotation (train : validation : test = "
        f"{n_folds - 2} : 1 : 1 groups of subjects; every subject tested once per seed), "
        f"seeds {seeds}; best epoch by validation {cfg['select_by']}; High = rating ≥ "
        f"{cfg['threshold']}.",
        "",
        "## Table 1",
        "",
        "Percent. This run: metric per test subject, averaged across subjects, then mean ± std "
        f"over {len(seeds) * n_folds} test folds. The paper's row is its published figures.",
        "",
        *_header(),
        *table1(metrics),
        "",
    ]
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
                f"| {ROW_LABELS[row]} | {e['seed']} | {e['fold']} | {subj} | {best} | " + " | ".join(cells) + " |"
            )
    out += ["", "## Class balance", "", "Share of High windows: " + ", ".join(
        f"{dim} {100 * v:.1f} %" for dim, v in metrics["class_balance"].items()) + ".", ""]
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


# ---- plots ----------------------------------------------------------------------------------


def _plot_losses(history: list[dict], title: str, path: Path) -> None:
    from matplotlib.figure import Figure

    n = len(history)
    cols = min(n, 5)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
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
    fig.savefig(path, dpi=100)


def _plot_roc(roc: Mapping[str, Mapping[str, Mapping[str, list]]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4), layout="constrained")
    axes = fig.subplots(1, len(DIMENSIONS))
    for ax, dim in zip(axes, DIMENSIONS, strict=True):
        for row, per_dim in roc.items():
            y, s = np.asarray(per_dim[dim]["y"]), np.asarray(per_dim[dim]["score"])
            if y.min() == y.max():
                continue
            fpr, tpr = roc_curve(y, s)
            auc = roc_auc(y, s)
            ax.plot(fpr, tpr, label=f"{ROW_LABELS[row]} ({100 * auc:.1f})")
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        ax.set_title(f"{dim} (pooled test windows)")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=100)


def write_report(
    out_dir: str | Path,
    *,
    data: DreamerData,
    splits: Mapping[int, Sequence[Fold]],
    seconds: float | None = None,
) -> dict[str, Any]:
    """Write metrics.json, the plots and report.md into ``out_dir``; return the metrics."""
    out = Path(out_dir)
    metrics = build_metrics(out, data=data, splits=splits, seconds=seconds)
    roc = metrics.pop("_roc")
    plots = []
    for row, hist in metrics["history"].items():
        name = "loss_curves.png" if row == next(iter(metrics["history"])) else f"loss_curves_{row}.png"
        _plot_losses(hist, f"{ROW_LABELS[row]}: training and validation loss", out / name)
        plots.append(name)
    _plot_roc(roc, out / "roc_curves.png")
    plots.append("roc_curves.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text(render_markdown(metrics, plots))
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
