"""Reading and writing checkpoint files: a load never runs code, a save never leaves half a file.

A .ckpt file is a pickle, and unpickling calls whatever functions the file names:
`torch.load(weights_only=False)` on a checkpoint someone sent you runs their code, before any
check of what it holds. A duorec checkpoint only ever holds tensors, numbers, strings and plain
containers (weights, optimiser and schedule state, callback states, the data reference;
`duorec.callbacks.numpy_state` keeps numpy arrays out), all of which torch's weights-only
unpickler accepts. So every load, ours and Lightning's, goes through `load_checkpoint_file`,
and a file that names any other global is refused in one line without running anything.

Lightning's own save (`TorchCheckpointIO` through fsspec's transaction) stages the file in the
system temp folder and moves it into place: across file systems that move is a copy, which a
full disk cuts short, leaving a truncated checkpoint where the previous one was, and an OSError
that names no file. `SafeCheckpointIO` stages beside the target and renames instead.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from fsspec.utils import get_protocol
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from duorec.errors import UsageError
from duorec.io import write_bytes

# What a duorec checkpoint holds beyond torch's own weights-only allow-list (tensors, their
# storages and dtypes, OrderedDict, plain Python values): nothing. Checked on checkpoints of
# the three-tower model (with and without groups and the weight average) and both
# factorisation baselines, under the cosine and one-cycle schedules: torch's
# `get_unsafe_globals_in_checkpoint` lists nothing for any of them. A new kind of object in a
# checkpoint must be added here, deliberately, or loading it is refused.
CHECKPOINT_GLOBALS: tuple[Any, ...] = ()

# the weights-only unpickler's own words for a global it refused (when the name cannot be
# read statically from the file, e.g. a legacy non-zip checkpoint)
_REFUSED = re.compile(r"GLOBAL (\S+) was not an allowed global")


@contextmanager
def allowed_globals() -> Iterator[None]:
    """Allow exactly `CHECKPOINT_GLOBALS` to weights-only loads inside the block.

    For loads that torch does itself (Lightning's `load_from_checkpoint` with
    weights_only=True), so the allow-list is the same everywhere.
    """
    with torch.serialization.safe_globals(list(CHECKPOINT_GLOBALS)):
        yield


def load_checkpoint_file(
    path: str | Path,
    label: str | None = None,
    map_location: str | torch.device | Callable[..., Any] | None = "cpu",
    mmap: bool = False,
) -> dict[str, Any]:
    """The checkpoint at `path`, read with torch's weights-only unpickler.

    A file that names a global outside the allow-list (a function to call, a class to build)
    raises a UsageError naming `label` (default 'checkpoint PATH') and the global, before any
    of it runs. Any other failure (not a torch file, truncated) is raised as it is: the caller
    says what it expected.
    """
    label = label or f"checkpoint {path}"
    try:
        with allowed_globals():
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        refused = refused_globals(path, err)
        if not refused:
            raise
        raise UsageError(
            f"{label} holds {', '.join(refused)}, which a duorec checkpoint never does: "
            "refused without running it"
        ) from None


def refused_globals(path: str | Path, err: BaseException | None = None) -> list[str]:
    """The globals in the checkpoint at `path` that a load refuses, sorted (read statically:
    the pickle is disassembled, never run); from `err`'s message when the file cannot be."""
    try:
        with allowed_globals():
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # a legacy (non-zip) file: only the unpickler's message names it
        match = _REFUSED.search(str(err)) if err is not None else None
        return [match[1]] if match else []


def save_checkpoint_file(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write `checkpoint` to `path` atomically: a failure (a full disk) leaves any previous
    file there as it was, and names `path` (`duorec.io.atomic_path`).

    Serialised in memory first: torch writing straight into a file reports a full disk as a
    RuntimeError without errno or file name, a plain write as an OSError with both.
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_bytes(path, buffer.getbuffer())


def _local(path: str | Path) -> bool:
    return get_protocol(str(path)) in ("file", "local")


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reads and writes, the duorec way (see the module docstring).

    Every `Trainer.fit(ckpt_path=...)` restore, ModelCheckpoint save and removal goes through
    the trainer's CheckpointIO plugin, so this one plugin covers them all. Remote paths
    (s3://...) keep Lightning's own writer, but are still read weights-only.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _local(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(
        self,
        path: Any,
        map_location: Callable[..., Any] | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if not _local(path):
            with allowed_globals():
                return super().load_checkpoint(path, map_location, weights_only=True)
        if not Path(path).is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return load_checkpoint_file(path, map_location=map_location)
