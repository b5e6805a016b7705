"""Window level and clip level: the two units a DREAMER result can be scored in.

A DREAMER rating belongs to a (subject, clip) pair; the store cuts every clip into windows that
all carry that rating. Window level scores each window; clip level (the paper's unit: 18 clips
per subject) scores each (subject, clip) by the mean of its windows' probabilities of High.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusion_emotion.metrics import evaluate

__all__ = ["LEVELS", "levels_of", "clip_aggregate", "clip_result"]

LEVELS = ("window", "clip")


def levels_of(level: str) -> list[str]:
    """``"both"`` -> ["window", "clip"]; otherwise the one level."""
    return list(LEVELS) if level == "both" else [level]


def clip_aggregate(
    y: Sequence[int] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    subject: Sequence[int] | np.ndarray,
    clip: Sequence[int] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One entry per (subject, clip), sorted by subject then clip: (y, mean score, subject, clip).

    Every window of a (subject, clip) must carry the same label (a clip has one rating).
    """
    y, score = np.asarray(y, dtype=np.int64), np.asarray(score, dtype=np.float64)
    subject, clip = np.asarray(subject, dtype=np.int64), np.asarray(clip, dtype=np.int64)
    if not (y.shape == score.shape == subject.shape == clip.shape):
        raise ValueError(f"y {y.shape}, score {score.shape}, subject {subject.shape} and clip {clip.shape} must match")
    keys, inv = np.unique(np.stack([subject, clip], axis=1), axis=0, return_inverse=True)
    inv = inv.ravel()
    n = np.bincount(inv, minlength=len(keys)).astype(np.float64)
    mean_score = np.bincount(inv, weights=score, minlength=len(keys)) / n
    mean_y = np.bincount(inv, weights=y, minlength=len(keys)) / n
    if np.any((mean_y > 0) & (mean_y < 1)):
        raise ValueError("the windows of one (subject, clip) carry different labels")
    return mean_y.astype(np.int64), mean_score, keys[:, 0], keys[:, 1]


def clip_result(result: Mapping[str, Any], dimensions: Sequence[str]) -> dict[str, Any]:
    """A job's fold file at clip level: y, scores, test_subject, metrics (and the scores with a
    modality absent, when present) per (subject, clip) instead of per window."""
    out = dict(result)
    subj, clip = result["test_subject"], result["test_clip"]
    y_c, scores, metrics = {}, {}, {}
    s_c: np.ndarray = np.zeros(0, dtype=np.int64)
    for dim in dimensions:
        yc, sc, s_c, _ = clip_aggregate(result["y"][dim], result["scores"][dim], subj, clip)
        y_c[dim], scores[dim] = yc.tolist(), sc.tolist()
        metrics[dim] = evaluate(yc, sc, s_c)
    out.update(y=y_c, scores=scores, metrics=metrics, test_subject=s_c.tolist())
    if "scores_absent" in result:
        out["scores_absent"] = {
            m: {dim: clip_aggregate(result["y"][dim], sc[dim], subj, clip)[1].tolist() for dim in dimensions}
            for m, sc in result["scores_absent"].items()
        }
    return out
