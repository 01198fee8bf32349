"""Stop requests by signal, installed only while a run is in progress (never at import time).

The first stop signal asks the driver to stop submitting and to let in-flight files finish within a grace
period; a second one asks it to abandon them at once. Abandoning is safe because a task writes its output
and marker atomically: an unfinished file simply has no marker and is redone.

Two graces: the time-limit warning (USR1, USR2) comes minutes before the end (`--signal=...@300`), so the files
in flight get most of that lead (`warning_grace`, config.py); SIGTERM and SIGINT leave only Slurm's KillWait
(30 s by default) before SIGKILL (`stop_grace`). A TERM or INT after a warning (the time limit itself, a
cancel) is not a second signal: it shortens the wait to `stop_grace` from its arrival.

In a Slurm job (`kill_wait` known) a TERM or INT also starts one `StopDeadline`: KillWait less KILL_WAIT_MARGIN_S.
Every step after it takes the smaller of its own cap and what is left (`within`), and the files' grace gives way
first: it ends AFTER_GRACE_RESERVE_S before the deadline, whatever --stop-grace says (`grace_after_term`).

Standard library only: the Slurm node entry (cluster layer) holds one from before its cluster starts and
hands it to the driver, so a signal at any moment of the job reaches the run.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

logger = logging.getLogger(__name__)

# The time-limit or preemption warning: USR1 from slurm/classify.sbatch (srun forwards it to every task),
# USR2 from `hpc-classify submit` (submitit's --signal; Slurm sends it to every process of the job step).
# The driver stops on it; the scheduler, the workers and the other nodes' entries ignore it.
WARNING_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, *WARNING_SIGNALS)
_WARNING_NAMES = frozenset(sig.name for sig in WARNING_SIGNALS)

# Kept at the end of KillWait: srun's exit and the batch script's reading of the stop report (and its requeue).
KILL_WAIT_MARGIN_S = 3.0
# Kept after the files' grace, within the deadline, for what follows it at the least: the driver's next look (once
# a second), closing its client and writing the summary (1 s), one look at Slurm for the stop report (1 s),
# retiring the workers (2 s) and the node's processes' SIGTERM-to-SIGKILL (2 s). Each gets more if it is left.
AFTER_GRACE_RESERVE_S = 7.0


class StopDeadline:
    """The seconds a stop signal leaves (`total`), counted from when it is made (the signal's arrival)."""

    def __init__(self, total: float, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.clock = clock
        self.started = clock()

    def left(self) -> float:
        return max(0.0, self.total - (self.clock() - self.started))

    def within(self, cap: float) -> float:
        """What a step whose own limit is `cap` s may take now: never past the deadline."""
        return min(cap, self.left())


class StopRequest:
    """Context manager: while active, the stop signals set `requested` (and `abandon` on the second).
    Entered again inside itself, only the outermost exit restores the handlers from before.

    `finished`: how many files and pieces the run holding this request has finished (classified, or failed for
    good). The driver counts them; the Slurm launcher's heartbeat carries the count to the other nodes, which
    requeue a job whose rank 0 was lost only if it had made progress (cluster/other_rank.py)."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS, kill_wait: float | None = None):
        self.signals = signals
        # Seconds from a TERM to Slurm's SIGKILL (its KillWait, cluster/kill_wait.py); None: none follows.
        self.kill_wait = kill_wait
        self.deadline: StopDeadline | None = None  # from the first TERM or INT, when kill_wait is known
        self.signal_name: str | None = None
        self.requested_at: float | None = None
        self.terminated_at: float | None = None  # a TERM or INT that came after a warning
        self.abandon = False
        self.finished = 0
        self.clock = time.monotonic  # the clock of the graces (a test's own)
        self._previous: dict[int, Any] = {}
        self._depth = 0

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    @property
    def warned(self) -> bool:
        """The stop was the time-limit or preemption warning (a requeue is wanted), not a cancel."""
        return self.signal_name in _WARNING_NAMES

    def request(self, name: str) -> None:
        """Ask to stop (what a signal does; also usable from code and tests). A second request abandons the
        files in flight, but for a first TERM or INT after a warning, which starts the TERM grace."""
        if self.signal_name is None:
            self.signal_name = name
            self.requested_at = self.clock()
        elif self.warned and name not in _WARNING_NAMES and self.terminated_at is None and not self.abandon:
            self.terminated_at = self.clock()
        else:
            self.abandon = True
        if name not in _WARNING_NAMES and self.deadline is None and self.kill_wait is not None:
            self.deadline = StopDeadline(self.kill_wait - KILL_WAIT_MARGIN_S, self.clock)

    def within(self, cap: float) -> float:
        """What a step after the stop, whose own limit is `cap` s, may take now: `cap`, or less once a TERM or INT
        started the deadline."""
        return cap if self.deadline is None else self.deadline.within(cap)

    def grace_after_term(self, stop_grace: float) -> float:
        """The seconds the files in flight get after a TERM or INT: `stop_grace`, less where KillWait is short."""
        if self.kill_wait is None:
            return stop_grace
        return max(0.0, min(stop_grace, self.kill_wait - KILL_WAIT_MARGIN_S - AFTER_GRACE_RESERVE_S))

    def warn_if_grace_cut(self, stop_grace: float) -> None:
        """At the start: say so if KillWait leaves the files in flight less than `stop_grace` after a TERM (not an
        error: KillWait may differ between partitions, and --stop-grace comes from a command line or YAML)."""
        grace = self.grace_after_term(stop_grace)
        if self.kill_wait is not None and grace < stop_grace:
            logger.warning(
                "--stop-grace %g s does not fit in Slurm's KillWait of %g s (SIGKILL follows a SIGTERM that much "
                "later; %g s of it are kept for the cluster's end and the stop report, %g s for the batch script): "
                "after a SIGTERM or SIGINT the files in flight get %g s",
                stop_grace,
                self.kill_wait,
                AFTER_GRACE_RESERVE_S,
                KILL_WAIT_MARGIN_S,
                grace,
            )

    def abandon_now(self, name: str) -> None:
        """Stop at once, abandoning the files in flight; `name` says why from now on (a reason other than a
        signal: the output's lock taken over), whatever stop came before."""
        if self.requested_at is None:
            self.requested_at = self.clock()
        self.signal_name = name
        self.abandon = True

    def grace_over(self, stop_grace: float, warning_grace: float) -> bool:
        """Whether the files in flight are to be abandoned now: asked for (a second signal), or the grace is
        over: `warning_grace` s after a warning, `stop_grace` s after a TERM or INT (one that followed a warning
        too, from its own arrival, unless the warning's grace ends first), or ends AFTER_GRACE_RESERVE_S before the
        deadline a TERM or INT started."""
        if self.abandon:
            return True
        if self.deadline is not None and self.deadline.left() <= AFTER_GRACE_RESERVE_S:
            return True
        if self.requested_at is None:
            return False
        now = self.clock()
        if not self.warned:
            return now - self.requested_at >= stop_grace
        if self.terminated_at is not None and now - self.terminated_at >= stop_grace:
            return True
        return now - self.requested_at >= warning_grace

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = self.signal_name
        self.request(name)
        # Logging from a handler is safe enough here: the handler runs in the main thread between bytecodes.
        if first is None:
            logger.warning("%s received: no new files will be submitted; finishing the files in flight", name)
        elif self.abandon:
            logger.warning("%s received after %s: abandoning the files in flight", name, first)
        else:
            logger.warning(
                "%s received after the warning %s: the files in flight now get --stop-grace to finish; "
                "another signal abandons them",
                name,
                first,
            )

    def __enter__(self) -> StopRequest:
        # signal.signal only works in the main thread; elsewhere (an embedding application) we do without.
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
