"""Finding a checkpoint: the one rule every command uses (embed, pretrain --resume, fusion).

A path may name a run folder (``RUN/checkpoints/latest`` points at the newest checkpoint), a
checkpoint folder (``.../step_N`` with ``model.safetensors``), or a model file
(``NAME.safetensors`` / ``NAME.json`` / ``NAME``). In a run folder only an *intact* checkpoint
counts: every file present, the JSON files parse, the safetensors layouts check out
(:func:`checkpoint_problem`). A damaged newest checkpoint, or a corrupt ``latest`` pointer, is
passed over for the newest intact one, and ``report`` is told (one line naming the file).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from criss_cross.checkpoint.safetensors_file import CheckpointError, read_header
from criss_cross.checkpoint.training import CHECKPOINT_FILES

__all__ = ["checkpoint_problem", "find_checkpoint", "latest_checkpoint", "resolve_checkpoint"]

Report = Callable[[str], None]


def checkpoint_problem(ckpt: Path) -> str | None:
    """What is wrong with training checkpoint folder ``ckpt`` (one line), or None if intact."""
    for name in CHECKPOINT_FILES:
        path = ckpt / name
        if not path.is_file():
            return f"{path} is missing"
        try:
            if name.endswith(".json"):
                doc = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(doc, dict) or (name == "trainer.json" and "step" not in doc):
                    return f"{path} is not a checkpoint document"
            else:
                read_header(path)
        except CheckpointError as err:
            return str(err)
        except (OSError, UnicodeDecodeError, ValueError) as err:
            return f"{path} cannot be read: {err}"
    return None


def _pointed(ckdir: Path, report: Report | None) -> str | None:
    pointer = ckdir / "latest"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
        if not isinstance(name, str) or "/" in name or not name.startswith("step_"):
            raise ValueError(f"names {name!r}")
        return name
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        if report is not None:
            report(f"{pointer} is corrupt ({type(err).__name__}: {err}); "
                   "looking for the newest intact checkpoint instead")
        return None


def latest_checkpoint(run_dir: str | Path, report: Report | None = None) -> Path | None:
    """The newest intact checkpoint folder of a run, or None. Damaged ones are passed over
    (newest first) and ``report``\\ed."""
    ckdir = Path(run_dir) / "checkpoints"
    if not ckdir.is_dir():
        return None
    candidates = sorted((p for p in ckdir.glob("step_*") if p.is_dir()), reverse=True)
    name = _pointed(ckdir, report)
    if name is not None and (ckdir / name).is_dir():
        # the pointer's checkpoint first; newer folders than it are unfinished renames at most
        candidates = [ckdir / name] + [p for p in candidates if p.name < name]
    for ckpt in candidates:
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        if report is not None:
            report(f"skipping damaged checkpoint {ckpt.name}: {problem}")
    return None


def find_checkpoint(path: str | Path, report: Report | None = None) -> Path:
    """The model weights file (``.../NAME.safetensors``) a path names; see the module doc.

    Raises FileNotFoundError (one line) when there is none.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "model.safetensors").is_file():
            return p / "model.safetensors"
        ck = latest_checkpoint(p, report)
        if ck is not None:
            return ck / "model.safetensors"
        raise FileNotFoundError(f"no intact checkpoint in {p}: expected model.safetensors or "
                                "checkpoints/step_*/")
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    weights = stem.with_name(stem.name + ".safetensors")
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (looked for {weights})")
    return weights


def resolve_checkpoint(path: str | Path, report: Report | None = None) -> Path:
    """The model file stem of a checkpoint given as a run directory, a checkpoint directory
    (``.../checkpoints/step_N``), or a ``.safetensors``/``.json`` file of one
    (:func:`find_checkpoint` without the suffix)."""
    return find_checkpoint(path, report).with_suffix("")
