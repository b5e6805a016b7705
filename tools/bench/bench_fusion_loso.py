"""Wall time of ``--fusion all --folds loso`` against today's 5-fold ``--fusion all``, and the
``hep`` strategy's AUC on a planted-timing file (issue 18).

Usage: python tools/bench/bench_fusion_loso.py STORE OUT_DIR [--protocols loso,5] [--epochs 10]
       [--pool flatten] [--timing-store PATH]
       python tools/bench/bench_fusion_loso.py --partial RUN_DIR [RUN_DIR ...]

STORE: a DREAMER store (``biosig-prep convert ... --format dreamer``; e.g. the demo-size one,
23 subjects x 18 clips of 20 s, or the full size, ``write_dreamer_mat(clip_seconds=None)``).
Each protocol runs ``train`` from scratch in this process with CBraMod-size random-init
encoders (frozen, cached embeddings computed once per run and shared by every fold and row),
one seed; wall and CPU seconds, the embedding seconds and the per-row job seconds are printed
and written to OUT_DIR/bench_fusion_loso.json. With ``--timing-store`` (a file written with
``effects={"dominance_rule": "heartbeat"}``), the dominance AUC of every row there too.

``--partial RUN_DIR``: the figures of a run that was stopped before its end (a full-size LOSO
run takes longer than a session here): per fold, the job seconds of each row and the wall time
from the end of the embedding (the newer of the two cache files) to the fold's last file; every
LOSO fold trains on the same number of windows (each DREAMER subject has the same clips), so
whole folds finished give a projection of the whole run, printed as such.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(store: Path, out: Path, folds: str, args) -> dict:
    from fusion_emotion import FusionConfig, train

    cfg = FusionConfig(freeze_encoders=True, fusion="all", folds=folds, epochs=args.epochs, pool=args.pool)
    t0, c0 = time.perf_counter(), _cpu()
    r = train(cfg, store, out, progress=False, resume=False)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    jobs: dict[str, float] = defaultdict(float)
    for f in (out / "folds").rglob("*.json"):
        d = json.loads(f.read_text())
        jobs[d["row"]] += float(d.get("seconds") or 0.0)
    emb = {m: json.loads((out / "cache" / f"{m}.json").read_text())["seconds"] for m in ("eeg", "ecg")}
    auc = {row: {d: v["per_subject"][d]["auc"]["mean"] for d in v["per_subject"]}
           for row, v in r.metrics["rows"].items()}
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "embed_s": emb,
            "job_s": {k: round(v, 1) for k, v in jobs.items()}, "auc": auc, "n_windows": r.metrics["n_windows"]}


def partial(run: Path) -> dict:
    """Figures of a stopped run (see the module docstring)."""
    run_doc = json.loads((run / "run.json").read_text())
    folds = run_doc["key"]["config"]["folds"]
    start = max(f.stat().st_mtime for f in (run / "cache").glob("*.json"))
    per_fold: dict[int, dict[str, float]] = defaultdict(dict)
    ends: dict[int, float] = defaultdict(float)
    for f in (run / "folds").rglob("*.json"):
        d = json.loads(f.read_text())
        per_fold[d["fold"]][d["row"]] = float(d["seconds"])
        ends[d["fold"]] = max(ends[d["fold"]], f.stat().st_mtime)
    n_rows = max((len(v) for v in per_fold.values()), default=0)
    whole = sorted(k for k, v in per_fold.items() if len(v) == n_rows)
    n_folds = run_doc["data"]["n_subjects"] if folds == "loso" else int(folds)
    last = max((ends[k] for k in whole), default=start)
    wall = last - start
    out = {
        "folds": folds, "n_windows": run_doc["data"]["n_windows"], "whole_folds": len(whole),
        "of": n_folds, "rows": n_rows,
        "job_s_per_fold": {k: {r: round(s, 1) for r, s in sorted(per_fold[k].items())} for k in whole},
        "heads_wall_s": round(wall, 1),
        "projected_heads_wall_s": round(wall / max(len(whole), 1) * n_folds, 1),
        "embed_s": {m: json.loads((run / "cache" / f"{m}.json").read_text())["seconds"] for m in ("eeg", "ecg")},
    }
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--partial":
        for folder in sys.argv[2:]:
            print(json.dumps(partial(Path(folder)), indent=1))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--protocols", default="loso,5")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--pool", default="flatten")
    ap.add_argument("--timing-store", type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    res = {}
    for folds in args.protocols.split(","):
        res[folds] = run(args.store, args.out / f"run_{folds}", folds, args)
        print(folds, json.dumps(res[folds]), flush=True)
    if args.timing_store is not None:
        res["timing"] = run(args.timing_store, args.out / "run_timing", "5", args)
        print("timing", json.dumps(res["timing"]["auc"]), flush=True)
    (args.out / "bench_fusion_loso.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
