"""The part of a Slurm node's entry that runs on every node but the first (rank 0): serve this node's
workers until rank 0 ends, and end the job for all nodes when rank 0 is lost (its heartbeat stops, and its
scheduler does not answer: rank0_liveness.py).

A mixin of `NodeLauncher` (slurm_node.py), which holds the node's identity, options, job paths, shared-file
access (`incarnation`), processes and waits (`_poll`, `start_workers`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import subprocess

from hpc_classify import exit_codes
from hpc_classify.cluster.file_looks import Backoff, rank0_watch_gap
from hpc_classify.cluster.node_files import signals_ignored
from hpc_classify.cluster.node_refusal import rank0_published, rank0_refusal
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWatch, end_job_once
from hpc_classify.cluster.rank0_liveness import Rank0Verdict
from hpc_classify.stop_request import WARNING_SIGNALS

logger = logging.getLogger(__name__)


class OtherRankRole:
    """Rank 1..N-1 of the node entry."""

    def run_other_rank(self) -> int:
        """Run this node's workers until rank 0 ends (its ended beat, or the shutdown file); if rank 0's
        heartbeat stops (its node or its scheduler lost), stop them, end the job and return 3
        (INTERRUPTED: requeued), or 5 (STOPPED_BEFORE_PROGRESS: cancelled) when the run had finished nothing since it started."""
        # The warning signal is for the driver on rank 0 (it reaches every task): ignored here and by the
        # workers started meanwhile (they inherit it); restored after, for a caller that lives on.
        with signals_ignored(WARNING_SIGNALS):
            return self._serve_workers()

    def _serve_workers(self) -> int:
        rank0_files = functools.partial(rank0_published, self.paths, self.incarnation)
        if self._poll(rank0_files, f"the scheduler file {self.scheduler_file}") == "shutdown":
            # Rank 0 ended before this node started its workers (it refused its options, failed to start its
            # scheduler, or ended while this node was still starting): its error, or its result, is the job's.
            if (refused := rank0_refusal(self.paths, self.incarnation)) is not None:
                logger.error(
                    "node %s: rank 0 refused its options (%s): exiting", self.identity.node_name, refused
                )
                return 0
            logger.error(
                "node %s: rank 0 ended before this node started its workers; see rank 0's log: exiting",
                self.identity.node_name,
            )
            return 0
        # A look farther apart than 3 gaps (each look may add a 3 s probe of the scheduler) was a pause.
        gap = rank0_watch_gap(self.options.death_timeout)
        watch = HeartbeatWatch(
            self.paths.heartbeat, self.options.death_timeout, self.incarnation, pause_gap=max(10.0, 3 * gap)
        )
        # The address this node's workers join, read once: the scheduler file is rank 0's for the whole run.
        rank0 = Rank0Verdict(
            watch, str((self.incarnation.read(self.scheduler_file) or {}).get("address", ""))
        )
        self.start_workers()
        worker = self.processes.running["worker"]
        ended = self._wait_for_rank0_end(rank0, worker)
        if ended is None:
            return self._rank0_lost(rank0)
        if ended.get("clean"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=2.0)  # a worker the scheduler closed is exiting already
        self.processes.record_exit("worker")
        if worker.returncode:  # already told to rank 0 (worker-exit.json), which reran its files
            logger.warning(
                "node %s: its worker command had exited with %s", self.identity.node_name, worker.returncode
            )
        # Rank 0 speaks for the job: srun reports the highest code of its tasks, and the batch script requeues
        # on rank 0's 3 only if no other node's code hides it.
        return 0

    def _wait_for_rank0_end(self, rank0: Rank0Verdict, worker: subprocess.Popen[bytes]) -> dict | None:
        """Rank 0's end as it wrote it (its ended beat or its shutdown file), or None when it was lost."""
        # A worker that exits (retired by rank 0 at the end, or failed) does not end the wait: rank 0 writes its
        # ended beat and the shutdown file right after retiring the workers, or its heartbeat stops. The ended
        # beat decides where the new `shutdown` stays invisible (NFS caches a name looked for as missing).
        # For days: looks back off to rank0_watch_gap, 2 lookups each (a missing name, the heartbeat's open).
        gap = rank0_watch_gap(self.options.death_timeout)
        looks = Backoff(min(self.options.shutdown_poll_interval, gap), gap)
        while (ended := self.incarnation.read(self.paths.shutdown)) is None:
            if worker.poll() is not None:
                self.processes.record_exit("worker")  # rank 0 fails at once if it still waits for it
            if rank0.lost():  # reads the heartbeat: never lost once it is the ended beat
                return None
            if (ended := rank0.watch.ending()) is not None:
                return ended
            looks.sleep()
        return ended

    def _rank0_lost(self, verdict: Rank0Verdict) -> int:
        """Rank 0 is gone: stop our workers, say so where it survives rank 0's node (the job's output may
        not), end the job once for all nodes, and leave. The job is requeued (3) only if its
        driver had finished a file or piece since the job started: a rank 0 that dies the same way at every
        start (killed for memory while it plans, a crash) would otherwise be requeued for ever. Without
        progress it is cancelled (5, as the driver's own stop before any result: exit_codes.stopped)."""
        name, rank0 = self.identity.node_name, verdict.watch
        first = rank0.node() or (self.identity.node_names or ("rank 0",))[0]
        address = verdict.address or "?"
        progress = rank0.finished() > 0
        code = exit_codes.stopped(exit_codes.INTERRUPTED, progress)
        if verdict.scheduler_answered():  # the bound of rank0_liveness.py's policy
            gone = (
                f"node {name}: rank 0 ({first}) taken for lost although its scheduler at {address} still "
                f"answers: {self.paths.heartbeat} unchanged for {verdict.silent:.0f} s ({rank0.last_beat()}), "
                f"longer than a file system stall (--death-timeout + {verdict.grace:.0f} s)"
            )
        else:
            gone = (
                f"node {name}: rank 0 ({first}) and its scheduler at {address} are gone: {self.paths.heartbeat} "
                f"unchanged for {self.options.death_timeout:.0f} s ({rank0.last_beat()})"
            )
        if progress:
            reason = f"{gone}; stopping this node's workers and exiting with {code} (resumable)"
        else:
            reason = (
                f"{gone}, before its driver had finished a single file or piece in this run of the job; stopping "
                f"this node's workers and exiting with {code}: not requeued, since a rank 0 that dies the same way "
                "at every start (killed for memory while planning, a crash) would be requeued for ever. Fix the "
                "cause, then submit the same command again to resume"
            )
        reason += f". Rank 0's logs: {self.paths.node_dir(first)}; the markers keep every finished file"
        logger.error("%s", reason)
        self.processes.stop(grace=0.0)
        record = {"node": name, "exit_code": code, "reason": reason}
        exit_record = self.paths.exit_record(name, "node")

        def report(ending: str | None = None) -> None:
            try:  # the job must still be ended when the shared file system fails
                self.incarnation.write(exit_record, record if ending is None else {**record, "job": ending})
            except OSError as exc:
                logger.error("could not write %s: %s", exit_record, exc)

        report()
        end_job_once(
            self.identity.job_id,
            self.identity.restart_count,
            self.paths.ending_claim,
            report=report,
            progress=progress,
        )
        return code
