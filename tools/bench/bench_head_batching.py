"""Does training many small fusion heads as one stacked model beat training them one by one?

Usage: python tools/bench/bench_head_batching.py FEATURES MEMBERS THREADS
       (e.g. ``4000 69 1``: a ``pool=flatten`` concat head, 23 LOSO folds x 3 dimensions)

The head is the paper's ``Linear(F, 200) -> ELU -> Dropout -> Linear(200, 1)`` at batch 8 with
fused Adam (what :mod:`fusion_emotion.protocol` trains on cached embeddings). One by one: 300
steps of one head. Stacked: MEMBERS copies as one model (``torch.func.stack_module_state`` +
``functional_call`` under ``vmap``), each member with its own batch of 8, 30 steps. Prints the
milliseconds per head-step of both (issue 18: why LOSO's head work is not batched).
"""

from __future__ import annotations

import copy
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


def _head(features: int) -> nn.Module:
    return nn.Sequential(nn.Linear(features, 200), nn.ELU(), nn.Dropout(0.2), nn.Linear(200, 1))


def main() -> None:
    features, members, threads = (int(a) for a in sys.argv[1:4])
    torch.set_num_threads(threads)
    x = torch.randn(6000, features)
    y = (torch.rand(6000, 1) > 0.5).float()

    head = _head(features)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3, fused=True)
    t0 = time.perf_counter()
    for _ in range(300):
        idx = torch.randint(0, 6000, (8,))
        loss = F.binary_cross_entropy_with_logits(head(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    one = (time.perf_counter() - t0) / 300

    heads = [_head(features) for _ in range(members)]
    params, buffers = stack_module_state(heads)  # type: ignore[arg-type]
    base = copy.deepcopy(heads[0]).to("meta")

    def call(p, b, xb):
        return functional_call(base, (p, b), (xb,))

    stacked = vmap(call, randomness="different")
    opt = torch.optim.Adam(list(params.values()), lr=1e-3, fused=True)
    t0 = time.perf_counter()
    for _ in range(30):
        idx = torch.randint(0, 6000, (members, 8))
        out = stacked(params, buffers, x[idx])
        loss = F.binary_cross_entropy_with_logits(out, y[idx], reduction="none").mean(dim=(1, 2)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    per_member = (time.perf_counter() - t0) / 30 / members
    print(f"F={features} members={members} threads={threads}: one by one {one * 1e3:.2f} ms/step, "
          f"stacked {per_member * 1e3:.2f} ms per head-step ({one / per_member:.2f}x)")


if __name__ == "__main__":
    main()
