"""Streaming front: raw chunks of any size in, the windows ``convert`` would cut out.

The whole-record path (:mod:`biosig_prep.processing`) filters a record forward and backward
(zero phase, :func:`~biosig_prep.dsp.filters.apply_filter`), resamples it
(:func:`~biosig_prep.dsp.resample.resample`) and cuts windows
(:func:`~biosig_prep.dsp.windows.plan_windows`, :func:`~biosig_prep.dsp.windows.cut_with_tail`).
:class:`StreamingPrep` runs those same functions, with the same filter designs
(:func:`~biosig_prep.dsp.filters.design_filter`), the same notch resolution and the same lead
placement (:func:`~biosig_prep.dsp.leads.map_ecg_leads`), on an *overlapping segment* per
window (overlap-save): window ``k`` (output samples ``[k*step, k*step + W)`` at ``rate``) is
computed from the input samples ``[a, b)`` with

- ``a`` = the window's first input sample minus ``lookahead`` seconds (rounded down to a
  multiple of the resampler's ``down`` factor so the output grid lines up; 0 at the stream's
  start, where the segment then begins exactly where the record does, edge padding included),
- ``b`` = the window's last input sample plus ``lookahead`` seconds: a zero-phase filter looks
  into the future, so a window is ready ``lookahead`` seconds after its last sample arrived.
  That is the streaming latency (plus compute), and it is explicit (``lookahead_s``).

Between ``a`` and ``b`` the segment is cut out of a signal the filter runs over both ways; the
cut's transient decays with distance, so ``lookahead_s`` trades latency for agreement with the
whole-record result (measured in docs/onnx-stream.md: the IIR band-pass's high-pass edge at
0.5 Hz rings longest). The segment depends only on the window index and the total received
when the stream ends, never on how the samples were chunked: any chunking gives the same
windows, bit for bit. Memory is bounded: the buffer keeps ``W + 2 * lookahead`` seconds of
input (plus one chunk), whatever the stream's length.

Not done here (whole-record decisions): QC (flat/clipped leads are not masked; the amplitude
check is not applied) and the int16 range check. A lead the source lacks is zero-filled and
False in ``channel_mask``, as in a store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biosig_prep.config import PrepConfig
from biosig_prep.dsp.filters import apply_filter, design_filter, resolve_notch
from biosig_prep.dsp.leads import map_ecg_leads
from biosig_prep.dsp.montage import place_eeg_channels
from biosig_prep.dsp.resample import rational_factors, resample, resampled_length
from biosig_prep.dsp.windows import cut_with_tail, plan_windows

__all__ = ["StreamingPrep", "StreamWindow", "DEFAULT_LOOKAHEAD_S"]

DEFAULT_LOOKAHEAD_S = 6.0  # s: streamed windows within 0.23 uV of convert (docs/onnx-stream.md)


@dataclass
class StreamWindow:
    """One window as a store holds it.

    window : (C, n_patches, patch_size) float32, physical units, channels in the stream's
    order. start : first sample at ``rate``. channel_mask : (C,) bool. patch_mask :
    (n_patches,) bool (False for the zero padding of the stream's last, partial window).
    ready_at : input samples received when the window could be computed (its latency in
    samples at the source rate is ``ready_at`` minus its last input sample).
    """

    window: np.ndarray
    start: int
    channel_mask: np.ndarray
    patch_mask: np.ndarray
    ready_at: int


class StreamingPrep:
    """Raw samples at the source rate in, windows at ``rate`` out, as ``convert`` cuts them.

    Parameters
    ----------
    channels : names of the source's channels (rows of every chunk).
    fs : source sampling rate (Hz).
    rate : output rate (Hz) of the windows.
    config : the preprocessing (band-pass, notch, window geometry, tail policy, lead order);
        a model card's settings or :class:`PrepConfig` defaults.
    modality : ``"ecg"`` (leads placed in ``config.leads`` by name) or ``"eeg"`` (placed in
        ``config.eeg_channels`` by name with :func:`~biosig_prep.dsp.montage.place_eeg_channels`,
        as ``convert`` places them; file order where the config names none). A channel the
        source lacks is zero-filled and False in ``channel_mask``; ``missing`` / ``dropped``
        list the stream channels the source lacks and the source channels left out.
    source, record_id, line_freq : for ``notch="auto"``, as in ``convert``.
    lookahead_s : seconds of future signal the zero-phase filter sees past a window's end
        (and of past signal before its start).
    """

    def __init__(self, channels: Sequence[str], fs: float, rate: int, config: PrepConfig, *,
                 modality: str = "ecg", source: str | None = None,
                 record_id: str | None = None, line_freq: float | None = None,
                 lookahead_s: float = DEFAULT_LOOKAHEAD_S):
        if lookahead_s < 0:
            raise ValueError(f"lookahead_s ({lookahead_s}) must not be negative")
        fcfg = config.ecg if modality == "ecg" else config.eeg
        self.fs, self.rate, self.config, self.modality = float(fs), int(rate), config, modality
        notch = resolve_notch(fcfg.notch, source, record_id, line_freq)
        if notch is not None and notch >= self.fs / 2.0 and fcfg.notch == "auto":
            notch = None
        self.notch_hz = notch
        self.sos = design_filter(fcfg, self.fs, notch)
        self.h_freq = fcfg.h_freq
        self.missing: list[str] = []
        self.dropped: list[str] = []
        found: list[int | None]
        if modality == "ecg":
            found, _ = map_ecg_leads(list(channels), config.leads)
            self.channels = list(config.leads)
        elif config.eeg_channels is not None:  # the store's montage, each channel by name
            found, self.missing, self.dropped = place_eeg_channels(list(channels),
                                                                   config.eeg_channels)
            self.channels = list(config.eeg_channels)
        else:
            found, self.channels = list(range(len(channels))), list(channels)
        self.rows = np.array([r for r in found if r is not None], dtype=np.intp)
        self.slots = np.array([k for k, r in enumerate(found) if r is not None], dtype=np.intp)
        self.channel_mask = np.zeros(len(self.channels), dtype=bool)
        self.channel_mask[self.slots] = True
        self.n_in_channels = len(channels)
        self.up, self.down = rational_factors(self.fs, self.rate)
        self.window = config.n_patches * config.patch_size
        self.step = config.window_step or self.window
        self.lookahead = int(math.ceil(lookahead_s * self.fs))
        self.lookahead_s = float(lookahead_s)
        self._buf = np.zeros((len(self.rows), 0), dtype=np.float64)
        self._buf0 = 0  # input index of the buffer's first sample
        self.n_in = 0  # input samples received
        self._next = 0  # index of the next window
        self._closed = False

    # ---- geometry -----------------------------------------------------------------------
    def _in_pos(self, out_index: int) -> int:
        """First input sample at or after output sample ``out_index``."""
        return -(-out_index * self.down // self.up)

    def _segment(self, k: int, end: int | None) -> tuple[int, int]:
        first = k * self.step
        a = max(0, self._in_pos(first) - self.lookahead)
        a -= a % self.down
        b = self._in_pos(first + self.window) + self.lookahead if end is None else end
        return a, b

    @property
    def latency_s(self) -> float:
        """Seconds between a window's last sample and the moment it can be computed."""
        return self.lookahead / self.fs

    # ---- work ---------------------------------------------------------------------------
    def _compute(self, k: int, a: int, b: int, n_valid: int) -> StreamWindow:
        seg = self._buf[:, a - self._buf0:b - self._buf0]
        y = apply_filter(self.sos, seg, self.fs)
        if self.rate != self.fs:
            y = resample(y, self.fs, self.rate, h_freq=self.h_freq)
        offset = a * self.up // self.down
        first = k * self.step - offset
        cfg = self.config
        win, pmask = cut_with_tail(y, cfg.n_patches, cfg.patch_size, np.array([first]),
                                   np.array([n_valid]))
        out = np.zeros((len(self.channels), cfg.n_patches, cfg.patch_size), dtype=np.float32)
        out[self.slots] = win[0]
        return StreamWindow(window=out, start=k * self.step, channel_mask=self.channel_mask.copy(),
                            patch_mask=pmask[0], ready_at=self.n_in)

    def _trim(self) -> None:
        keep_from = self._segment(self._next, None)[0]
        if keep_from > self._buf0:
            self._buf = self._buf[:, keep_from - self._buf0:]
            self._buf0 = keep_from

    def push(self, chunk: np.ndarray) -> list[StreamWindow]:
        """Add ``chunk`` (n_channels, n_samples) of raw samples in physical units; return the
        windows that became computable (possibly none)."""
        if self._closed:
            raise ValueError("the stream was flushed; start a new StreamingPrep")
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2 or chunk.shape[0] != self.n_in_channels:
            raise ValueError(f"chunk must have shape (n_channels={self.n_in_channels}, n), "
                             f"got {chunk.shape}")
        if not np.isfinite(chunk).all():
            raise ValueError("chunk holds NaN or infinite values: fill or drop them first")
        self._buf = np.concatenate([self._buf, chunk[self.rows]], axis=1)
        self.n_in += chunk.shape[1]
        out = []
        while True:
            a, b = self._segment(self._next, None)
            if b > self.n_in:
                break
            out.append(self._compute(self._next, a, b, self.config.n_patches))
            self._next += 1
        self._trim()
        return out

    def flush(self) -> list[StreamWindow]:
        """The stream ended: the remaining windows, computed to the true end (as ``convert``
        filters to a record's end), the tail window per the tail policy."""
        if self._closed:
            return []
        self._closed = True
        cfg = self.config
        n_out = self.n_in if self.rate == self.fs else resampled_length(self.n_in, self.fs,
                                                                       self.rate)
        starts, n_valid = plan_windows(n_out, cfg.n_patches, cfg.patch_size, cfg.window_step,
                                       cfg.pad, cfg.tail.policy, cfg.tail.min_valid_fraction)
        out = []
        for k in range(self._next, len(starts)):
            a, _ = self._segment(k, None)
            out.append(self._compute(k, a, self.n_in, int(n_valid[k])))
        self._next = len(starts)
        return out

    @property
    def buffered(self) -> int:
        """Input samples held now (bounded by the window plus twice the lookahead, plus one
        chunk)."""
        return int(self._buf.shape[1])
