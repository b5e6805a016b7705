"""Train / validation / test splits of a bench run and their hashed manifest.

- :func:`ptbxl_split`: PTB-XL's recommended folds (``strat_fold`` 1-8 train, 9 validation,
  10 test; Wagner et al. 2020 and helme/ecg_ptbxl_benchmarking). The folds keep a patient's
  records together.
- :func:`group_split`: whole groups (patients by default, or any field) are drawn, seeded, into
  test (``test_fraction`` of the groups), validation (``val_fraction``) and train. With
  ``strata`` (one label per group, e.g. AF / non-AF for a binary task), every stratum is split
  on its own, so a handful of patients still puts both classes into train and test where it
  can. Every non-empty stratum keeps at least one group in train; a stratum of two or more
  groups puts at least one into test.
- :func:`split_manifest`: the split as data: which records and groups went where, and a
  sha256 over the sorted record ids of each part (independent of row order), so a rerun on
  another machine can prove it used the same split.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

__all__ = ["PARTS", "group_split", "manifest_hash", "ptbxl_split", "split_manifest"]

PARTS = ("train", "val", "test")


def ptbxl_split(folds: np.ndarray) -> np.ndarray:
    """Part per row (``"train"``/``"val"``/``"test"``) from PTB-XL's ``strat_fold`` (1-10)."""
    folds = np.asarray(folds, dtype=np.int64)
    bad = folds[(folds < 1) | (folds > 10)]
    if bad.size:
        raise ValueError(f"strat_fold must be 1-10 (PTB-XL's folds); found {int(bad[0])}")
    return np.where(folds == 10, "test", np.where(folds == 9, "val", "train"))


def group_split(groups: np.ndarray, *, test_fraction: float = 0.3, val_fraction: float = 0.2,
                seed: int = 0, strata: dict[str, str] | None = None) -> np.ndarray:
    """Part per row: whole groups go to one part (see the module doc)."""
    if not 0.0 < test_fraction < 1.0 or not 0.0 <= val_fraction < 1.0 \
            or test_fraction + val_fraction >= 1.0:
        raise ValueError(f"test_fraction ({test_fraction}) and val_fraction ({val_fraction}) "
                         "must be in (0, 1) and [0, 1) with a sum below 1")
    groups = np.asarray(groups).astype(str)
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError(f"cannot split {len(unique)} patient/group(s) into train and test; "
                         "use --split-by record or a field with at least two values")
    by_stratum: dict[str, list[str]] = {}
    for g in unique:
        by_stratum.setdefault((strata or {}).get(str(g), ""), []).append(str(g))
    rng = np.random.default_rng(seed)
    part_of: dict[str, str] = {}
    for key in sorted(by_stratum):
        members = list(rng.permutation(np.array(sorted(by_stratum[key]))))
        n = len(members)
        n_test = round(test_fraction * n)
        if n >= 2:
            n_test = max(1, n_test)
        n_val = min(round(val_fraction * n), max(0, n - 1 - n_test))
        n_test = min(n_test, n - 1)
        for i, g in enumerate(members):
            part_of[str(g)] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    parts = np.array([part_of[g] for g in groups])
    if not (parts == "test").any():
        raise ValueError("the split put no patient into test; lower the strata or raise "
                         "--test-fraction")
    return parts


def manifest_hash(records_by_part: dict[str, list[str]]) -> str:
    """sha256 of ``{part: sorted record ids}`` as canonical JSON."""
    doc = {part: sorted(str(r) for r in records_by_part.get(part, [])) for part in PARTS}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
                          ).hexdigest()


def split_manifest(record_ids: np.ndarray, groups: np.ndarray, parts: np.ndarray, *,
                   method: str, seed: int, store: str) -> dict[str, Any]:
    """The manifest written into the report: method, seed, store, per part the sorted record ids
    and groups with their counts, and ``sha256`` (:func:`manifest_hash`)."""
    record_ids = np.asarray(record_ids).astype(str)
    groups = np.asarray(groups).astype(str)
    parts = np.asarray(parts).astype(str)
    records = {p: sorted(set(record_ids[parts == p].tolist())) for p in PARTS}
    grouped = {p: sorted(set(groups[parts == p].tolist())) for p in PARTS}
    overlap = (set(grouped["train"]) | set(grouped["val"])) & set(grouped["test"])
    if overlap:
        raise ValueError(f"split leaks {len(overlap)} group(s) into test, e.g. "
                         f"{sorted(overlap)[0]!r}")
    return {"method": method, "seed": seed, "store": store, "sha256": manifest_hash(records),
            "counts": {p: {"records": len(records[p]), "groups": len(grouped[p])} for p in PARTS},
            "records": records, "groups": grouped}
