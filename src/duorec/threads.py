"""CPU thread defaults that do not collapse when the machine is shared.

Two measurements behind them (benchmarks/README.md): torch's OpenMP threads spin while they
wait for each other, so on cores busy with other work a multi-threaded op can be several times
slower than one thread; and torch sizes its pool by the machine's cores, not by the CPUs this
process may run on (a Slurm job, `taskset`, a container). Hence:

* `OMP_WAIT_POLICY=PASSIVE` (waiting threads sleep) unless the user set it: done in
  `duorec/__init__.py`, which runs before any entry module imports torch, because OpenMP reads
  it once when torch loads;
* intra-op threads = min(config `threads`, CPUs in this process's affinity mask), `auto` meaning
  all of those CPUs, unless the user set OMP_NUM_THREADS (torch already follows it).
"""

from __future__ import annotations

import os
from typing import Any


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's core count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def intra_op_threads(setting: Any, environ: dict[str, str] | None = None) -> int | None:
    """The torch thread count for the config's `threads`, or None to leave torch's own.

    None / unset: torch's default. "auto": every available CPU, except that an OMP_NUM_THREADS
    the user set wins (torch read it at import). A number: that many, at most the available CPUs.
    """
    environ = os.environ if environ is None else environ
    if setting is None:
        return None
    if setting == "auto":
        return None if environ.get("OMP_NUM_THREADS") else available_cpus()
    return max(1, min(int(setting), available_cpus()))


def apply_threads(setting: Any) -> None:
    """Set torch's intra-op threads from the config's `threads` (see `intra_op_threads`)."""
    count = intra_op_threads(setting)
    if count is not None:
        import torch

        torch.set_num_threads(count)
