"""Named bench tasks and the labels they read.

A task says where its labels live and how the data are split:

============== ======================== ====== ============== ==================================
task           labels                   level  split          notes
============== ======================== ====== ============== ==================================
ptbxl-all      metadata ``ptbxl_all``    record PTB-XL folds   all 71 SCP statements
ptbxl-diag     ``ptbxl_diag``            record PTB-XL folds   diagnostic statements
ptbxl-subdiag  ``ptbxl_subdiag``         record PTB-XL folds   diagnostic subclasses
ptbxl-superdiag ``ptbxl_superdiag``      record PTB-XL folds   5 superclasses
ptbxl-form     ``ptbxl_form``            record PTB-XL folds   form statements
ptbxl-rhythm   ``ptbxl_rhythm``          record PTB-XL folds   rhythm statements
challenge2021  metadata ``dx`` (SNOMED)  record patient        equivalent codes merged; score
af-rhythm      window label ``af``       window patient        binary AF / non-AF
============== ======================== ====== ============== ==================================

``--labels FIELD`` makes a task of any labelled store: a per-window label of the stream
(``<stream>/labels/FIELD``) or a record metadata field holding codes (split by patient).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from criss_cross.probe.challenge import canonical_challenge_code, merge_challenge_codes

__all__ = ["TASKS", "Task", "canonical_challenge_code", "merge_challenge_codes", "resolve_task"]


@dataclass(frozen=True)
class Task:
    """One bench task (see the module doc)."""

    name: str
    labels: str
    level: str = "record"          # "record" (metadata codes) or "window" (stream labels)
    split: str = "patient"         # "ptbxl" (strat_fold 1-8/9/10) or "patient"
    challenge: bool = False        # merge the Challenge's equivalent codes, report its score
    description: str = ""


TASKS: dict[str, Task] = {t.name: t for t in (
    *(Task(f"ptbxl-{k}", f"ptbxl_{k}", split="ptbxl", description=f"PTB-XL {d}")
      for k, d in (("all", "all statements"), ("diag", "diagnostic statements"),
                   ("subdiag", "diagnostic subclasses"), ("superdiag", "diagnostic superclasses"),
                   ("form", "form statements"), ("rhythm", "rhythm statements"))),
    Task("challenge2021", "dx", challenge=True,
         description="PhysioNet/CinC Challenge 2021 diagnoses (SNOMED CT, equivalents merged)"),
    Task("af-rhythm", "af", level="window", description="atrial fibrillation per window"),
)}


def resolve_task(name: str, labels: str | None = None,
                 window_labels: tuple[str, ...] | list[str] = ()) -> Task:
    """The task ``name`` (``custom`` with ``labels``); ``labels`` also overrides a named task's
    field. A field among ``window_labels`` is read per window."""
    if name == "custom" or name not in TASKS:
        if name != "custom":
            raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)} (or "
                           "'custom' with --labels FIELD)")
        if not labels:
            raise ValueError("task 'custom' needs --labels FIELD (a metadata field or a "
                             "per-window label of the stream)")
        level = "window" if labels in window_labels else "record"
        return Task("custom", labels, level=level, description=f"labels {labels!r}")
    task = TASKS[name]
    if labels:
        level = "window" if labels in window_labels else "record"
        task = Task(task.name, labels, level=level, split=task.split, challenge=task.challenge,
                    description=task.description)
    return task


def window_classes(values: np.ndarray, classes: list[str]) -> tuple[np.ndarray, list[str]]:
    """Binary columns of integer window labels: one column (the positive class, index 1) for
    two classes, one per class present otherwise."""
    values = np.asarray(values, dtype=np.int64)
    if len(classes) == 2:
        return (values == 1)[:, None], [classes[1]]
    present = sorted(set(values[values >= 0].tolist()))
    return np.stack([values == k for k in present], axis=1), [classes[k] for k in present]
