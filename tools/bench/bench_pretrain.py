"""End-to-end pretraining throughput: samples/s and the fraction of step time spent on data.

Usage: python tools/bench/bench_pretrain.py [--records 150] [--device cpu] [--threads N]
       [--configs small,full] [--batch-size 32] [--steps 12]

Runs :func:`criss_cross.pretrain.pretrain` on the loader benchmark's store (ecg@500 + ecg@1000,
(12, 10, 200) windows, built by bench_loader.py if missing) with the ``--small`` preset
(2 layers) and the full CBraMod encoder (12 layers), logging every step, and reports the median
samples/s over the steps after the first two (warm-up) and the data-wait fraction: time blocked
waiting for the next batch over the whole step time, summed over those steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_loader import STREAMS, build_store  # noqa: E402

from criss_cross.pretrain import SMALL_PRESET, PretrainConfig, apply_preset, pretrain  # noqa: E402

PRESETS = {
    "small": SMALL_PRESET,
    "full": {},
}


def run(name: str, url: str, args: argparse.Namespace) -> dict:
    data = apply_preset(
        {
            "stores": [url],
            "streams": STREAMS,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "log_every": 1,
            "checkpoint_every": 10**6,
            "num_workers": args.workers,
            "loader_workers": args.loader,
            "device": args.device,
            "threads": args.threads,
            "warmup_steps": 1,
        },
        PRESETS[name],
    )
    cfg = PretrainConfig.model_validate(data)
    out = args.out / f"pretrain-{name}"
    shutil.rmtree(out, ignore_errors=True)
    summary = pretrain(cfg, out, progress=False)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][2:]
    step_time = [cfg.batch_size / r["samples_per_s"] for r in lines]
    wait = [r["data_wait_fraction"] * t for r, t in zip(lines, step_time, strict=True)]
    return {
        "config": name,
        "layers": cfg.encoder.n_layers,
        "batch": cfg.batch_size,
        "steps": len(lines),
        "samples_per_s": statistics.median(r["samples_per_s"] for r in lines),
        "data_wait": sum(wait) / sum(step_time),
        "final_loss": summary.final_loss,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=150)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--loader", choices=["thread", "process"], default="thread")
    ap.add_argument("--configs", default="small,full")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    url = build_store(args.out, args.records)
    dev = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {dev}, torch threads {args.threads or torch.get_num_threads()}, "
          f"{args.workers} {args.loader} readers, store {url}")
    print("\n| config | layers | batch | steps timed | samples/s (median) | data wait | final loss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.configs.split(","):
        r = run(name, url, args)
        print(f"| {r['config']} | {r['layers']} | {r['batch']} | {r['steps']} | "
              f"{r['samples_per_s']:.1f} | {100 * r['data_wait']:.2f} % | {r['final_loss']:.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
