"""Shared behaviour of the command-line entry points.

Known failures (bad data, bad arguments) end as one line naming the problem and exit status 1:
a user who typed a wrong user id needs that sentence, not forty lines of Hydra traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from duorec.data.errors import DataError

T = TypeVar("T")


class UsageError(ValueError):
    """A request that cannot be served as asked (unknown user, k <= 0, ...)."""


def friendly_errors(prog: str, *extra: type[BaseException]) -> Callable[[T], T]:
    """Decorate a Hydra task function so DataError/UsageError print one line and exit 1."""
    caught = (DataError, UsageError, *extra)

    def decorate(main: T) -> T:
        @functools.wraps(main)  # type: ignore[arg-type]
        def wrapper(*args, **kwargs):
            try:
                return main(*args, **kwargs)  # type: ignore[operator]
            except caught as err:
                print(f"{prog}: error: {err}", file=sys.stderr)
                sys.exit(1)
            except KeyboardInterrupt:
                print(
                    f"{prog}: interrupted; nothing half-written was kept (re-run to resume)",
                    file=sys.stderr,
                )
                sys.exit(130)

        return wrapper  # type: ignore[return-value]

    return decorate
