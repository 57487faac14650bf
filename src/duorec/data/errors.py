"""`DataError`, the one exception type for problems in input data (defined in `duorec.errors`)."""

from __future__ import annotations

from duorec.errors import DataError

__all__ = ["DataError"]
