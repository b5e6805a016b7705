"""The PhysioNet/CinC Challenge 2021 score over its 26 scored classes, and macro AUROC / F1.

Source of the reward matrix and of the metric's definition: the Challenge's official
evaluation code, https://github.com/physionetchallenges/evaluation-2021 (``weights.csv`` as of
commit 27a7664, "Corrected duplicated label", May 2021, unchanged since; ``evaluate_model.py``,
``compute_modified_confusion_matrix`` and ``compute_challenge_metric``). ``weights.csv`` is
shipped beside this module as ``challenge2021_weights.csv``, byte for byte. Reyna et al.,
"Will Two Do? Varying Dimensions in Electrocardiography: The PhysioNet/Computing in Cardiology
Challenge 2021", CinC 2021.

The metric, for binary labels L and outputs O over the scored classes (N records x 26):

- classes joined by ``|`` in the table are one class (4 pairs: CLBBB|LBBB, CRBBB|RBBB,
  PAC|SVPB, PVC|VPB), so 30 SNOMED codes give 26 classes; codes outside the table are ignored;
- a modified confusion matrix ``A[j, k] = sum_i L[i, j] * O[i, k] / max(|L_i or O_i|, 1)``
  (each record spreads one unit of credit over its true-by-predicted pairs);
- ``observed = sum(W * A(L, O))``, ``correct = sum(W * A(L, L))``,
  ``inactive = sum(W * A(L, sinus rhythm only))``;
- score ``(observed - inactive) / (correct - inactive)``, 0 where ``correct == inactive``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "SINUS_RHYTHM",
    "WEIGHTS_CSV",
    "challenge_classes",
    "challenge_labels",
    "challenge_score",
    "challenge_weights",
    "macro_auroc",
    "macro_f1",
    "merge_challenge_codes",
    "modified_confusion_matrix",
]

WEIGHTS_CSV = Path(__file__).with_name("challenge2021_weights.csv")
#: SNOMED CT code of sinus rhythm: the "inactive" reference outputs it for every record.
SINUS_RHYTHM = "426783006"


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[frozenset[str], ...], np.ndarray]:
    rows = [line.split(",") for line in WEIGHTS_CSV.read_text().splitlines() if line.strip()]
    header = [frozenset(c.strip().split("|")) for c in rows[0][1:]]
    names = [frozenset(r[0].strip().split("|")) for r in rows[1:]]
    if names != header:
        raise ValueError(f"{WEIGHTS_CSV}: row and column classes differ")
    weights = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float64)
    weights.setflags(write=False)
    return tuple(header), weights


def challenge_classes() -> list[frozenset[str]]:
    """The 26 scored classes in the table's order, each a set of equivalent SNOMED codes."""
    return list(_table()[0])


def challenge_weights() -> np.ndarray:
    """The published 26 x 26 reward matrix (rows: true class, columns: predicted class)."""
    return _table()[1]


def _code_index() -> dict[str, int]:
    return {code: j for j, cls in enumerate(_table()[0]) for code in cls}


def challenge_labels(codes_per_record: Iterable[Iterable[str]]) -> np.ndarray:
    """Binary (N, 26) matrix from each record's SNOMED codes; unscored codes are dropped and
    equivalent codes (e.g. 427172004 and 17338001) set the same column."""
    index, n = _code_index(), len(_table()[0])
    rows = []
    for codes in codes_per_record:
        row = np.zeros(n, dtype=bool)
        for code in codes:
            j = index.get(str(code).strip())
            if j is not None:
                row[j] = True
        rows.append(row)
    return np.array(rows, dtype=bool).reshape(len(rows), n)


def canonical_challenge_code(code: str) -> str:
    """The code standing for its equivalence class: the last of the pair as ``weights.csv``
    writes it (713427006|59118001 -> 59118001); a code outside the pairs unchanged."""
    for cls in _ordered_classes():
        if code in cls:
            return cls[-1]
    return code


@lru_cache(maxsize=1)
def _ordered_classes() -> tuple[tuple[str, ...], ...]:
    header = WEIGHTS_CSV.read_text().splitlines()[0].split(",")[1:]
    return tuple(tuple(c.strip().split("|")) for c in header)


def merge_challenge_codes(codes: Iterable[str]) -> list[str]:
    """A record's SNOMED codes with equivalent codes merged into their class's canonical code
    (order kept, duplicates dropped): a record with 713427006 is a positive for 59118001."""
    return list(dict.fromkeys(canonical_challenge_code(str(c).strip()) for c in codes))


def modified_confusion_matrix(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """``A[j, k]``: credit of true class j predicted as k, each record's unit spread over the
    classes it has as label or output. labels, outputs : (N, K) binary."""
    lab = np.asarray(labels, dtype=np.float64)
    out = np.asarray(outputs, dtype=np.float64)
    norm = np.maximum(np.logical_or(lab > 0, out > 0).sum(axis=1), 1).astype(np.float64)
    return (lab / norm[:, None]).T @ out


def challenge_score(labels: np.ndarray, outputs: np.ndarray,
                    weights: np.ndarray | None = None,
                    classes: Sequence[frozenset[str]] | None = None) -> float:
    """The Challenge 2021 score of binary ``outputs`` against ``labels``, both (N, 26) in the
    order of :func:`challenge_classes` (see :func:`challenge_labels`). 1 is perfect, 0 is
    "sinus rhythm for everyone"; it can be negative."""
    weights = challenge_weights() if weights is None else np.asarray(weights, dtype=np.float64)
    classes = challenge_classes() if classes is None else list(classes)
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    k = weights.shape[0]
    if labels.shape != outputs.shape or labels.ndim != 2 or labels.shape[1] != k:
        raise ValueError(f"labels {labels.shape} and outputs {outputs.shape} must both be "
                         f"(n_records, {k})")
    sinus = [j for j, cls in enumerate(classes) if SINUS_RHYTHM in cls]
    if not sinus:
        raise ValueError(f"the sinus rhythm class ({SINUS_RHYTHM}) is not among the classes")
    inactive_out = np.zeros_like(labels)
    inactive_out[:, sinus[0]] = True
    observed = float(np.sum(weights * modified_confusion_matrix(labels, outputs)))
    correct = float(np.sum(weights * modified_confusion_matrix(labels, labels)))
    inactive = float(np.sum(weights * modified_confusion_matrix(labels, inactive_out)))
    if correct == inactive:
        return 0.0
    return (observed - inactive) / (correct - inactive)


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    """Area under the ROC curve of one class (ties count one half): the Mann-Whitney U."""
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def macro_auroc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean AUROC over the classes with both positives and negatives; and per class (NaN
    where undefined). labels (N, K) binary, scores (N, K) real."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    per = np.array([_auroc(labels[:, k], scores[:, k]) for k in range(labels.shape[1])])
    return (float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")), per


def macro_f1(labels: np.ndarray, outputs: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean F1 over the classes present in labels or outputs (``2TP / (2TP + FP + FN)``, NaN
    where a class is in neither, as the Challenge's ``compute_f_measure``); and per class."""
    lab = np.asarray(labels, dtype=bool)
    out = np.asarray(outputs, dtype=bool)
    tp = (lab & out).sum(axis=0).astype(np.float64)
    fp = (~lab & out).sum(axis=0)
    fn = (lab & ~out).sum(axis=0)
    den = 2 * tp + fp + fn
    per = np.full(lab.shape[1], np.nan)
    np.divide(2 * tp, den, out=per, where=den > 0)
    return (float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")), per
