"""The progress bar of the project's command lines (convert, pretrain, fusion training).

One layout for all of them, on stderr so that stdout stays for results: description, bar,
done/total, the caller's text columns, elapsed and remaining time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress


def progress_bar(enabled: bool, *fields: str) -> Progress | None:
    """A rich ``Progress`` (not started), or None when ``enabled`` is false.

    ``fields`` are rich format strings for text columns after the done/total count, e.g.
    ``"loss {task.fields[loss]:.4f}"``; the task's description comes first.
    """
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(f) for f in fields),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
