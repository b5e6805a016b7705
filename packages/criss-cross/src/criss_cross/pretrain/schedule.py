"""The learning-rate schedule and the seeds of every random draw of a step (pure functions)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SALT_DROPOUT", "SALT_MASK", "derive_seed", "get_lr"]

# Salts that keep the mask and dropout streams of a step apart.
SALT_MASK = 0x3A5C_0001
SALT_DROPOUT = 0x3A5C_0002


def get_lr(step: int, *, lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine from lr to min_lr."""
    if step < warmup_steps:
        return lr * (step + 1) / (warmup_steps + 1)
    if step >= total_steps:
        return min_lr
    span = max(1, total_steps - warmup_steps)
    coeff = 0.5 * (1.0 + math.cos(math.pi * (step - warmup_steps) / span))
    return min_lr + coeff * (lr - min_lr)


def derive_seed(*words: int) -> int:
    """A 63-bit seed from integers (seed, rank, step, salt): independent streams per step."""
    state = np.random.SeedSequence([int(w) for w in words]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])
