"""Write-then-rename helpers: an interrupted run never leaves a half-written file or cache.

A process killed while writing (SIGKILL, power loss) cannot clean up: its staging folder
`.NAME.<pid>@<host>.<random>.tmp` stays beside the target. `sweep_orphans` removes those
whose writer is gone, so a cache does not silently fill up with dead half-builds.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `target` in one `os.replace`.

    Works for a file or a directory written at the yielded path. On any exception the
    temporary is removed and `target` is left exactly as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the owner in the name lets `sweep_orphans` tell a killed writer's leftovers from a live one
    prefix = f".{target.name}.{os.getpid()}@{socket.gethostname()}."
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    staged = tmp / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(staged, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# `.NAME.<pid>@<host>.<random>.tmp`; an older `.NAME.<random>.tmp` has no owner and goes by age
_STAGING = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)@(?P<host>.+)\.)?[a-z0-9_]+\.tmp$")


def sweep_orphans(folder: str | Path, max_age_s: float = 3600.0) -> list[Path]:
    """Remove the staging folders of `atomic_path` writers in `folder` that were killed.

    One is an orphan when its owner, on this host, is no longer running, or when it has not
    been touched for `max_age_s` (an owner on another host sharing the folder, a recycled pid,
    a name from before owners were recorded). A live concurrent writer's staging folder is
    kept: it is young and its process exists. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    host = socket.gethostname()
    now = time.time()
    for path in folder.glob(".*.tmp"):
        match = _STAGING.match(path.name)
        if match is None:
            continue
        try:
            age = now - path.stat().st_mtime
        except OSError:  # removed meanwhile (its writer finished)
            continue
        pid = match["pid"]
        dead = pid is not None and match["host"] == host and not _running(int(pid))
        if dead or age > max_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    """Whether a process `pid` exists on this host (one we may not signal counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
