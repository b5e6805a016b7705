"""The design's shape, checked from the source: no module depends on itself through others.

Every import counts, including the ones a cycle hides behind (``if TYPE_CHECKING:`` blocks and
imports deferred into a function body), because those still make two modules one design unit.
Package ``__init__`` modules are left out: they re-export, and an edge through them says
nothing about which module needs which.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = [ROOT / "packages" / p / "src" for p in ("biosig-prep", "criss-cross", "fusion-emotion")]


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for src in SRC:
        for path in src.rglob("*.py"):
            parts = path.relative_to(src).with_suffix("").parts
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of ours that ``name`` imports anywhere in its body (``__init__`` resolved to the
    submodule where ``from pkg import sub`` names one)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    keep = {m: p for m, p in known.items() if p.name != "__init__.py"}
    return {m: {d for d in _imports(m, p, known) if d in keep} for m, p in keep.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_module_depends_on_itself_through_others():
    graph = _graph()
    assert len(graph) > 100, "the walk found too few modules to mean anything"
    assert _cycles(graph) == []


def test_nothing_imports_upwards_between_packages():
    order = {"biosig_prep": 0, "criss_cross": 1, "fusion_emotion": 2}
    bad = [(m, d) for m, deps in _graph().items() for d in deps
           if order[d.split(".")[0]] > order[m.split(".")[0]]]
    assert bad == []


def test_the_old_import_paths_are_gone():
    """The compatibility modules of earlier layouts were removed (nothing outside this repository
    imported them); their names live in one place each."""
    import importlib

    import pytest

    for old in ("criss_cross.loader", "biosig_prep.readers.dreamer"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)
    import criss_cross.data

    assert not hasattr(criss_cross.data, "SourceInfo")
