"""Every GPU path of the product in one go, one table at the end (run by ``gpu_check.sh``).

Steps, each a subprocess with its own time limit (a failed or timed-out step is reported and
the next one runs):

1. encoder benchmark, ours vs the authors' layout, fp32 then bf16 (``bench_encoder.py``):
   training samples/s and model FLOPs utilisation (counted FLOPs x samples/s over the GPU's
   dense bf16 peak), embedding samples/s;
2. a synthetic 12-lead store (``bench_loader.build_store``: Challenge-format records at 500 and
   1000 Hz, converted by biosig-prep);
3. pretraining throughput on one GPU with the real loader (``criss-cross pretrain``, 12 layers,
   bf16): median samples/s and the share of step time spent waiting for data;
4. a two-process DDP smoke run: ``torchrun criss-cross pretrain`` over nccl when there are two
   GPUs, and ``ddp_smoke.py`` (the same step under DDP; gloo on one GPU, nccl on two): identical
   weights on both ranks, samples/s;
5. fusion fine-tuning windows/s (``bench_fusion.py``);
6. ``criss-cross embed`` throughput (12-layer encoder, pool all) on the store.

``--quick --device cpu`` runs the same steps at toy sizes (a smoke test of this script).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Dense bf16 peak (TFLOPS, no sparsity) by device-name fragment; the MFU's denominator.
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
             "A10G": 125.0, "RTX 4090": 165.0}


def _peak(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


class Steps:
    """Runs steps, keeps their rows, stops starting new ones after the time budget."""

    def __init__(self, work: Path, budget_s: float):
        self.work, self.budget, self.t0 = work, budget_s, time.perf_counter()
        self.rows: list[tuple[str, str, str]] = []

    def run(self, name: str, cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess | None:
        left = self.budget - (time.perf_counter() - self.t0)
        if left < 20:
            self.rows.append((name, "skipped", f"time budget spent ({self.budget:.0f} s)"))
            return None
        log = self.work / f"{name.split()[0]}.log"
        t = time.perf_counter()
        print(f"[gpu_check] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=min(timeout, left),
                                  cwd=ROOT, **kw)
        except subprocess.TimeoutExpired as err:
            log.write_text(f"{err.stdout or ''}\n{err.stderr or ''}")
            self.rows.append((name, "TIMED OUT", f"after {time.perf_counter() - t:.0f} s; {log}"))
            return None
        log.write_text(proc.stdout + "\n" + proc.stderr)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1][:120]
            self.rows.append((name, "FAILED", f"exit {proc.returncode}: {last}; {log}"))
            return None
        self.seconds = time.perf_counter() - t
        return proc

    def add(self, name: str, figure: str, note: str = "") -> None:
        self.rows.append((name, figure, note))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="toy sizes (smoke test on CPU)")
    ap.add_argument("--work", type=Path, default=Path("gpu-check-out"))
    ap.add_argument("--budget", type=float, default=450.0, help="seconds before steps are skipped")
    args = ap.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: torch sees no CUDA device; run with --device cpu --quick for a smoke test",
              file=sys.stderr)
        return 1
    n_gpu = torch.cuda.device_count() if args.device == "cuda" else 0
    args.work.mkdir(parents=True, exist_ok=True)
    w = args.work.resolve()
    py, q = sys.executable, args.quick
    s = Steps(w, args.budget)
    peak = _peak(args.device)

    # 1. encoder benchmark, fp32 and bf16
    sizes = (["--batch", "2", "--infer-batch", "2", "--steps", "5", "--infer-steps", "1",
              "--warmup", "0", "--threads", "1"] if q else
             ["--batch", "64", "--infer-batch", "512", "--steps", "10", "--infer-steps", "5"])
    for dtype in ("fp32", "bf16"):
        out = w / f"encoder_{dtype}.json"
        cmd = [py, str(HERE / "bench_encoder.py"), "--device", args.device, "--dtype", dtype,
               "--skip-memory", "--json", str(out), *sizes]
        if peak:
            cmd += ["--peak-tflops", str(peak)]
        if s.run(f"encoder {dtype}", cmd, 180):
            r = json.loads(out.read_text())
            tr, inf = r["train"], r["infer"]
            mfu = (f", MFU {tr['ours']['mfu']:.1%} vs {tr['ref']['mfu']:.1%}"
                   if "mfu" in tr["ours"] else "")
            s.add(f"encoder {dtype}", f"train {tr['ours']['samples_per_s']:.1f} vs "
                  f"{tr['ref']['samples_per_s']:.1f} samples/s{mfu}",
                  f"ours vs authors' layout, batch {r['batch']}; embeddings "
                  f"{inf['ours']['samples_per_s']:.0f} vs {inf['ref']['samples_per_s']:.0f} samples/s")

    # 2. a store
    records = 4 if q else 200
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from bench_loader import build_store; "
            f"from pathlib import Path; print(build_store(Path({str(w)!r}), {records}))")
    store = None
    if proc := s.run("store", [py, "-c", code], 240):
        store = proc.stdout.strip().splitlines()[-1]
        s.add("store", f"{records} records", store)

    # 3. pretraining throughput, one GPU
    if store:
        steps, batch = (4, 8) if q else (60, 256)
        run = w / "pretrain"
        shutil.rmtree(run, ignore_errors=True)
        cmd = [py, "-m", "criss_cross.cli", "pretrain", "--store", store, "--stream", "ecg@500",
               "--stream", "ecg@1000", "--steps", str(steps), "--batch-size", str(batch),
               "--log-every", "1", "--checkpoint-every", "1000000", "--warmup-steps", "1",
               "--num-workers", "2" if q else "6", "--device", args.device, "--out", str(run),
               "--no-progress"] + (["--small"] if q else [])
        if s.run("pretrain", cmd, 240):
            lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            lines = lines[2:] or lines
            step_t = [batch / r["samples_per_s"] for r in lines]
            wait = sum(r["data_wait_fraction"] * t for r, t in zip(lines, step_t, strict=True))
            s.add("pretrain", f"{statistics.median(r['samples_per_s'] for r in lines):.1f} samples/s",
                  f"{'2' if q else '12'} layers, batch {batch}, data wait "
                  f"{100 * wait / sum(step_t):.1f} %, loss {lines[-1]['loss']:.4f}")

    # 4. DDP, two processes
    torchrun = [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    if store and n_gpu >= 2:
        run = w / "ddp-pretrain"
        shutil.rmtree(run, ignore_errors=True)
        cmd = torchrun + ["-m", "criss_cross.cli", "pretrain", "--small", "--store", store,
                          "--stream", "ecg@500", "--steps", "20", "--batch-size", "64",
                          "--device", "cuda", "--out", str(run), "--no-progress"]
        if proc := s.run("ddp pretrain (nccl)", cmd, 180):
            s.add("ddp pretrain (nccl)", (proc.stdout.strip().splitlines() or ["done"])[-1][:90],
                  "criss-cross pretrain --small under torchrun, 2 GPUs")
    out = w / "ddp.json"
    cmd = torchrun + [str(HERE / "ddp_smoke.py"), "--device", args.device, "--bf16",
                      "--json", str(out)] + (["--layers", "1", "--steps", "3", "--batch", "4"]
                                             if q else ["--steps", "20", "--batch", "64"])
    if s.run("ddp smoke", cmd, 180):
        d = json.loads(out.read_text())
        s.add(f"ddp smoke ({d['backend']})", f"{d['samples_per_s']:.1f} samples/s",
              f"2 ranks on {d['device'] if d['backend'] == 'gloo' else 'two GPUs'}, weights "
              f"identical: {d['weights_identical']}, loss {d['first_loss']:.3f} -> {d['last_loss']:.3f}")

    # 5. fusion fine-tuning
    out = w / "fusion.json"
    cmd = [py, str(HERE / "bench_fusion.py"), "--device", args.device, "--repeats",
           "1" if q else "3", "--json", str(out)]
    if s.run("fusion", cmd, 240):
        f = json.loads(out.read_text())
        ft = f["finetune_windows_per_s"]
        s.add("fusion fine-tuning", f"{ft['fusion']:.1f} windows/s",
              f"EEG only {ft['eeg']:.1f}, ECG only {ft['ecg']:.1f} (batch 8, fwd+bwd+Adam)")

    # 6. embed throughput: criss_cross.embed.embed_store (what `criss-cross embed` calls), timed
    #    in the process after a warm-up batch so that start-up and CUDA init are not counted
    if store:
        name = "ecg-small" if q else "ecg-base"
        dev, emb = args.device, str(w / "embeddings.zarr")
        code = (
            "import json, time, torch, criss_cross as c\n"
            "from criss_cross.embed import embed_store\n"
            f"m = c.create_model({name!r}, proj_out=False).eval()\n"
            "with torch.inference_mode():\n"
            f"    m.to({dev!r})(torch.zeros(2, 12, 10, 200, device={dev!r}))\n"
            "t = time.perf_counter()\n"
            f"embed_store(m, {store!r}, 'ecg@500', {emb!r}, batch_size={16 if q else 512}, "
            f"pool='all', device={dev!r}, overwrite=True)\n"
            "print(json.dumps({'seconds': time.perf_counter() - t}))\n"
        )
        if proc := s.run("embed", [py, "-c", code], 180):
            from biosig_prep import open_store

            n = len(open_store(store).stream("ecg@500"))
            sec = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
            s.add("embed", f"{n / sec:.0f} windows/s",
                  f"{name}, {n} windows of ecg@500 (12, 10, 200) in {sec:.2f} s, pool all, read "
                  "from the store included")

    dev = torch.cuda.get_device_name(0) if n_gpu else "CPU"
    print(f"\n## gpu_check: {dev} x {max(n_gpu, 1)}, torch {torch.__version__}, "
          f"{time.perf_counter() - s.t0:.0f} s{' (quick)' if q else ''}\n")
    print("| step | figure | detail |")
    print("|---|---|---|")
    for name, fig, note in s.rows:
        print(f"| {name} | {fig} | {note} |")
    failed = [r for r in s.rows if r[1] in ("FAILED", "TIMED OUT")]
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
