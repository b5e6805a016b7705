"""metrics.json, split.json, report.md and bench.png of a bench run.

The report opens with any guard warning (``--allow-overlap`` / ``--allow-mismatch``), then one
table with every method on the same split, each metric ``value [2.5 %, 97.5 %]`` over patients,
the paired differences, the per-patient view, the label-efficiency curve and the split's hash.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from criss_cross.bench.metrics import MIN_GROUPS

__all__ = ["METHOD_LABELS", "clean", "render_markdown", "write_report"]

METHOD_LABELS = {
    "encoder": "Encoder, linear probe",
    "finetune": "Encoder, fine-tuned",
    "random": "Same architecture, random init, linear probe",
    "features": "Handcrafted features, linear probe",
    "prevalence": "Train prevalence / majority",
    "always_positive": "Always positive",
}


def _num(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def _ci(m: dict[str, Any] | None) -> str:
    if not m:
        return "-"
    if m.get("lo") is None or m.get("hi") is None:
        return _num(m.get("value"))
    return f"{_num(m['value'])} [{_num(m['lo'])}, {_num(m['hi'])}]"


def render_markdown(doc: dict[str, Any]) -> str:
    """The Markdown report of a bench metrics document."""
    task, data, split, cfg = doc["task"], doc["data"], doc["split"], doc["config"]
    lines = []
    for w in doc["guards"]["warnings"]:
        lines += [f"> **WARNING:** {w}", ""]
    c = split["counts"]
    lines += [
        f"# Bench `{task['name']}`: {doc['encoder']['weights']}", "",
        f"Task: {task['description']} (labels `{task['labels']}`, per {task['level']}; "
        f"{len(task['classes'])} class(es)). Data: {data['stream']} of {data['store']}, "
        f"{data['n_units']} {task['level']}s. Split {split['method']} (seed {split['seed']}): "
        f"{c['train']['groups']} / {c['val']['groups']} / {c['test']['groups']} patients, "
        f"{c['train']['records']} / {c['val']['records']} / {c['test']['records']} records in "
        f"train / validation / test; manifest sha256 `{split['sha256'][:16]}` (split.json). "
        f"Thresholds from {doc['thresholds_from']}. Intervals: 95 % bootstrap over test "
        f"patients ({cfg['n_boot']} draws).", "",
    ]
    if c["test"]["groups"] < MIN_GROUPS:
        lines += [f"**Too few test patients to tell:** {c['test']['groups']} (an interval needs "
                  f"at least {MIN_GROUPS}); the figures below are point values on these "
                  "patients only, with no interval and no p-value.", ""]
    has_cs = any("challenge_score" in m for m in doc["metrics"].values())
    head = "| Method | macro AUROC | macro F1 | ECE | Brier |" + (" Challenge score |" if has_cs else "")
    head += " patient-level AUROC | within-patient AUROC median (IQR, n) |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for key, label in METHOD_LABELS.items():
        m = doc["metrics"].get(key)
        if m is None:
            continue
        if key == "finetune":
            label += f" ({cfg['finetune_epochs']} epochs)"
        wp = m["within_patient_auroc"]
        wtxt = (f"{_num(wp['median'])} ({_num(wp['q25'])}-{_num(wp['q75'])}, {wp['n_patients']})"
                if wp["n_patients"] else "n/a (no patient has both classes)")
        row = f"| {label} | {_ci(m['macro_auroc'])} | {_ci(m['macro_f1'])} | {_ci(m['ece'])} | " \
              f"{_ci(m['brier'])} |"
        if has_cs:
            row += f" {_ci(m.get('challenge_score'))} |"
        pl = m["patient_level_auroc"]
        row += f" {_num(pl['value'])} (n={pl['n_patients']}) | {wtxt} |"
        lines.append(row)
    lines += ["", "## Paired differences (same test patients, same bootstrap draws)", "",
              "| comparison | macro AUROC difference | p | Brier difference | p |",
              "|---|---|---|---|---|"]
    for key, d in doc["paired"].items():
        a, b = d["macro_auroc"], d["brier"]
        lines.append(f"| {key.replace('_', ' ')} | {_ci(a)} | {_num(a['p'])} | {_ci(b)} | "
                     f"{_num(b['p'])} |")
    lines += ["", "A difference whose interval contains 0 is not distinguishable from none on "
              "these patients.", "", "## Label efficiency (test macro AUROC)", "",
              "| train fraction | train patients | encoder | random init | features |",
              "|---|---|---|---|---|"]
    for r in doc["label_efficiency"]:
        lines.append(f"| {r['fraction']:g} | {r['n_train_patients']} | {_ci(r['encoder'])} | "
                     f"{_ci(r['random'])} | {_ci(r['features'])} |")
    leak = doc["guards"]["leakage"]
    leak_txt = ("not checked" if leak.get("n") is None else
                f"{leak['n']} test records overlap the pretraining data")
    lines += ["", "## Guards", "",
              f"- Preprocessing: encoder input from {doc['encoder']['declared_from']}; "
              f"{'; '.join(doc['guards']['preprocessing']) or 'matches the stream'}.",
              f"- Leakage: against {leak['checked_against']}: {leak_txt}.", "",
              "## How to read this", "",
              "Macro AUROC averages the classes with positives and negatives among the test "
              "rows. Patient-level AUROC scores each patient's mean probability; the "
              "within-patient AUROC asks whether the probe ranks a patient's own positive rows "
              "above their negative ones. A high pooled AUROC with no within-patient signal "
              "means the probe separates patients, not rows.", "", "![bench](bench.png)"]
    return "\n".join(lines) + "\n"


def _plot(doc: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    keys = [k for k in METHOD_LABELS if k in doc["metrics"]]
    for i, k in enumerate(keys):
        m = doc["metrics"][k]["macro_auroc"]
        v = m["value"] if m["value"] is not None else float("nan")
        lo, hi = m["lo"], m["hi"]
        err = [[v - lo], [hi - v]] if lo is not None and hi is not None and math.isfinite(v) else None
        ax1.bar(i, v, yerr=err, capsize=3)
    ax1.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax1.set_xticks(range(len(keys)), keys, rotation=30, ha="right", fontsize=7)
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("test macro AUROC (95 % CI)")
    curve = doc["label_efficiency"]
    for name in ("encoder", "random", "features"):
        xs = [r["fraction"] for r in curve]
        ys = [r[name]["value"] if r[name]["value"] is not None else float("nan") for r in curve]
        ax2.plot(xs, ys, marker="o", label=name)
    ax2.set_xscale("log")
    ax2.set_xlabel("fraction of train patients")
    ax2.set_ylabel("test macro AUROC")
    ax2.legend(fontsize=7)
    fig.suptitle(f"{doc['task']['name']}: {doc['encoder']['weights']}", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def clean(value: Any) -> Any:
    """``value`` with NaN/inf floats as None and numpy scalars as Python numbers (JSON-able)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(out: str | Path, doc: dict[str, Any]) -> Path:
    """Write metrics.json, split.json, bench.png and report.md into ``out``; returns report.md.
    NaN values (an AUROC with no negatives...) are written as null."""
    from biosig_prep.util import atomic_write_bytes, atomic_write_json, atomic_write_text

    doc.update(clean(doc))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "bench.png", _plot(doc), durable=False)
    atomic_write_json(out / "split.json", doc["split"], sort_keys=True)
    atomic_write_json(out / "metrics.json", doc, sort_keys=True)
    return atomic_write_text(out / "report.md", render_markdown(doc))
