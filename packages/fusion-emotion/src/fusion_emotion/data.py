"""The DREAMER store as fusion-emotion reads it: paired windows, ratings, subject and clip.

A DREAMER store is written by ``biosig-prep convert DREAMER.mat dreamer.zarr --format dreamer``:
paired, time-aligned streams ``eeg@200`` (14 ch, µV) and ``ecg@200`` (2 ch, mV) of windows
(N, C, 10, 200), and ``labels/{valence, arousal, dominance, subject, clip}`` (N,) aligned with
them. Everything is read through :func:`biosig_prep.open_store`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusion_emotion.config import DIMENSIONS

__all__ = ["DreamerWindows", "DreamerData", "open_dreamer"]

_LABEL_KEYS = (*DIMENSIONS, "subject", "clip")


@dataclass
class DreamerWindows:
    """Ratings, subject and clip of every window, and the streams of the requested modalities.

    ratings : dimension -> (N,) int64, 1..5.
    subject, clip : (N,) int64.
    streams : modality -> the store's stream (``.read(start, stop)``, ``.channels``, ...).
    """

    url: str
    ratings: dict[str, np.ndarray]
    subject: np.ndarray
    clip: np.ndarray
    streams: dict[str, Any]
    store: Any = None
    _loaded: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _patch_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_windows(self) -> int:
        return int(self.subject.shape[0])

    @property
    def subjects(self) -> np.ndarray:
        return np.unique(self.subject)

    def targets(self, threshold: int = 3) -> np.ndarray:
        """(N, 3) int64: 1 = High (rating >= threshold), columns in DIMENSIONS order."""
        return np.stack([(self.ratings[d] >= threshold).astype(np.int64) for d in DIMENSIONS], axis=1)

    def shape(self, modality: str) -> tuple[int, int, int]:
        """(C, P, S) of one window of ``modality``."""
        s = self.streams[modality]
        return tuple(int(v) for v in s.windows.shape[1:])  # type: ignore[return-value]

    def iter_parts(self, modality: str, chunk: int = 256) -> Iterator[dict[str, np.ndarray]]:
        """In order: {"windows" (n, C, P, S) float32 in store units, "channel_mask" (n, C) bool,
        "patch_mask" (n, P) bool (all True where the store has none: schema 1)}."""
        if modality in self._loaded:
            w, m = self._loaded[modality]
            pm = self._patch_masks[modality]
            for i in range(0, len(w), chunk):
                yield {"windows": w[i : i + chunk], "channel_mask": m[i : i + chunk],
                       "patch_mask": pm[i : i + chunk]}
            return
        s = self.streams[modality]
        step = max(int(chunk), int(getattr(s, "shard_size", chunk) or chunk))
        for i in range(0, self.n_windows, step):
            part = s.read(i, min(i + step, self.n_windows))
            w = part["windows"]
            pm = part.get("patch_mask")
            if pm is None:
                pm = np.ones(w.shape[:1] + w.shape[2:3], dtype=bool)
            yield {"windows": w, "channel_mask": np.asarray(part["channel_mask"], dtype=bool),
                   "patch_mask": np.asarray(pm, dtype=bool)}

    def iter_chunks(self, modality: str, chunk: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(windows (n, C, P, S) float32 in store units, channel_mask (n, C) bool), in order."""
        for part in self.iter_parts(modality, chunk):
            yield part["windows"], part["channel_mask"]

    def load(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """All windows (N, C, P, S) float32 and channel_mask (N, C) of ``modality``, in memory
        (and its patch mask, :meth:`patch_mask`)."""
        if modality not in self._loaded:
            parts = list(self.iter_parts(modality))
            self._patch_masks[modality] = np.concatenate([p["patch_mask"] for p in parts])
            self._loaded[modality] = (
                np.concatenate([p["windows"] for p in parts]).astype(np.float32, copy=False),
                np.concatenate([p["channel_mask"] for p in parts]),
            )
        return self._loaded[modality]

    def patch_mask(self, modality: str) -> np.ndarray:
        """(N, P) bool, True = valid patch (all True for a store without patch masks). Read once
        (with the windows when they are loaded, else on its own)."""
        if modality not in self._patch_masks:
            parts = [p["patch_mask"] for p in self.iter_parts(modality)]
            self._patch_masks[modality] = np.concatenate(parts)
        return self._patch_masks[modality]

    def set_patch_mask(self, modality: str, mask: np.ndarray) -> None:
        """Record a patch mask read elsewhere (e.g. from the embedding cache)."""
        self._patch_masks[modality] = np.asarray(mask, dtype=bool)


#: the name this class had before
DreamerData = DreamerWindows


def open_dreamer(
    store: Any,
    streams: dict[str, str],
    *,
    allow_incomplete: bool = False,
) -> DreamerWindows:
    """Open a DREAMER store (URL/path, or an already opened :class:`biosig_prep.Store`).

    streams : modality -> stream name, e.g. ``{"eeg": "eeg@200", "ecg": "ecg@200"}``.
    """
    if isinstance(store, str | Path):
        import biosig_prep

        url = str(store)
        store = biosig_prep.open_store(url, allow_incomplete=allow_incomplete)
    else:
        url = str(getattr(store, "url", store))
    labels = store.labels()
    if labels is None:
        raise ValueError(
            f"store {url} has no labels/ group: it is not a DREAMER store "
            "(write one with `biosig-prep convert DREAMER.mat OUT.zarr --format dreamer`)"
        )
    missing = [k for k in _LABEL_KEYS if k not in labels]
    if missing:
        raise ValueError(f"store {url}: labels/ lacks {missing} (has {sorted(labels)})")
    n = int(np.asarray(labels["subject"]).shape[0])
    opened = {}
    for modality, name in streams.items():
        if name not in store.stream_names:
            raise ValueError(
                f"store {url} has no stream {name!r} for {modality.upper()} "
                f"(available: {', '.join(store.stream_names) or 'none'})"
            )
        s = store.stream(name)
        if s.modality != modality:
            raise ValueError(
                f"store {url}: the {modality.upper()} stream is {name!r}, which holds "
                f"{s.modality.upper()} windows; the {modality.upper()} encoder must read "
                f"{modality.upper()} (set {modality}_stream to a {modality}@RATE stream)"
            )
        if len(s) != n:
            raise ValueError(
                f"store {url}: stream {name} has {len(s)} windows but labels/ has {n}; "
                "paired streams and labels must be aligned"
            )
        opened[modality] = s
    ratings = {d: np.asarray(labels[d], dtype=np.int64) for d in DIMENSIONS}
    for d, r in ratings.items():
        if r.size and (r.min() < 1 or r.max() > 5):
            raise ValueError(f"store {url}: {d} ratings must be 1..5, found {r.min()}..{r.max()}")
    return DreamerWindows(
        url=url,
        ratings=ratings,
        subject=np.asarray(labels["subject"], dtype=np.int64),
        clip=np.asarray(labels["clip"], dtype=np.int64),
        streams=opened,
        store=store,
    )
