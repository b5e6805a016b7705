"""Fusion training throughput on this machine, and the projected wall time of the DREAMER protocol.

Usage: python tools/bench/bench_fusion.py [--device cpu] [--repeats 5] [--windows 8000]
       [--folds 5] [--epochs 10] [--json OUT.json] [--full-run DIR]

Measured (median, and best, of ``--repeats`` timed repetitions after one warm-up, CBraMod-size encoders:
12 layers, d_model 200, EEG windows (14, 10, 200), ECG windows (2, 10, 200)):

1. Full fine-tuning (paper recipe): one Adam step of the whole model (encoders + heads) at
   batch 8, forward + backward, for the fusion model and the EEG-only / ECG-only ablations:
   windows/s.
2. Inference of each encoder (eval, no grad; batch 64 for fine-tuning's validation/test passes,
   batch 32 for the frozen mode's one-off embedding): windows/s.
3. Frozen mode, heads on cached embeddings: one epoch of the trainer's own loop
   (``fusion_emotion.fit.fit``, batch 8, validation pass included) on random features of
   the real size (fusion: 2 x 10 x 200 flattened; single modality: 10 x 200), one intra-op thread
   as the trainer runs it, alone and as many jobs side by side as there are CPUs.

Projection for ``--windows`` windows (DREAMER: ~8,200 ten-second windows), ``--folds`` folds
(3 : 1 : 1 by subject), ``--epochs`` epochs, fusion + both ablations:

- fine-tuning: per row and fold, epochs x (train windows / train rate + validation windows /
  inference rate) + test windows / inference rate;
- frozen: every window embedded once per encoder, then (rows x folds) head jobs of ``epochs``
  epochs each, spread over the CPUs.

``--full-run DIR`` additionally generates a full-size synthetic DREAMER.mat (23 subjects x 18
clips of real durations), converts it and times ``fusion-emotion train --freeze-encoders`` end to
end (random-init 12-layer encoders: the same cost as pretrained ones).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch

from criss_cross import CrissCrossEncoder, EncoderConfig
from fusion_emotion.config import DIMENSIONS, FusionConfig
from fusion_emotion.fit import fit
from fusion_emotion.model import FusionModel

SHAPES = {"eeg": (14, 10, 200), "ecg": (2, 10, 200)}
ROWS = {"fusion": ["eeg", "ecg"], "eeg": ["eeg"], "ecg": ["ecg"]}


def _n_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _times(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def _encoder(device: torch.device) -> CrissCrossEncoder:
    return CrissCrossEncoder(EncoderConfig(proj_out=False)).to(device)


def bench_finetune(device: torch.device, repeats: int, batch: int = 8) -> tuple[dict, dict]:
    """Windows/s of one full fine-tuning step (Adam, batch 8) per row: (median, best)."""
    med, best = {}, {}
    for row, mods in ROWS.items():
        torch.manual_seed(0)
        model = FusionModel(mods, {m: _encoder(device) for m in mods}, n_patches=10, d_model=200).to(device)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x = {m: torch.randn(batch, *SHAPES[m], device=device) for m in mods}
        y = torch.randint(0, 2, (batch, 3), device=device).float()

        def step(model=model, opt=opt, x=x, y=y):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        t_med, t_min = _times(step, repeats, device)
        med[row], best[row] = batch / t_med, batch / t_min
    return med, best


def bench_inference(device: torch.device, repeats: int) -> tuple[dict, dict]:
    """Windows/s of each encoder in eval mode without gradients: batch 64 (fine-tuning's
    validation/test passes), batch 32 (the frozen mode's embedding), and batch 32 under bf16
    autocast (``precision: bf16``); (median, best)."""
    med: dict[str, dict[str, float]] = {}
    best: dict[str, dict[str, float]] = {}
    for m in ("eeg", "ecg"):
        enc = _encoder(device).eval()
        med[m], best[m] = {}, {}
        for name, batch, bf16 in (("b64", 64, False), ("b32", 32, False), ("b32_bf16", 32, True)):
            x = torch.randn(batch, *SHAPES[m], device=device)

            def fwd(enc=enc, x=x, bf16=bf16):
                with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    enc.forward_features(x)

            t_med, t_min = _times(fwd, repeats, device)
            med[m][name], best[m][name] = batch / t_med, batch / t_min
    return med, best


def _head_epoch(row: str, n_train: int, n_val: int, seed: int) -> float:
    """Seconds of one epoch of the frozen trainer's loop (its three heads, one after another, as
    ``fusion_emotion.train`` runs them) on cached features of ``row``'s size."""
    mods = ROWS[row]
    cfg = FusionConfig(epochs=1, freeze_encoders=True)
    model = FusionModel(mods, None, n_patches=10, d_model=200, pool=cfg.pool)
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_val
    X = torch.randn(n, model.in_features, generator=g)
    y = torch.randint(0, 2, (n, 3), generator=g).float()
    subject = np.repeat(np.arange(23), int(np.ceil(n / 23)))[:n]
    train_idx, val_idx = np.arange(n_train), np.arange(n_train, n)
    model.head.reset_parameters(g)
    model.head.set_generator(g)
    t0 = time.perf_counter()
    for j, dim in enumerate(DIMENSIONS):
        head = model.head.heads[dim]

        def forward(idx, head=head):
            return head(X[idx])

        groups = [{"params": list(head.parameters()), "lr": cfg.lr}]
        fit(head, groups, forward, y[:, j : j + 1], subject, train_idx, val_idx, cfg, g,
            lambda n=1: None)
    return time.perf_counter() - t0


def _side_by_side(row: str, n_train: int, n_val: int, seeds: range) -> float:
    """Wall seconds of one head epoch per job, with ``len(seeds)`` jobs in threads at once."""
    threads = [threading.Thread(target=_head_epoch, args=(row, n_train, n_val, s)) for s in seeds]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - t0) / len(seeds)


def bench_heads(n_train: int, n_val: int, repeats: int) -> dict[str, object]:
    """Seconds per head epoch per row: alone (1 thread) and with one job per CPU side by side."""
    cpus = _n_cpus()
    alone: dict[str, list[float]] = {}
    side_by_side: dict[str, list[float]] = {}
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for row in ROWS:
            _head_epoch(row, n_train // 4, n_val // 4, 0)  # warm-up
            alone[row] = [_head_epoch(row, n_train, n_val, s) for s in range(repeats)]
            # cpus jobs of the same row at once: wall time / cpus = effective seconds per epoch
            side_by_side[row] = [
                _side_by_side(row, n_train, n_val, range(r * cpus, (r + 1) * cpus))
                for r in range(max(1, repeats // 2))
            ]
    finally:
        torch.set_num_threads(old)
    return {
        "cpus": cpus,
        "alone_s_per_epoch": {r: statistics.median(v) for r, v in alone.items()},
        "parallel_s_per_epoch": {r: statistics.median(v) for r, v in side_by_side.items()},
        "best": {
            "alone_s_per_epoch": {r: min(v) for r, v in alone.items()},
            "parallel_s_per_epoch": {r: min(v) for r, v in side_by_side.items()},
        },
    }


def project(ft: dict, inf: dict, heads: dict, n: int, folds: int, epochs: int) -> dict[str, float]:
    n_test = n / folds
    n_val = n / folds
    n_train = n - n_test - n_val

    def both(key: str) -> float:  # windows/s of the EEG and the ECG encoder one after the other
        return 1.0 / (1.0 / inf["eeg"][key] + 1.0 / inf["ecg"][key])

    inf64 = {"fusion": both("b64"), "eeg": inf["eeg"]["b64"], "ecg": inf["ecg"]["b64"]}
    finetune = {
        row: folds * (epochs * (n_train / ft[row] + n_val / inf64[row]) + n_test / inf64[row]) for row in ROWS
    }
    heads_s = sum(folds * epochs * heads["parallel_s_per_epoch"][row] for row in ROWS)
    return {
        "finetune_fusion_s": finetune["fusion"],
        "finetune_all_rows_s": sum(finetune.values()),
        "frozen_embed_s": n / both("b32"),
        "frozen_embed_bf16_s": n / both("b32_bf16"),
        "frozen_heads_s": heads_s,
        "frozen_all_rows_s": n / both("b32") + heads_s,
        "frozen_all_rows_bf16_s": n / both("b32_bf16") + heads_s,
    }


def full_run(folder: Path, device: str) -> dict[str, float]:
    from biosig_prep.convert import convert
    from biosig_prep.synth.dreamer import write_dreamer_mat
    from fusion_emotion import train

    folder.mkdir(parents=True, exist_ok=True)
    mat, store = folder / "DREAMER.mat", folder / "dreamer.zarr"
    t0 = time.perf_counter()
    if not store.is_dir():
        write_dreamer_mat(mat, n_subjects=23, n_clips=18, baseline_seconds=4.0, seed=0)
        convert([mat], store, fmt="dreamer", progress=True)
        mat.unlink()
    t1 = time.perf_counter()
    result = train(FusionConfig(freeze_encoders=True, device=device), store, folder / "run", resume=False)
    t2 = time.perf_counter()
    return {
        "prepare_s": t1 - t0,
        "train_frozen_s": t2 - t1,
        "windows": result.metrics["n_windows"],
        "report": str(result.report_path),
    }


def _fmt_s(s: float) -> str:
    return f"{s:,.0f} s ({s / 60:.1f} min)" if s < 7200 else f"{s:,.0f} s ({s / 3600:.1f} h)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--windows", type=int, default=8000)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--full-run", type=Path, default=None, metavar="DIR")
    args = ap.parse_args()
    device = torch.device(args.device)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t_wall, t_cpu = time.perf_counter(), time.process_time()

    n_val = args.windows // args.folds
    n_train = args.windows - 2 * n_val
    ft, ft_best = bench_finetune(device, args.repeats)
    inf, inf_best = bench_inference(device, args.repeats)
    heads = bench_heads(n_train, n_val, args.repeats)
    proj = project(ft, inf, heads, args.windows, args.folds, args.epochs)
    proj_best = project(ft_best, inf_best, heads["best"], args.windows, args.folds, args.epochs)
    # CPU seconds this process got per wall second: near the core count on an idle machine,
    # lower when other work shares the cores (then every figure below is pessimistic)
    cpu_share = (time.process_time() - t_cpu) / (time.perf_counter() - t_wall)
    res = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": _n_cpus(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
            "load_average_1min": [load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
            "cpu_seconds_per_wall_second": cpu_share,
        },
        "finetune_windows_per_s": ft,
        "inference_windows_per_s": inf,
        "heads": heads,
        "projection": {"windows": args.windows, "folds": args.folds, "epochs": args.epochs, **proj},
        "best": {"finetune_windows_per_s": ft_best, "inference_windows_per_s": inf_best,
                 "projection": proj_best},
    }
    if args.full_run is not None:
        res["full_run"] = full_run(args.full_run, args.device)

    print(f"fusion-emotion on {res['machine']['device']} ({res['machine']['cpus']} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads), medians of {args.repeats}; "
          f"1-min load average before/after: {res['machine']['load_average_1min']}; this process got "
          f"{cpu_share:.2f} CPU-s per wall-s")
    print()
    print("| what | EEG only | ECG only | fusion |")
    print("|---|---:|---:|---:|")
    print("| full fine-tuning, windows/s (batch 8, fwd+bwd+Adam) | "
          f"{ft['eeg']:.2f} | {ft['ecg']:.2f} | {ft['fusion']:.2f} |")
    for key, what in (("b64", "encoder inference, windows/s (batch 64)"),
                      ("b32", "frozen: embedding once, windows/s (batch 32)"),
                      ("b32_bf16", "frozen: embedding once, bf16 autocast, windows/s")):
        both = 1.0 / (1.0 / inf["eeg"][key] + 1.0 / inf["ecg"][key])
        print(f"| {what} | {inf['eeg'][key]:.1f} | {inf['ecg'][key]:.1f} | {both:.1f} |")
    a, p = heads["alone_s_per_epoch"], heads["parallel_s_per_epoch"]
    print(f"| frozen: heads, s per epoch of {n_train} windows, 1 job | {a['eeg']:.2f} | {a['ecg']:.2f} | {a['fusion']:.2f} |")
    print(f"| frozen: heads, s per epoch, {heads['cpus']} jobs side by side (effective) | "
          f"{p['eeg']:.2f} | {p['ecg']:.2f} | {p['fusion']:.2f} |")
    print(f"| frozen: heads, windows/s (effective) | {n_train / p['eeg']:,.0f} | {n_train / p['ecg']:,.0f} | "
          f"{n_train / p['fusion']:,.0f} |")
    print()
    print(f"Projected protocol: {args.windows} windows, {args.folds} folds (3:1:1 by subject), "
          f"{args.epochs} epochs, fusion + EEG-only + ECG-only:")
    print()
    print("| mode | fusion row | all three rows |")
    print("|---|---:|---:|")
    print(f"| full fine-tuning | {_fmt_s(proj['finetune_fusion_s'])} | {_fmt_s(proj['finetune_all_rows_s'])} |")
    print(f"| frozen, cached embeddings (embedding {_fmt_s(proj['frozen_embed_s'])} + heads "
          f"{_fmt_s(proj['frozen_heads_s'])}) | – | {_fmt_s(proj['frozen_all_rows_s'])} |")
    print(f"| frozen, `precision: bf16` (embedding {_fmt_s(proj['frozen_embed_bf16_s'])} + heads) | – | "
          f"{_fmt_s(proj['frozen_all_rows_bf16_s'])} |")
    pb = proj_best
    print()
    print(f"From the best of the {args.repeats} repetitions instead of the median (the machine "
          f"when nothing else runs): fine-tuning {_fmt_s(pb['finetune_fusion_s'])} (fusion row), "
          f"{_fmt_s(pb['finetune_all_rows_s'])} (all rows); frozen {_fmt_s(pb['frozen_all_rows_s'])}; "
          f"frozen bf16 {_fmt_s(pb['frozen_all_rows_bf16_s'])}.")
    if "full_run" in res:
        fr = res["full_run"]
        print()
        print(f"Measured end to end: {fr['windows']} windows, `fusion-emotion train --freeze-encoders` "
              f"{_fmt_s(fr['train_frozen_s'])} (data generation + conversion {_fmt_s(fr['prepare_s'])}).")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
