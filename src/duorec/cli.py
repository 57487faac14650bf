"""Shared behaviour of the command-line entry points.

Known failures (bad data, bad arguments) end as one line naming the problem and exit status 1:
a user who typed a wrong user id needs that sentence, not forty lines of Hydra traceback.

In a Hydra multirun the same line is printed, but the job *fails* instead of exiting: Hydra's
launcher records an exception as that job's failure and goes on with the next job, while
`sys.exit` (a BaseException) would end the whole sweep at the first bad job.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from hydra.errors import CompactHydraException

from duorec.errors import DataError, UsageError
from duorec.io import disk_full, disk_full_message

T = TypeVar("T")


class JobFailed(CompactHydraException):
    """A sweep job's known failure, already explained in one line.

    Hydra prints a CompactHydraException as its message alone, so the end of a sweep with a bad
    job says which overrides failed and why, without a traceback.
    """


def in_multirun() -> bool:
    """True inside a Hydra multirun job (local, submitit, Optuna...), False otherwise."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return False
    return HydraConfig.get().mode == RunMode.MULTIRUN


def friendly_errors(prog: str, *extra: type[BaseException]) -> Callable[[T], T]:
    """Decorate a Hydra task function so DataError/UsageError (and a full disk, naming the
    file) print one line and exit 1.

    In a multirun the job raises `JobFailed` instead, so the sweep runs its other jobs. Every
    entry point starts here, so this is also where its settings are checked
    (`duorec.settings.check_settings`) before any data is read: the command is the last part
    of `prog` (duorec.train -> train).
    """
    caught = (DataError, UsageError, *extra)

    def decorate(main: T) -> T:
        @functools.wraps(main)  # type: ignore[arg-type]
        def wrapper(*args, **kwargs):
            try:
                start(args[0] if args else kwargs.get("cfg"), prog.rsplit(".", 1)[-1])
                return main(*args, **kwargs)  # type: ignore[operator]
            except caught as err:
                fail(prog, err)
            except KeyboardInterrupt:
                interrupted(prog)
            except SystemExit as err:
                # Lightning catches Ctrl-C during fit itself, tears down and calls
                # sys.exit(1) from inside its `except KeyboardInterrupt`: the interrupt is
                # still there as the exit's context
                if isinstance(err.__context__, KeyboardInterrupt):
                    interrupted(prog)
                raise
            except Exception as err:
                # a full disk under any writer (a checkpoint, metrics.json, the data cache):
                # the file it was writing, not a traceback from inside Lightning or pandas
                full = disk_full(err)
                if full is None:
                    raise
                fail(prog, disk_full_message(full))

        return wrapper  # type: ignore[return-value]

    return decorate


def fail(prog: str, reason: object) -> NoReturn:
    """`PROG: error: REASON` on one line, then exit 1 (in a multirun: this job fails)."""
    message = f"{prog}: error: {reason}"
    print(message, file=sys.stderr)
    if in_multirun():
        raise JobFailed(message) from None
    sys.exit(1)


def start(cfg: object, command: str) -> None:
    """What every command does before its own work: refuse bad settings, size torch's threads."""
    from omegaconf import DictConfig

    from duorec.settings import check_settings
    from duorec.threads import apply_threads

    if isinstance(cfg, DictConfig):
        check_settings(cfg, command)
        apply_threads(cfg.get("threads"))


def interrupted(prog: str) -> None:
    """Ctrl-C: one line and the shell's conventional status for SIGINT (128 + 2)."""
    print(f"{prog}: interrupted; nothing half-written was kept (re-run to resume)", file=sys.stderr)
    sys.exit(130)
