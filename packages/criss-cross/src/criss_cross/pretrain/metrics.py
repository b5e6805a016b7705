"""The metrics log of a run (``metrics.jsonl``) and its loss-curve plot.

:class:`MetricsLog` gathers each step's values and writes one JSON line every ``log_every``
steps: the loss (mean over the interval), each loss term, ``zero_mse``, lr, grad norm,
samples/s and the data-wait fraction. :func:`plot_loss_curve` draws a PNG from the file with
matplotlib's object API (no pyplot state, no backend switch: safe inside notebooks and apps).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

__all__ = ["MetricsLog", "plot_loss_curve", "truncate_metrics"]


class MetricsLog:
    """Values of the steps since the last line; :meth:`write` appends their summary."""

    def __init__(self, path: Path, t_start: float):
        self.path = path
        self.t_start = t_start
        self.interval: dict[str, list[float]] = {}

    def add(self, loss: float, zero_mse: float, terms: dict[str, float], grad_norm: float,
            wait_s: float, step_s: float, n_samples: int) -> None:
        rec = self.interval
        rec.setdefault("loss", []).append(loss)
        rec.setdefault("zero_mse", []).append(zero_mse)
        for k, v in terms.items():
            rec.setdefault(f"loss_{k}", []).append(v)
        rec.setdefault("grad_norm", []).append(grad_norm)
        rec.setdefault("wait", []).append(wait_s)
        rec.setdefault("time", []).append(step_s)
        rec.setdefault("n", []).append(n_samples)

    def write(self, step: int, epoch: int, lr: float) -> None:
        """Append the line of the interval that ends at ``step`` and start a new interval."""
        rec = self.interval
        t_int = sum(rec["time"])
        line = {
            "step": step,
            "epoch": epoch,
            "loss": float(np.mean(rec["loss"])),
            "loss_last": rec["loss"][-1],
            **{k: float(np.mean(v)) for k, v in rec.items() if k.startswith("loss_")},
            "zero_mse": float(np.mean(rec["zero_mse"])),
            "lr": lr,
            "grad_norm": float(np.mean(rec["grad_norm"])),
            "samples_per_s": sum(rec["n"]) / max(t_int, 1e-9),
            "data_wait_fraction": sum(rec["wait"]) / max(t_int, 1e-9),
            "elapsed_s": time.perf_counter() - self.t_start,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")
        self.interval = {}


def truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after ``step`` (a killed run may have logged past its checkpoint)."""
    from biosig_prep.util import atomic_write_text

    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def plot_loss_curve(metrics: str | Path, out: str | Path) -> Path:
    """PNG of the pretraining loss (and its terms) against steps, from metrics.jsonl; the
    zero predictor's loss (``zero_mse``, the reference) dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    out = Path(out)
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if rows:
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["loss"] for r in rows], label="total", color="C0", lw=1.6)
        for i, key in enumerate(k for k in rows[0] if k.startswith("loss_") and k != "loss_last"):
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=key[5:], lw=1.0,
                    alpha=0.8, color=f"C{i + 1}")
        if "zero_mse" in rows[0]:
            ax.plot(steps, [r.get("zero_mse", float("nan")) for r in rows], ls="--", lw=1.2,
                    color="0.35", label="predict zeros")
        if min(r["loss"] for r in rows) > 0:
            ax.set_yscale("log")
        ax.legend(frameon=False)
    ax.set_xlabel("step")
    ax.set_ylabel("masked reconstruction loss (MSE)")
    ax.set_title("Dual-masking pretraining")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp)
    os.replace(tmp, out)
    return out
