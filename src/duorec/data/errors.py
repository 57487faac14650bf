"""One exception type for every problem found in input data.

Users fix data files, not stack traces: the message always names the file, the line (1-based,
counting the header as line 1) when there is one, and what was wrong with it.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A problem in an input file, located as precisely as we know."""

    def __init__(self, path: str | Path | None, problem: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = self.path or "<input>"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {problem}")
