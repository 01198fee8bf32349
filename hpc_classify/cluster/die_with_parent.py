"""`python -m hpc_classify.cluster.die_with_parent PARENT_PID COMMAND...`: run COMMAND (exec, same process) so
that it gets SIGTERM when the process that started it dies (Linux's parent-death signal, kept across exec).

A node's launcher starts its scheduler and workers in process groups of their own (a Ctrl-C reaches only the
launcher), so a launcher killed outright (the OOM killer, SIGKILL) would leave them running as orphans: a
scheduler that still answers tells the other nodes that rank 0 lives (rank0_liveness.py), and workers hold
the node's memory until Slurm ends the job. Set here, in the child before its exec, and not by a
`preexec_fn`, which is unsafe in a launcher that runs threads.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with(parent_pid: int) -> None:
    """Ask for SIGTERM when our parent dies; exit at once if it has died already (we would be an orphan)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # it died before the signal was asked for
        sys.exit(f"die_with_parent: parent {parent_pid} is gone: not starting {' '.join(sys.argv[2:])}")


def wrapped(argv: list[str]) -> list[str]:
    """`argv` run through this module, for a child of the current process."""
    return [sys.executable, "-m", __name__, str(os.getpid()), *argv]


def main() -> None:
    parent, command = int(sys.argv[1]), sys.argv[2:]
    die_with(parent)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
