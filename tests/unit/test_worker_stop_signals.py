"""cluster/worker_signals.ignore_stop_signals, in a process of its own (it changes the process's signal state):
INT, USR1 and USR2 ignored; TERM blocked for the thread that waits for the driver's, or, where there is no
sigwaitinfo to tell its sender (macOS), left to its default: a worker that ignored its driver's SIGTERM would
hang the driver's exit (multiprocessing terminates and joins its daemonic children)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

PROBE = """
import signal, sys
if sys.argv[1] == "no-sigwaitinfo":
    del signal.sigwaitinfo
from hpc_classify.cluster.worker_signals import ignore_stop_signals
ignore_stop_signals()
status = dict(line.split(":\\t") for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
print(int(status["SigIgn"], 16), int(status["SigBlk"], 16))
"""


def _masks(variant: str) -> tuple[set[int], set[int]]:
    out = subprocess.run([sys.executable, "-c", PROBE, variant], capture_output=True, text=True, check=True)
    ignored, blocked = map(int, out.stdout.split())
    return {s for s in range(1, 64) if ignored >> (s - 1) & 1}, {
        s for s in range(1, 64) if blocked >> (s - 1) & 1
    }


WARNINGS_AND_INT = {signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_term_is_kept_for_the_driver_where_its_sender_can_be_told() -> None:
    ignored, blocked = _masks("linux")
    assert WARNINGS_AND_INT <= ignored and signal.SIGTERM not in ignored
    assert signal.SIGTERM in blocked and not WARNINGS_AND_INT & blocked


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_term_keeps_its_default_where_its_sender_cannot_be_told() -> None:
    ignored, blocked = _masks("no-sigwaitinfo")
    assert WARNINGS_AND_INT <= ignored and signal.SIGTERM not in ignored
    assert not {signal.SIGTERM, *WARNINGS_AND_INT} & blocked
