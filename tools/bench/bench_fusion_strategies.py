"""The cost of ``--fusion all`` against the paper's concat, measured in the same process.

Usage: python tools/bench/bench_fusion_strategies.py OUT_DIR [--subjects 23] [--clips 18]
       [--clip-seconds 30 (0: real durations, the full size)] [--folds 5] [--epochs 10] [--finetune-steps 6] [--device cpu]

1. Frozen protocol: a synthetic DREAMER store (planted effects) is converted once; then
   ``fusion-emotion train --freeze-encoders`` runs twice from scratch, with CBraMod-size
   random-init encoders (12 layers: the cost of pretrained ones), ``--fusion concat`` and
   ``--fusion all``, 5 folds x 10 epochs, one seed; wall and CPU seconds of each and their
   ratio (embedding included in both: the cache is per run folder).
2. Fine-tuning: windows/s of one Adam step at batch 8 (forward + backward, encoders + heads)
   per strategy, median over ``--finetune-steps`` steps after one warm-up.
Results are printed and written to OUT_DIR/bench_fusion_strategies.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def frozen(out: Path, args) -> dict:
    from biosig_prep.convert import convert
    from biosig_prep.synth.dreamer import write_dreamer_mat
    from fusion_emotion import FusionConfig, train

    store = out / "dreamer.zarr"
    if not store.exists():
        mat = out / "dreamer.mat"
        write_dreamer_mat(mat, n_subjects=args.subjects, n_clips=args.clips,
                          clip_seconds=args.clip_seconds or None,  # 0: the real durations
                          baseline_seconds=2.0, seed=0)
        convert([mat], store, fmt="dreamer", workers=0, progress=False)
        mat.unlink()
    res = {}
    for fusion in ("concat", "all"):
        cfg = FusionConfig(freeze_encoders=True, fusion=fusion, folds=args.folds, epochs=args.epochs,
                           device=args.device)
        t0, c0 = time.perf_counter(), _cpu()
        r = train(cfg, store, out / f"run_{fusion}", progress=False, resume=False)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        rows = {row: {d: round(v["per_subject"][d]["auc"]["mean"], 3) for d in v["per_subject"]}
                for row, v in r.metrics["rows"].items()}
        emb = {m: json.loads((out / f"run_{fusion}" / "cache" / f"{m}.json").read_text())["seconds"]
               for m in ("eeg", "ecg")}
        res[fusion] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "embed_s": emb, "auc": rows,
                       "n_windows": r.metrics["n_windows"]}
        print(fusion, res[fusion], flush=True)
    res["ratio_wall"] = round(res["all"]["wall_s"] / res["concat"]["wall_s"], 2)
    res["ratio_cpu"] = round(res["all"]["cpu_s"] / res["concat"]["cpu_s"], 2)
    return res


def finetune(args) -> dict:
    """Strategies interleaved step by step (round robin), so the machine's load hits all alike."""
    from criss_cross import CrissCrossEncoder, EncoderConfig
    from criss_cross.runtime import n_cpus
    from fusion_emotion.config import FUSIONS
    from fusion_emotion.model import FusionModel

    dev = torch.device(args.device)
    torch.set_num_threads(n_cpus())  # as many intra-op threads as CPUs this process may use
    g = torch.Generator().manual_seed(0)
    x = {"eeg": torch.randn(8, 14, 10, 200, generator=g).to(dev), "ecg": torch.randn(8, 2, 10, 200, generator=g).to(dev)}
    y = torch.randint(0, 2, (8, 3), generator=g).float().to(dev)
    models, opts = {}, {}
    for fusion in FUSIONS:
        enc = {m: CrissCrossEncoder(EncoderConfig(proj_out=False)) for m in ("eeg", "ecg")}
        models[fusion] = FusionModel(["eeg", "ecg"], enc, n_patches=10, d_model=200, fusion=fusion).to(dev).train()
        opts[fusion] = torch.optim.Adam(models[fusion].parameters(), lr=1e-4)
    wall: dict[str, list[float]] = {f: [] for f in FUSIONS}
    cpu: dict[str, list[float]] = {f: [] for f in FUSIONS}
    for i in range(args.finetune_steps + 1):
        for fusion in FUSIONS:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), _cpu()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = models[fusion](x).float()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            opts[fusion].zero_grad()
            loss.backward()
            opts[fusion].step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i:
                wall[fusion].append(time.perf_counter() - t0)
                cpu[fusion].append(_cpu() - c0)
    out = {f: {"windows_per_s": round(8 / statistics.median(wall[f]), 2),
               "cpu_s_per_window": round(statistics.median(cpu[f]) / 8, 3)} for f in FUSIONS}
    for f, v in out.items():
        print("finetune", f, v, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--subjects", type=int, default=23)
    ap.add_argument("--clips", type=int, default=18)
    ap.add_argument("--clip-seconds", type=float, default=30.0,
                    help="seconds per clip; 0 = DREAMER's real durations (65-393 s): full size")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--finetune-steps", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-frozen", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    res = {"argv": sys.argv[1:], "torch_threads": torch.get_num_threads()}
    if not args.skip_frozen:
        res["frozen"] = frozen(args.out, args)
    if args.finetune_steps:
        res["finetune_windows_per_s"] = finetune(args)
    (args.out / "bench_fusion_strategies.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
