"""Cut a (n_channels, n_times) signal into windows of shape (n_channels, n_patches, patch_size).

A window is ``n_patches * patch_size`` samples at the rate of the signal. With no step the
windows do not overlap and the count is exactly ``n_times // window``; with a step it is
``(n_times - window) // step + 1``. A signal shorter than one window gives no window, unless
``pad="zero"``, which gives one window holding the signal followed by zeros.

Tails (:func:`plan_windows`, :func:`cut_with_tail`): with the tail policy ``"pad"`` a record's
last, partial window is kept, zero-padded at the end, when at least ``min_valid_fraction`` of
its patches are whole patches of real samples. Its ``patch_mask`` row is True for those patches
and False for the rest; a patch only partly covered by the record is zeroed and masked too, so
a masked patch is always all zeros and the padding is always at the end.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["window_starts", "cut_windows", "plan_windows", "cut_with_tail"]


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
        out: np.ndarray = np.empty((n, n_channels, n_patches, patch_size), dtype=dtype)
        out[...] = block.transpose(1, 0, 2, 3)
        return out, starts
    view = sliding_window_view(x, window, axis=-1)  # (C, T - W + 1, W), no copy
    picked = view[:, starts]  # (C, N, W)
    out = np.empty((n, n_channels, n_patches, patch_size), dtype=dtype)
    out[...] = picked.reshape(n_channels, n, n_patches, patch_size).transpose(1, 0, 2, 3)
    return out, starts


def plan_windows(n_times: int, n_patches: int, patch_size: int, step: int | None = None,
                 pad: Literal["none", "zero"] = "none",
                 tail: Literal["pad", "drop"] = "drop",
                 min_valid_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """First sample and number of valid patches of every window.

    The regular windows (see :func:`window_starts`) have ``n_patches`` valid patches. With
    ``tail="pad"`` one more window starts at the next position of the grid when the record
    still holds at least ``ceil(min_valid_fraction * n_patches)`` whole patches there. With
    ``pad="zero"`` a record too short for any window gives one window at 0 (at least one whole
    patch needed).

    Returns
    -------
    starts : ndarray, shape (n_windows,), int64.
    n_valid : ndarray, shape (n_windows,), int64, valid patches (1..n_patches) of each window.
    """
    window = n_patches * patch_size
    starts = window_starts(n_times, window, step, "none")
    n_valid = np.full(len(starts), n_patches, dtype=np.int64)
    nxt = int(starts[-1]) + (window if step is None else int(step)) if len(starts) else 0
    whole = max(0, n_times - nxt) // patch_size
    need = max(1, int(np.ceil(min_valid_fraction * n_patches - 1e-9)))
    keep_tail = (tail == "pad" and whole >= need) or (
        pad == "zero" and not len(starts) and whole >= 1)
    if keep_tail and nxt < n_times:
        starts = np.append(starts, np.int64(nxt))
        n_valid = np.append(n_valid, np.int64(min(whole, n_patches)))
    return starts, n_valid


def cut_with_tail(x: np.ndarray, n_patches: int, patch_size: int, starts: np.ndarray,
                  n_valid: np.ndarray, *, dtype: type = np.float32
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``x`` (n_channels, n_times) at ``starts``, patches past ``n_valid`` zeroed.

    Returns windows (n, n_channels, n_patches, patch_size) and patch_mask (n, n_patches) bool.
    """
    win, _ = cut_windows(x, n_patches, patch_size, pad="zero", starts=starts, dtype=dtype)
    mask = np.arange(n_patches)[None, :] < np.asarray(n_valid)[:, None]
    short = np.flatnonzero(~mask.all(axis=1))
    for i in short.tolist():
        win[i, :, int(n_valid[i]):, :] = 0
    return win, mask
