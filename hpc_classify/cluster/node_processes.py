"""The processes one node's Slurm launcher starts (its scheduler, its workers): each with its log in the
job dir, a record in the shared job dir when one fails (so that rank 0 fails at once), and stopping them."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import time
from pathlib import Path

from hpc_classify.cluster.die_with_parent import wrapped
from hpc_classify.cluster.job_incarnation import UNCHECKED, Incarnation
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_files import signals_held
from hpc_classify.stop_request import WARNING_SIGNALS

logger = logging.getLogger(__name__)


class NodeProcesses:
    def __init__(self, paths: JobPaths, node_name: str, incarnation: Incarnation = UNCHECKED):
        self.paths = paths
        self.node_name = node_name
        self.incarnation = incarnation
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._exit_records: dict[str, Path] = {}

    def log(self, label: str) -> Path:
        return self.paths.log(self.node_name, label)

    def spawn(self, label: str, argv: list[str], env: dict[str, str], *, record_exit: bool = False) -> None:
        """Start `label` ("scheduler", "worker") with `env` over ours; `record_exit`: a failure of it is
        written to the job dir (see record_exit)."""
        log = self.log(label)
        log.parent.mkdir(parents=True, exist_ok=True)
        logger.info("starting %s: %s (log %s)", label, " ".join(argv), log)
        with open(log, "ab") as out, signals_held(WARNING_SIGNALS):
            # Children start with the warning signals blocked: they must not kill the scheduler or workers.
            proc = subprocess.Popen(
                wrapped(argv),  # ends with us: a launcher killed outright leaves no orphan behind
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                # Own process group: a Ctrl-C typed where `hpc-classify node` runs in a terminal (salloc)
                # reaches only the launcher; the driver then retires the workers and the scheduler itself.
                process_group=0,
            )
        self.running[label] = proc
        if record_exit:
            self._exit_records[label] = self.paths.exit_record(self.node_name, label)

    def record_exit(self, label: str) -> None:
        """Tell rank 0, through the shared job dir, that our process failed (it then fails at once)."""
        proc = self.running.get(label)
        path = self._exit_records.get(label)
        # Another run's record with the same job id is replaced: it is no record of ours.
        if proc is not None and path is not None and proc.poll() and self.incarnation.read(path) is None:
            try:
                self.incarnation.write(path, {"node": self.node_name, "returncode": proc.returncode})
            except (
                OSError
            ) as exc:  # a failing shared file system must not stop what comes next (ending the job)
                logger.error("could not write %s: %s", path, exc)

    def stop(self, grace: float, kill_after: float = 5.0) -> None:
        """Give our children `grace` seconds to exit (they do once the scheduler closes them), then
        SIGTERM the rest together, and SIGKILL what is left after `kill_after` seconds."""
        for sig_deadline, action in ((grace, None), (kill_after, "terminate"), (None, "kill")):
            alive = [proc for proc in self.running.values() if proc.poll() is None]
            for proc in alive:
                if action is not None:
                    logger.info("%s pid %d: %s", action, proc.pid, " ".join(map(str, proc.args[:4])))
                    getattr(proc, action)()
            deadline = time.monotonic() + (sig_deadline or 0.0)
            for proc in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=None if sig_deadline is None else max(0.0, deadline - time.monotonic()))
        for label in self.running:
            self.record_exit(label)
