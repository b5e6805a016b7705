"""One format for pydantic validation errors everywhere: ``loc: msg`` lines (as spaCy prints)."""

from __future__ import annotations

__all__ = ["validation_lines"]


def validation_lines(err: Exception) -> list[str]:
    """A pydantic ``ValidationError`` as ``loc: msg`` lines (``config: msg`` for a model-level
    error); any other exception as its message."""
    errors = getattr(err, "errors", None)
    if errors is None:
        return [str(err)]
    lines = []
    for e in errors():
        loc = ".".join(str(p) for p in e.get("loc", ())) or "config"
        lines.append(f"{loc}: {e.get('msg', '')}")
    return lines
