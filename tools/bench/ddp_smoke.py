"""Two-process DDP smoke run of the criss-cross encoder: the step of ``criss_cross.pretrain``
(dual masking, forward under bf16 autocast, dual-masking loss, backward, AdamW) under
DistributedDataParallel, then a check that every rank holds the same weights.

Usage (under torchrun)::

    torchrun --standalone --nproc-per-node 2 tools/bench/ddp_smoke.py --device cuda --bf16

Backend: nccl when the device is CUDA and there is a GPU per rank; otherwise gloo, with every
rank on ``cuda:0`` (one GPU) or on the CPU. Rank 0 prints one JSON line and writes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from criss_cross import CrissCrossEncoder, DualMaskingLoss, EncoderConfig, dual_mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32, help="windows per rank per step")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--channels", type=int, default=12)
    ap.add_argument("--patches", type=int, default=10)
    ap.add_argument("--bf16", action="store_true", help="forward under bf16 autocast")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    kind = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and torch.cuda.device_count() >= world:
        backend, device = "nccl", torch.device("cuda", local)
    elif kind == "cuda":
        backend, device = "gloo", torch.device("cuda", 0)
    else:
        backend, device = "gloo", torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    try:
        doc = _train(args, rank, world, device, backend)
        # the DDP model, its reducer and the optimizer went with _train's frame; every rank is
        # past its last collective before the group goes (a reducer outliving its group
        # aborted at exit now and then: "terminate called without an active exception").
        # Only on success: a failed rank must not wait here for peers still in a collective.
        dist.barrier()
        if rank == 0:
            print(json.dumps(doc))
            if args.json:
                args.json.write_text(json.dumps(doc, indent=2) + "\n")
        if not doc["weights_identical"] or not doc["finite"]:
            raise SystemExit(f"rank {rank}: DDP smoke failed: {doc}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(args, rank: int, world: int, device: torch.device, backend: str) -> dict:
    """The timed DDP steps and the weight check; returns the result document."""
    torch.manual_seed(0)  # the same initial weights on every rank (DDP broadcasts anyway)
    model = CrissCrossEncoder(EncoderConfig(n_layers=args.layers)).to(device).train()
    net = DistributedDataParallel(model, device_ids=[device.index] if backend == "nccl" else None)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss_fn = DualMaskingLoss()
    gen = torch.Generator().manual_seed(1000 + rank)
    shape = (args.batch, args.channels, args.patches)
    x = torch.randn(*shape, model.config.patch_size, generator=gen).to(device)
    valid = torch.ones(shape[:2], dtype=torch.bool, device=device)
    losses, t0 = [], 0.0
    for step in range(args.steps):
        if step == 1:  # the first step (allocations, kernels) is not timed
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        mask, masked_ch = dual_mask(shape, 0.5, 0.25, gen)
        mask, masked_ch = mask.to(device), masked_ch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            pred = net(x, mask)
        loss = loss_fn(pred.float(), x, mask, masked_channels=masked_ch,
                       valid_channels=valid).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    flat = torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    same = torch.tensor([float(torch.equal(flat, ref))], device=device)
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    timed = max(args.steps - 1, 1)
    doc = {"world_size": world, "backend": backend, "device": str(device), "bf16": args.bf16,
           "layers": args.layers, "steps": args.steps, "batch_per_rank": args.batch,
           "samples_per_s": world * args.batch * timed / elapsed if elapsed > 0 else 0.0,
           "first_loss": losses[0], "last_loss": losses[-1],
           "weights_identical": bool(same.item() == 1.0),
           "finite": all(map(lambda v: v == v and abs(v) != float("inf"), losses))}
    return doc


if __name__ == "__main__":
    main()
    # Success (a failure raised above with its own exit status): leave without interpreter
    # finalization, where torch's gloo/DDP objects aborted the process now and then after a
    # clean destroy_process_group ("terminate called without an active exception", exit -6:
    # 2 of 6 runs; 0 of 10 with this exit).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
