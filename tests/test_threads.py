"""Thread defaults for a shared CPU: passive OpenMP waiting, threads capped at the CPUs we have."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from duorec.threads import available_cpus, intra_op_threads

PROBE = """
import json, os, sys
import duorec
from duorec.threads import apply_threads
apply_threads(json.loads(sys.argv[1]))
import torch
print(json.dumps({"wait": os.environ.get("OMP_WAIT_POLICY"), "threads": torch.get_num_threads(),
                  "cpus": len(os.sched_getaffinity(0))}))
"""


def probe(setting: object, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(setting)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_auto_is_every_available_cpu_unless_omp_num_threads_is_set() -> None:
    assert intra_op_threads("auto", {}) == available_cpus()
    assert intra_op_threads("auto", {"OMP_NUM_THREADS": "1"}) is None  # torch follows the user
    assert intra_op_threads(None, {}) is None


def test_a_number_is_capped_at_the_available_cpus() -> None:
    assert intra_op_threads(10_000, {}) == available_cpus()
    assert intra_op_threads(1, {"OMP_NUM_THREADS": "4"}) == 1  # an explicit config wins


def test_importing_duorec_sets_a_passive_wait_policy_unless_set() -> None:
    assert probe(None)["wait"] == "PASSIVE"
    assert probe(None, OMP_WAIT_POLICY="ACTIVE")["wait"] == "ACTIVE"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity masks here")
def test_torch_threads_follow_the_setting_in_a_fresh_process() -> None:
    big = probe(512)
    assert big["threads"] == big["cpus"]
    assert probe("auto", OMP_NUM_THREADS="1")["threads"] == 1
    assert probe(1)["threads"] == 1
