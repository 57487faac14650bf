"""The two failures a user can fix, as exceptions every layer may raise (a leaf: imports nothing).

`DataError` is a problem in an input file, `UsageError` a request that cannot be served as
asked. The entry points print either as one line (`duorec.cli.friendly_errors`): users fix
data files and settings, not stack traces. Living in a leaf, they can be raised from the data
layer up to the entry points without any layer importing one above it.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A problem in an input file, located as precisely as we know.

    The message always names the file, the line (1-based, counting the header as line 1) when
    there is one, and what was wrong with it.
    """

    def __init__(self, path: str | Path | None, problem: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = self.path or "<input>"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {problem}")


class UsageError(ValueError):
    """A request that cannot be served as asked (unknown user, k <= 0, a misspelt setting...)."""
