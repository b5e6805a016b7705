"""Find the records under the paths a user gives, and read one of them.

:func:`discover` walks directories recursively and returns :class:`SourceFile` entries in a
stable (path-sorted) order:

* ``.hea`` headers -> ``wfdb`` (their ``.mat``/``.dat`` signal files are paired with them, not
  listed on their own; a header may name a signal file with another name);
* ``.edf``, ``.bdf``, ``.fif``, ``.vhdr`` -> ``edf``;
* a ``.mat`` that no header in its folder uses and that holds a ``DREAMER`` variable
  (checked with ``scipy.io.whosmat``, which reads only the variable headers) -> ``dreamer``;
* a folder holding ``ptbxl_database.csv`` (or, with ``fmt="ptbxl"``, one inside its
  ``records100/`` / ``records500/``) -> ``ptbxl``: the records the CSV lists
  (:func:`biosig_prep.datasets.ptbxl.discover_ptbxl`).

Anything else is ignored. The record id of a file found under a directory is its path relative
to that directory, without suffix (``georgia/g1/E00001``); a file given directly uses its stem.
Symlinked sub-folders are followed, each real folder once (link loops end there). A header or
EDF file, or a folder, whose name is not valid UTF-8 is listed with a ``problem`` (the
conversion records it as skipped, naming it with ``\\xNN`` escapes) instead of stopping the
run; a folder with such a name is not searched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from biosig_prep.datasets.dreamer import is_dreamer_mat
from biosig_prep.datasets.ptbxl import DATABASE_CSV, discover_ptbxl
from biosig_prep.readers.edf_reader import EDF_SUFFIXES

__all__ = ["SourceFile", "FORMATS", "SUFFIX_FORMATS", "discover"]

FORMATS = ("wfdb", "edf", "dreamer", "ptbxl")
# suffix -> format, as MNE's read_raw picks a reader by suffix. A ``.mat`` is special: it is a
# WFDB record's signal file when a header names it, and DREAMER only if it holds that variable.
SUFFIX_FORMATS: dict[str, str] = {".hea": "wfdb", **{s: "edf" for s in EDF_SUFFIXES},
                                  ".mat": "dreamer"}
Format = Literal["auto", "wfdb", "edf", "dreamer", "ptbxl"]
_LOOKED_FOR = ".hea, .edf, .bdf, .fif, .vhdr, DREAMER .mat"


@dataclass(frozen=True, order=True)
class SourceFile:
    """One source file to read: its path, its format and its record id.

    ``problem`` is empty, or why the file cannot be read at all (a name that is not valid
    UTF-8); reading it then raises :class:`~biosig_prep.readers.ReadError` with that reason,
    so the conversion records it as skipped. ``path`` and ``record_id`` are then the name with
    its undecodable bytes written as ``\\xNN``.
    """

    path: str
    format: str
    record_id: str
    problem: str = ""


def _undecodable(name: str) -> bool:
    """True for a name holding bytes that are not UTF-8 (decoded by Python as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(path: str | os.PathLike) -> str:
    """A path as text, its undecodable bytes written as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _signal_files_named(header: Path) -> set[str]:
    """File names the signal lines of a header refer to (empty if the header is unreadable)."""
    names: set[str] = set()
    try:
        lines = [ln.strip() for ln in header.read_text(encoding="latin-1").splitlines()]
    except OSError:
        return names
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    for line in body[1:]:
        names.add(line.split(None, 1)[0])
    return names


def _classify_dir(folder: Path, files: list[str], fmt: str) -> list[tuple[Path, str]]:
    """(path, format) of the records among ``files`` (names in ``folder``)."""
    found: list[tuple[Path, str]] = []
    kinds = {f: SUFFIX_FORMATS.get(Path(f).suffix.lower()) for f in files}
    headers = [f for f in files if kinds[f] == "wfdb"]
    found += [(folder / f, kind) for f, kind in kinds.items()
              if kind in ("wfdb", "edf") and fmt in ("auto", kind)]
    if fmt in ("auto", "dreamer"):
        mats = [f for f in files if kinds[f] == "dreamer"]
        stems = {Path(h).stem for h in headers}
        unpaired = [m for m in mats if Path(m).stem not in stems]
        if unpaired and headers:  # a header may name a .mat with another name
            used: set[str] = set()
            for h in headers:
                used |= _signal_files_named(folder / h)
            unpaired = [m for m in unpaired if m not in used]
        found += [(folder / m, "dreamer") for m in unpaired if is_dreamer_mat(folder / m)]
    return found


def _classify_file(path: Path, fmt: str) -> str:
    kind = SUFFIX_FORMATS.get(path.suffix.lower())
    if kind in ("wfdb", "edf") and fmt in ("auto", kind):
        return kind
    if kind == "dreamer" and fmt in ("auto", "dreamer"):
        if is_dreamer_mat(path):
            return "dreamer"
        if path.with_suffix(".hea").is_file() and fmt == "auto":
            return "wfdb"
        raise ValueError(f"{path}: not a DREAMER .mat file (no 'DREAMER' variable); for a WFDB "
                         "record give its .hea header")
    wanted = _LOOKED_FOR if fmt == "auto" else fmt
    raise ValueError(f"{path}: unknown format (expected {wanted})")


def discover(paths: Sequence[str | os.PathLike], fmt: Format = "auto") -> list[SourceFile]:
    """Every record under ``paths`` (files or directories), sorted by path, duplicates removed.

    fmt : ``"auto"`` picks the format by suffix; ``"wfdb"``, ``"edf"`` or ``"dreamer"`` keeps only
        that format.

    Raises FileNotFoundError for a path that does not exist, ValueError for a file of an unknown
    format or a directory holding no records ("no records found in DIR (looked for ...)").
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"format must be one of auto, {', '.join(FORMATS)}; got {fmt!r}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ValueError("no input paths given")
    entries: list[tuple[Path, str, str, str]] = []  # path, format, record id, problem
    for given in paths:
        root = Path(given)
        if not root.exists() and fmt in ("auto", "wfdb") and \
                root.with_name(root.name + ".hea").is_file():  # a WFDB record name
            root = root.with_name(root.name + ".hea")
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or directory")
        if fmt == "ptbxl" or (fmt == "auto" and (root / DATABASE_CSV).is_file()):
            # a PTB-XL folder: its records as ptbxl_database.csv lists them
            entries += [(Path(p), "ptbxl", rid, bad) for p, rid, bad in discover_ptbxl(root)]
            continue
        if root.is_file():
            kind = _classify_file(root, fmt)
            path = root.with_suffix(".hea") if kind == "wfdb" else root
            bad = "file name is not valid UTF-8 (rename it)" if _undecodable(str(path)) else ""
            entries.append((path, kind, _shown(path.stem) if bad else path.stem, bad))
            continue
        n_before = len(entries)
        visited = {os.path.realpath(root)}
        # symlinked sub-folders are followed, each real folder once (a link loop ends there)
        for folder, dirs, files in os.walk(root, followlinks=True):
            folder_path = Path(folder)
            kept = []
            for d in sorted(d for d in dirs if not d.startswith(".")):
                real = os.path.realpath(folder_path / d)
                if real in visited:
                    continue
                visited.add(real)
                if _undecodable(d):
                    rel = _shown((folder_path / d).relative_to(root).as_posix())
                    entries.append((folder_path / d, "wfdb", rel,
                                    "folder name is not valid UTF-8 (not searched; rename it)"))
                    continue
                kept.append(d)
            dirs[:] = kept
            good = []
            for f in sorted(files):
                if not _undecodable(f):
                    good.append(f)
                elif SUFFIX_FORMATS.get(Path(f).suffix.lower()) in ("wfdb", "edf"):
                    rel = _shown((folder_path / f).relative_to(root).with_suffix("").as_posix())
                    kind = SUFFIX_FORMATS[Path(f).suffix.lower()]
                    entries.append((folder_path / f, kind, rel,
                                    "file name is not valid UTF-8 (rename it)"))
            for path, kind in _classify_dir(folder_path, good, fmt):
                rel = path.relative_to(root).with_suffix("").as_posix()
                entries.append((path, kind, rel, ""))
        if len(entries) == n_before:
            looked = _LOOKED_FOR if fmt == "auto" else {
                "wfdb": ".hea", "edf": ", ".join(EDF_SUFFIXES), "dreamer": "DREAMER .mat"}[fmt]
            raise ValueError(f"no records found in {root} (looked for {looked})")

    unique: dict[str, tuple[Path, str, str, str]] = {}
    for entry in entries:
        unique.setdefault(os.path.realpath(entry[0]), entry)
    chosen = sorted(unique.values(), key=lambda e: _shown(e[0]))
    # record ids must be unique across roots: suffix repeats with #2, #3, ...
    seen: dict[str, int] = {}
    out: list[SourceFile] = []
    for path, kind, rid, problem in chosen:
        seen[rid] = seen.get(rid, 0) + 1
        if seen[rid] > 1:
            rid = f"{rid}#{seen[rid]}"
        out.append(SourceFile(path=_shown(path) if problem else str(path), format=kind,
                              record_id=rid, problem=problem))
    return out
