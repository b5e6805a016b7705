"""metrics.json, report.md and the plots of a probe run (fusion-emotion's report layout).

Every file is written atomically (``biosig_prep.util``): a reader sees the old report or the
new one, never half of one.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

__all__ = ["METHOD_LABELS", "render_markdown", "write_report"]

_ORDER = ("linear", "finetune", "prevalence")
METHOD_LABELS = {"linear": "Linear probe", "finetune": "Fine-tuned",
                 "prevalence": "Train prevalence (baseline)"}


def _cell(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def render_markdown(doc: dict[str, Any]) -> str:
    """The Markdown report of a metrics document."""
    cfg, data, metrics = doc["config"], doc["data"], doc["metrics"]
    lines = [f"> **WARNING:** {w}" for w in doc.get("warnings", [])]
    lines += [
        f"# Probe: {data['stream']} of {data['store']}, labels `{cfg['labels']}`", "",
        f"Encoder: {doc['encoder']['weights']} ({doc['encoder']['n_layers']} layers, d_model "
        f"{doc['encoder']['d_model']}, digest {doc['encoder']['digest']}). "
        f"Split by {data['split_by']}: {data['n_train']} train / {data['n_test']} test records "
        f"(seed {cfg['seed']}), {data['n_windows']} windows; {len(data['classes'])} classes with "
        f"at least {cfg['min_count']} positive records. Embeddings: mean over valid channels "
        f"and patches, then over a record's windows"
        f"{' (from the cache)' if doc.get('embeddings_cached') else ''}.", "",
        "| Method | macro AUROC | macro F1 | Challenge 2021 score |",
        "|---|---|---|---|",
    ]
    for key in _ORDER:
        if key in metrics:
            m = metrics[key]
            label = METHOD_LABELS[key]
            if key == "finetune":
                label += f" ({cfg['finetune_epochs']} epochs)"
            lines.append(f"| {label} | {_cell(m['macro_auroc'])} | {_cell(m['macro_f1'])} | "
                         f"{_cell(m['challenge_score'])} |")
    lines += ["", f"F1 and the Challenge score threshold probabilities at {cfg['threshold']}. "
              "Macro AUROC averages the classes with positives and negatives among the test "
              "records. The Challenge score covers its 26 scored classes (equivalent codes "
              "merged) and charges scored diagnoses the probe does not model as misses.", "",
              "## Classes (linear probe)", "",
              "| code | records | test positives | AUROC | F1 |", "|---|---|---|---|---|"]
    per = metrics["linear"]["per_class"]
    for c in data["classes"]:
        lines.append(f"| {c} | {data['support'][c]} | {per[c]['support']} | "
                     f"{_cell(per[c]['auroc'])} | {_cell(per[c]['f1'])} |")
    lines += ["", "![AUROC per class](auroc_per_class.png)", "", "![probe loss](probe_loss.png)"]
    if doc.get("finetune_losses"):
        lines += ["", "![fine-tuning loss](finetune_loss.png)"]
    return "\n".join(lines) + "\n"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _plots(doc: dict[str, Any]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    classes = doc["data"]["classes"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(classes) + 1.5), 3.2))
    width = 0.8 / max(1, sum(k in doc["metrics"] for k in ("linear", "finetune")))
    for i, key in enumerate(k for k in ("linear", "finetune") if k in doc["metrics"]):
        per = doc["metrics"][key]["per_class"]
        vals = [per[c]["auroc"] if per[c]["auroc"] is not None else float("nan") for c in classes]
        ax.bar([j + i * width for j in range(len(classes))], vals, width=width, label=key)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test AUROC")
    ax.legend(fontsize=7)
    out["auroc_per_class.png"] = _png(fig)
    plt.close(fig)
    for name, key, xlabel in (("probe_loss.png", "probe_losses", "step"),
                              ("finetune_loss.png", "finetune_losses", "epoch")):
        if doc.get(key):
            fig, ax = plt.subplots(figsize=(4, 3))
            ax.plot(range(1, len(doc[key]) + 1), doc[key])
            ax.set_xlabel(xlabel)
            ax.set_ylabel("BCE (train)")
            out[name] = _png(fig)
            plt.close(fig)
    return out


def write_report(out: str | Path, doc: dict[str, Any]) -> Path:
    """Write metrics.json, report.md and the PNG plots into ``out``; returns report.md."""
    from biosig_prep.util import atomic_write_bytes, atomic_write_json, atomic_write_text

    out = Path(out)
    plots = _plots(doc)
    for name, data in plots.items():
        atomic_write_bytes(out / name, data, durable=False)
    if "finetune_loss.png" not in plots:  # a plot of an earlier run into the same folder
        (out / "finetune_loss.png").unlink(missing_ok=True)
    atomic_write_json(out / "metrics.json", doc, sort_keys=True)
    return atomic_write_text(out / "report.md", render_markdown(doc))
