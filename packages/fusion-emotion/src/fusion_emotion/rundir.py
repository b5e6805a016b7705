"""Every path of a run folder, and the only code that writes into one.

A run folder (``fusion-emotion train --out RUN_DIR``) holds::

    config.yaml              the FusionConfig of the run
    run.json                 run key (settings + encoders + data fingerprint), store, weights,
                             encoders, warnings, versions, labels summary
    folds/seed{S}/fold{K}/{row}.json   one finished job (model row) or baseline row
    checkpoints/seed{S}-fold{K}-{row}.safetensors (+ .json)   best heads of a job
    cache/{modality}.npy (+ .json)     frozen mode: channel-pooled per-patch embeddings
    metrics.json, report.md, *.png     the report (:mod:`fusion_emotion.report`)

Every file goes through an atomic write (:mod:`biosig_prep.util`): a reader, or a resumed run,
sees the old file or the whole new one, never half.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from biosig_prep.util import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["RunDir", "fold_result_path", "RunFolderError"]


class RunFolderError(ValueError):
    """The run folder cannot be used (a file where a folder should be, other settings...)."""


def fold_result_path(out_dir: str | Path, seed: int, fold: int, row: str) -> Path:
    return Path(out_dir) / "folds" / f"seed{seed}" / f"fold{fold}" / f"{row}.json"


@dataclass(frozen=True)
class RunDir:
    """The paths of one run folder and its writers."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # ---- paths ---------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def folds(self) -> Path:
        return self.root / "folds"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def fold_result(self, seed: int, fold: int, row: str) -> Path:
        return fold_result_path(self.root, seed, fold, row)

    def cache_file(self, modality: str, suffix: str) -> Path:
        return self.cache / f"{modality}{suffix}"

    def checkpoint_stem(self, seed: int, fold: int, row: str) -> str:
        return f"seed{seed}-fold{fold}-{row}"

    def plot(self, name: str) -> Path:
        return self.root / name

    # ---- set-up --------------------------------------------------------------------------
    def create(self) -> None:
        """Create the folder; a file in its place (or in a parent's) is a one-line error."""
        for p in (self.root, *self.root.parents):
            if p.exists() and not p.is_dir():
                raise RunFolderError(f"--out {self.root}: {p} is a file, not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"--out {self.root}: cannot create the folder ({exc.strerror or exc})") from exc

    def clear_results(self, *, checkpoints: bool = True) -> None:
        shutil.rmtree(self.folds, ignore_errors=True)
        if checkpoints:
            shutil.rmtree(self.checkpoints, ignore_errors=True)

    # ---- readers -------------------------------------------------------------------------
    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise RunFolderError(f"{path} is not valid JSON ({exc})") from exc

    def finished(self, seed: int, fold: int, row: str) -> bool:
        """Whether the job's result file exists and holds what the report needs."""
        path = self.fold_result(seed, fold, row)
        if not path.is_file():
            return False
        try:
            return "y" in json.loads(path.read_text())
        except ValueError:
            return False

    # ---- writers -------------------------------------------------------------------------
    def write_json(self, path: Path, data: Any, *, indent: int | None = 1) -> None:
        atomic_write_json(path, data, indent=indent, durable=False)

    def write_text(self, path: Path, text: str) -> None:
        atomic_write_text(path, text, durable=False)

    def write_config(self, data: dict[str, Any]) -> None:
        self.write_text(self.config, yaml.safe_dump(data, sort_keys=False))

    def write_fold_result(self, seed: int, fold: int, row: str, result: dict[str, Any]) -> None:
        self.write_json(self.fold_result(seed, fold, row), result)

    def write_cache(self, modality: str, array: np.ndarray, meta: dict[str, Any]) -> None:
        import io

        buf = io.BytesIO()
        np.save(buf, array)
        atomic_write_bytes(self.cache_file(modality, ".npy"), buf.getbuffer(), durable=False)
        self.write_json(self.cache_file(modality, ".json"), meta)

    def read_cache(self, modality: str, key: Any) -> np.ndarray | None:
        """The cached array of ``modality`` if it was made with ``key``, else None."""
        npy, meta = self.cache_file(modality, ".npy"), self.cache_file(modality, ".json")
        if not (npy.is_file() and meta.is_file()):
            return None
        try:
            if json.loads(meta.read_text()).get("key") != key:
                return None
            return np.load(npy)
        except (ValueError, OSError):
            return None

    def write_checkpoint(self, stem: str, files: dict[str, dict[str, Any]], meta: dict[str, Any]) -> None:
        """safetensors files ``{name: state}`` and the ``{stem}.json`` that describes them."""
        from safetensors.torch import save

        for name, state in files.items():
            atomic_write_bytes(self.checkpoints / f"{name}.safetensors", save(state), durable=False)
        self.write_json(self.checkpoints / f"{stem}.json", meta)

    def write_plot(self, name: str, fig: Any) -> None:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        atomic_write_bytes(self.plot(name), buf.getvalue(), durable=False)

    # ---- resuming ------------------------------------------------------------------------
    def check_resume(self, key: dict[str, Any], resume: bool) -> None:
        """Keep the finished jobs of a run with the same ``key``; refuse one with another key.

        resume=False (or a folder without run.json) starts from scratch: folds/ and
        checkpoints/ are removed (the embedding cache is kept: it is keyed on its own).
        """
        if not resume:
            self.clear_results()
            return
        if not self.run_json.is_file():
            if self.folds.exists():
                shutil.rmtree(self.folds)
            return
        try:
            old = json.loads(self.run_json.read_text()).get("key")
        except ValueError:
            old = None
        if old == key:
            return
        diffs = []
        if old:
            for k in sorted(set(old.get("config", {})) | set(key["config"])):
                if old.get("config", {}).get(k) != key["config"].get(k):
                    diffs.append(f"{k}: {old.get('config', {}).get(k)!r} -> {key['config'].get(k)!r}")
            if old.get("encoders") != key["encoders"]:
                diffs.append("encoder weights or input scale")
            if old.get("data") != key["data"]:
                diffs.append("the store's windows/labels")
        raise RunFolderError(
            f"{self.root} holds a run with different settings ({'; '.join(diffs) or 'unknown'}); "
            "choose another --out, or pass --no-resume to start it again"
        )
