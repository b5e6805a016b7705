"""Benchmark (issue 21): ONNX export parity, latency and throughput, and int8's effect on the probe.

Modes (each prints Markdown rows; ``--json PATH`` also writes the figures):

``--parity``      export the registry models (random weights, seed 0) with ``--onnx --int8``;
                  largest |onnxruntime - PyTorch| of fp32 and int8 and the export time.
``--latency``     one 10 s 12-lead window (1, 12, 10, 200), batch 1, one thread: PyTorch eager,
                  onnxruntime fp32, onnxruntime int8, per model; the three alternate, median
                  of ``--repeats`` timed calls after warm-up. Then windows/s at batch 64 with
                  ``--threads`` threads (default 2: both cores of the dev machine).
``--probe STORE`` ``criss-cross probe`` (linear probe, its defaults) on STORE's ``ecg@500``
                  with the embeddings computed by PyTorch, onnxruntime fp32 and int8.
``--cuda-rows``   latency and batch-64 throughput under onnxruntime's CUDAExecutionProvider
                  (tools/bench/gpu_check.sh); exits 0 with one line where there is none.

Usage: python tools/bench/bench_onnx.py --parity --latency [--models ecg-small,ecg-base]
       [--work DIR] [--probe STORE] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _folder(name: str, work: Path, int8: bool = True) -> tuple[Path, float, dict]:
    from criss_cross.onnx_export import META_NAME, add_onnx, hub_folder_from_source

    folder = work / name
    if (folder / META_NAME).is_file() and (not int8 or (folder / "model.int8.onnx").is_file()):
        return folder, float("nan"), json.loads((folder / META_NAME).read_text())
    hub_folder_from_source(name, folder, overwrite=True)
    t0 = time.perf_counter()
    doc = add_onnx(folder, int8=int8)
    return folder, time.perf_counter() - t0, doc


def parity(models: list[str], work: Path) -> list[dict]:
    rows = []
    for name in models:
        folder, seconds, doc = _folder(name, work)
        rows.append({"model": name, "export_s": round(seconds, 1),
                     "fp32_max_abs_diff": doc["fp32"]["max_abs_diff"],
                     "int8_max_abs_diff": doc["int8"]["max_abs_diff"],
                     "max_abs_feature": max(p["max_abs_ref"] for p in doc["fp32"]["parity"]),
                     "shapes": [p["shape"] for p in doc["fp32"]["parity"]]})
        r = rows[-1]
        print(f"| {name} | {r['export_s']} | {r['fp32_max_abs_diff']:.2g} | "
              f"{r['int8_max_abs_diff']:.2g} | {r['max_abs_feature']:.3g} |", flush=True)
    return rows


def _runners(folder: Path, threads: int, providers=("CPUExecutionProvider",)):
    from criss_cross.hub import from_pretrained
    from criss_cross.onnx_export import INT8_NAME, ONNX_NAME, OnnxEncoder

    model = from_pretrained(folder)
    fp32 = OnnxEncoder(folder / ONNX_NAME, threads=threads, providers=providers)
    int8 = OnnxEncoder(folder / INT8_NAME, threads=threads, providers=providers)

    def eager(x: np.ndarray) -> None:
        with torch.inference_mode():
            model.embed(torch.from_numpy(x) * model.config.input_scale)

    return {"PyTorch eager": eager, "onnxruntime fp32": fp32.features,
            "onnxruntime int8": int8.features}


def _time(runners: dict, x: np.ndarray, repeats: int, warmup: int = 2) -> dict[str, float]:
    for fn in runners.values():
        for _ in range(warmup):
            fn(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):  # alternate: a busy machine slows all alike
        for k, fn in runners.items():
            t0 = time.perf_counter()
            fn(x)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def latency(models: list[str], work: Path, repeats: int, threads: int) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, 12, 10, 200)).astype(np.float32)
    x64 = rng.standard_normal((64, 12, 10, 200)).astype(np.float32)
    for name in models:
        folder, _, _ = _folder(name, work)
        torch.set_num_threads(1)
        one = _time(_runners(folder, 1), x1, repeats)
        torch.set_num_threads(threads)
        many = _time(_runners(folder, threads), x64, max(3, repeats // 4), warmup=1)
        for k in one:
            rows.append({"model": name, "runtime": k, "batch1_ms": one[k] * 1e3,
                         "batch64_windows_per_s": 64 / many[k], "threads_batch64": threads})
            print(f"| {name} | {k} | {one[k] * 1e3:.1f} | {64 / many[k]:.1f} |", flush=True)
    return rows


def probe(store: str, work: Path, model_name: str = "ecg-small") -> list[dict]:
    """run_probe with its embedding step swapped for the backend's (same split, same probe)."""
    import criss_cross.probe.run as probe_run
    from criss_cross.onnx_export import INT8_NAME, ONNX_NAME, OnnxEncoder
    from criss_cross.probe.run import ProbeConfig, run_probe

    folder, _, _ = _folder(model_name, work)
    original = probe_run.embed_stream

    def onnx_embed(path):
        enc = OnnxEncoder(path, threads=2)

        def embed_stream(model, stream, **kw):
            n = len(stream)
            reader = stream.reader()
            cm = np.asarray(stream.channel_mask[:], dtype=bool)
            pm = stream.patch_masks()
            out = np.zeros((n, int(model.config.d_model)), np.float32)
            for lo in range(0, n, 64):
                hi = min(n, lo + 64)
                out[lo:hi] = enc.embed(reader.read(lo, hi), "all", cm[lo:hi], pm[lo:hi])
            return {"embeddings": out, "record": np.asarray(stream.record[:])}, False
        return embed_stream

    rows = []
    for label, fn in (("PyTorch", original), ("onnxruntime fp32", onnx_embed(folder / ONNX_NAME)),
                      ("onnxruntime int8", onnx_embed(folder / INT8_NAME))):
        probe_run.embed_stream = fn  # type: ignore[assignment]
        try:
            cfg = ProbeConfig(store=store, stream="ecg@500", weights=str(folder),
                              model=model_name, cache_dir=None if label != "PyTorch" else
                              str(work / "probe-cache"), device="cpu")
            doc = run_probe(cfg, work / f"probe-{label.replace(' ', '-')}")
        finally:
            probe_run.embed_stream = original
        m = doc["metrics"]["linear"]
        rows.append({"embeddings": label, **{k: m[k] for k in ("macro_auroc", "macro_f1",
                                                                 "challenge_score")}})
        print(f"| {label} | {m['macro_auroc']:.4f} | {m['macro_f1']:.4f} | "
              f"{m['challenge_score']:.4f} |", flush=True)
    return rows


def cuda_rows(models: list[str], work: Path, repeats: int) -> list[dict]:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnx cuda rows: skipped (onnxruntime is not installed: pip install "
              "'criss-cross[onnx]', on a GPU machine onnxruntime-gpu)")
        return []
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print("onnx cuda rows: skipped (onnxruntime has no CUDAExecutionProvider here: "
              "install onnxruntime-gpu on a machine with a GPU)")
        return []
    rows = []
    prov = ("CUDAExecutionProvider", "CPUExecutionProvider")
    rng = np.random.default_rng(0)
    for name in models:
        folder, _, _ = _folder(name, work)
        r = _runners(folder, 0, prov)
        del r["PyTorch eager"]
        one = _time(r, rng.standard_normal((1, 12, 10, 200)).astype(np.float32), repeats)
        many = _time(r, rng.standard_normal((64, 12, 10, 200)).astype(np.float32), repeats)
        for k in one:
            rows.append({"model": name, "runtime": k + " (CUDA EP)", "batch1_ms": one[k] * 1e3,
                         "batch64_windows_per_s": 64 / many[k]})
            print(f"| {name} | {k} (CUDA EP) | {one[k] * 1e3:.2f} | {64 / many[k]:.0f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="ecg-small,ecg-base")
    ap.add_argument("--work", default="bench-onnx-out", type=Path)
    ap.add_argument("--parity", action="store_true")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--probe", metavar="STORE")
    ap.add_argument("--cuda-rows", action="store_true")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    models = [m for m in a.models.split(",") if m]
    out: dict = {}
    if a.parity:
        print("| model | export s | fp32 max abs diff | int8 max abs diff | max abs feature |\n"
              "|---|---|---|---|---|")
        out["parity"] = parity(models, a.work)
    if a.latency:
        print(f"| model | runtime | batch 1, 1 thread: ms | batch 64, {a.threads} threads: "
              "windows/s |\n|---|---|---|---|")
        out["latency"] = latency(models, a.work, a.repeats, a.threads)
    if a.probe:
        print("| embeddings | macro AUROC | macro F1 | challenge score |\n|---|---|---|---|")
        out["probe"] = probe(a.probe, a.work)
    if a.cuda_rows:
        out["cuda"] = cuda_rows(models, a.work, a.repeats)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
