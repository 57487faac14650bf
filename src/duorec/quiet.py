"""Keep the console to what a duorec user acts on: library chatter is filtered out here.

Installed from `duorec/__init__.py`, before Lightning is imported, so it holds for every entry
point. Filters attach to the loggers Lightning's `rank_zero_info` writes to; a filter on a
logger sees only that logger's own records, hence the list of names. Lightning's *warnings*
(a GPU left unused, a slow data loader) are kept: they ask the user to act.
"""

from __future__ import annotations

import logging
import warnings

# Lightning's rank-zero messages go to whichever of these its utilities module set last
RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)
DROPPED_PREFIXES = (
    # Ctrl-C: duorec.cli prints its own line and exits 130 instead
    "Detected KeyboardInterrupt, attempting graceful shutdown",
    # advertisements for Lightning's cloud services (litmodels, litlogger)
    "💡 Tip:",
    # hardware inventory on every run; the accelerator used is in the config
    "GPU available:",
    "TPU available:",
    "HPU available:",
)
# deprecations inside Lightning's own use of torch internals: nothing a duorec user can change
IGNORED_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"`torch\.utils\._(cxx_)?pytree\._register_pytree_node` is deprecated",
)


class DropMessages(logging.Filter):
    """Drop records whose message starts with one of the given prefixes."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().lstrip().startswith(self.prefixes)


def install() -> None:
    """Attach the filters (idempotent: a second call replaces nothing and adds nothing)."""
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages(DROPPED_PREFIXES))
    for message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
