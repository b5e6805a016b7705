"""Cut a (n_channels, n_times) signal into windows of shape (n_channels, n_patches, patch_size).

A window is ``n_patches * patch_size`` samples at the rate of the signal. With no step the
windows do not overlap and the count is exactly ``n_times // window``; with a step it is
``(n_times - window) // step + 1``. A signal shorter than one window gives no window, unless
``pad="zero"``, which gives one window holding the signal followed by zeros.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["window_starts", "cut_windows"]


def window_starts(n_times: int, window: int, step: int | None = None,
                  pad: Literal["none", "zero"] = "none") -> np.ndarray:
    """First sample of every window, int64, shape (n_windows,)."""
    if window <= 0:
        raise ValueError(f"window ({window}) must be positive")
    step = window if step is None else int(step)
    if step <= 0:
        raise ValueError(f"step ({step}) must be positive")
    if pad not in ("none", "zero"):
        raise ValueError(f"pad must be 'none' or 'zero', got {pad!r}")
    if n_times >= window:
        return np.arange(0, n_times - window + 1, step, dtype=np.int64)
    if pad == "zero" and n_times > 0:
        return np.zeros(1, dtype=np.int64)
    return np.zeros(0, dtype=np.int64)


def cut_windows(x: np.ndarray, n_patches: int, patch_size: int, step: int | None = None,
                pad: Literal["none", "zero"] = "none", *, starts: np.ndarray | None = None,
                dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``x`` (shape (n_channels, n_times)).

    starts : cut at these first samples instead of the regular grid (used to align paired
        streams); every start must leave a full window inside ``x`` unless ``pad="zero"``.

    Returns
    -------
    windows : ndarray, shape (n_windows, n_channels, n_patches, patch_size), ``dtype``.
    starts : ndarray, shape (n_windows,), int64.
    """
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n_channels, n_times), got {x.shape}")
    n_channels, n_times = x.shape
    window = n_patches * patch_size
    if starts is None:
        starts = window_starts(n_times, window, step, pad)
    starts = np.asarray(starts, dtype=np.int64)
    n = len(starts)
    if n == 0:
        return np.zeros((0, n_channels, n_patches, patch_size), dtype=dtype), starts
    if int(starts.max()) + window > n_times:
        if pad != "zero":
            raise ValueError(
                f"a window at sample {int(starts.max())} runs past the end ({n_times} samples)")
        x = np.concatenate(
            [x, np.zeros((n_channels, int(starts.max()) + window - n_times), dtype=x.dtype)],
            axis=1)
    regular = n == 1 or bool(np.all(np.diff(starts) == window))
    if regular:
        first = int(starts[0])
        block = x[:, first:first + n * window].reshape(n_channels, n, n_patches, patch_size)
        out = np.empty((n, n_channels, n_patches, patch_size), dtype=dtype)
        out[...] = block.transpose(1, 0, 2, 3)
        return out, starts
    view = sliding_window_view(x, window, axis=-1)  # (C, T - W + 1, W), no copy
    picked = view[:, starts]  # (C, N, W)
    out = np.empty((n, n_channels, n_patches, patch_size), dtype=dtype)
    out[...] = picked.reshape(n_channels, n, n_patches, patch_size).transpose(1, 0, 2, 3)
    return out, starts
