"""Write-then-rename helpers: an interrupted run never leaves a half-written file or cache.

A process killed while writing (SIGKILL, power loss) cannot clean up: its staging folder
`.NAME.<pid>@<host>.<random>.tmp` stays beside the target. `sweep_orphans` removes those
whose writer is gone, so a cache does not silently fill up with dead half-builds.

A full disk is the common way a write fails: `atomic_path` re-raises it naming the file the
user asked for (not the hidden staging name, nor no name at all), and `duorec.cli` turns it
into one line (`disk_full`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `target` in one `os.replace`.

    Works for a file or a directory written at the yielded path. On any exception the
    temporary is removed and `target` is left exactly as it was.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # the owner in the name lets `sweep_orphans` tell a killed writer's leftovers from a
        # live one
        prefix = f".{target.name}.{os.getpid()}@{socket.gethostname()}."
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    except OSError as err:
        _raise_naming(err, target)
    staged = tmp / target.name
    try:
        yield staged
        if staged.is_file():  # on disk before the rename: a crash cannot leave it empty
            _sync(staged)
        if target.is_dir() and not target.is_symlink():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(staged, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staged, target)
    except OSError as err:
        _raise_naming(err, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(target: str | Path, data: bytes | memoryview) -> None:
    """Write `data` to `target` through `atomic_path`: all of it appears, or nothing changes."""
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# a write that failed for want of room: the disk, the user's quota, a file size limit
DISK_FULL = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code
)
_DISK_FULL_WORDS = {
    errno.ENOSPC: "no space left on device",
    getattr(errno, "EDQUOT", -1): "disk quota exceeded",
    errno.EFBIG: "file too large",
}


def _raise_naming(err: OSError, target: Path) -> NoReturn:
    """Re-raise a disk-full `err` as one naming `target` (the staging path means nothing to a
    user; a failed `write()` names no file at all); any other error as it is."""
    if err.errno not in DISK_FULL or err.filename == str(target):
        raise err
    raise OSError(err.errno, os.strerror(err.errno), str(target)) from err


def disk_full(err: BaseException) -> OSError | None:
    """The disk-full OSError behind `err` (itself, its cause or its context), or None.

    Libraries often fail again while cleaning up after a full disk (a logger flushing its
    file), so the chain is searched, and an error naming its file is preferred.
    """
    found: list[OSError] = []
    seen: set[int] = set()
    node: BaseException | None = err
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, OSError) and node.errno in DISK_FULL:
            found.append(node)
        node = node.__cause__ or node.__context__
    return next((e for e in found if e.filename), found[0] if found else None)


def disk_full_message(err: OSError) -> str:
    """'no space left on device writing PATH': the one line a full disk ends a command with."""
    words = _DISK_FULL_WORDS.get(err.errno or 0, os.strerror(err.errno or 0))
    return f"{words} writing {err.filename}" if err.filename else f"{words} while writing"


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
