"""Where and how torch runs: device resolution and thread counts, one rule for every package."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["DEVICE_CHOICES", "resolve_device", "torch_threads", "n_cpus"]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """The torch device for ``choice``: ``auto`` (CUDA if torch sees a GPU, else CPU), ``cpu``,
    ``cuda`` (device ``local_rank``, made current), ``cuda:N`` or ``mps``.

    Raises ValueError naming the choice and the fix for an unknown device or one torch cannot
    use here.
    """
    text = str(choice).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = text.partition(":")
    if kind not in DEVICE_CHOICES[1:] or (index and not index.isdigit()):
        raise ValueError(f"unknown device {choice!r}: use one of {', '.join(DEVICE_CHOICES)} "
                         "(or cuda:N)")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but torch cannot use it here; "
                             "use --device cpu")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was asked for but torch sees no GPU; "
                         "use --device cpu")
    ordinal = int(index) if index else int(local_rank)
    if ordinal >= torch.cuda.device_count():
        raise ValueError(f"device {choice!r}: torch sees {torch.cuda.device_count()} GPU(s)")
    torch.cuda.set_device(ordinal)
    return torch.device("cuda", ordinal)


def n_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (unchanged for None), then restore."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
