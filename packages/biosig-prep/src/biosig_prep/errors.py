"""The one error a reader raises for a file it cannot read."""

from __future__ import annotations

__all__ = ["ReadError"]


class ReadError(Exception):
    """A source file that cannot be read; ``str()`` names the file and the problem.

    >>> str(ReadError("/data/E00001.hea", "truncated .mat: 1000 of 120024 bytes"))
    '/data/E00001.hea: truncated .mat: 1000 of 120024 bytes'
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(self.path, self.reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    def __reduce__(self):  # picklable across dask worker processes
        return (type(self), (self.path, self.reason))
