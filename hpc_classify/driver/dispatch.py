"""Stream files through the cluster: a bounded number of tasks in flight, retries, failures, stop requests.

Memory on the driver is bounded by the number of tasks in flight (tasks_per_worker x task threads): results
are small marker dicts folded into counters as they arrive, and futures are dropped as soon as they finish.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from hpc_classify import exit_codes
from hpc_classify.driver.content_sizes import AHEAD_ITEMS
from hpc_classify.driver.done_markers import count_late_markers, marker_written_since
from hpc_classify.driver.failures import failure_reason, is_retryable
from hpc_classify.driver.file_group import FileOutcome
from hpc_classify.driver.grouping import FileQueue, group_budget
from hpc_classify.driver.liveness import WorkerWatch
from hpc_classify.driver.pieces import PieceJob, PieceScheduler
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.scheduler_loss import SchedulerWatch
from hpc_classify.driver.task_futures import result_or_error
from hpc_classify.driver.worker_deaths import WorkerDeaths
from hpc_classify.driver.worker_tasks import (
    PROGRESS_TOPIC,
    PieceOutcome,
    run_piece_job_on_worker,
    run_task_on_worker,
)
from hpc_classify.errors import OutputWriteError
from hpc_classify.warning_grace import resolve_warning_grace

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # longest the loop blocks before it looks at signals and progress again
THREAD_COUNT_REFRESH = 10.0  # workers may join later (jobqueue scaling); recount this often


class Dispatcher:
    """Submits `pending` files to `client` as tasks (one file, a group of small files up to `group_bytes`,
    or one piece of a file larger than `piece_bytes`: driver/pieces.py), keeping at most
    tasks_per_worker tasks per task thread of the cluster in flight."""

    def __init__(self, client: Any, context: RunContext, *, progress: Progress, piece_bytes: int = 0):
        self.client, self.progress, self.config = client, progress, context.config
        self.output_dir, self.fingerprint = context.output_dir, context.fingerprint
        self.stats, self.failures, self.stop = context.stats, context.failures, context.stop
        self.warning_grace = resolve_warning_grace(self.config)  # TERM/INT: config.stop_grace
        self.in_flight: dict[Any, list[Any]] = {}  # task -> its files, or its one piece job
        self.pieces = PieceScheduler(context.output_dir, piece_bytes, context.fingerprint)
        # A group never holds more work than a piece.
        self.group_bytes = (
            min(b for b in (self.config.group_bytes, piece_bytes) if b > 0) if self.config.group_bytes else 0
        )
        self.failed_files: set[str] = set()  # a file whose piece failed is failed: its other pieces stop
        self.attempts: dict[str, int] = {}  # only files that failed at least once
        # Files left unfinished by a stop (at most the tasks in flight): one may still have written its
        # marker; the run counts those once the cluster is closed (count_late_markers).
        self.unfinished: list[Any] = []
        self.worker_deaths = WorkerDeaths()
        self._submitted = 0  # numbers each task's key: a requeued file must not reuse its erred key
        self.halted: str | None = None  # why the run stopped on its own (no workers, output unwritable)
        self.watch = WorkerWatch(client, self.config)
        self.scheduler = SchedulerWatch(client)
        self._task_threads = 1
        self._run_token = uuid.uuid4().hex[:8]
        self._threads_counted_at = float("-inf")
        self._started = time.time()  # markers written since then are this run's

    def run(self, pending: Sequence[PlannedFile]) -> None:
        from distributed import wait

        queue = FileQueue(pending)
        self.client.subscribe_topic(PROGRESS_TOPIC, self._on_progress_event)
        try:
            self._loop(queue, wait)
        finally:
            self.pieces.close(abandon=self.stop.requested)
            try:
                self.client.unsubscribe_topic(PROGRESS_TOPIC)
            except Exception as exc:  # the cluster may be gone already (a stop, a lost scheduler)
                logger.debug("unsubscribe failed: %s", exc)

    def _on_progress_event(self, event: Any) -> None:
        _, message = event
        if message.get("started"):
            self.worker_deaths.began(message["unit"], message.get("worker", ""))
            return
        self.progress.documents_classified(message["unit"], message["documents"], message["bytes"])

    def _loop(self, queue: FileQueue, wait: Any) -> None:
        while True:
            if self.halted is None and (gone := self.scheduler.lost()):
                self._halt(gone, exit_codes.INTERRUPTED)
                logger.error("stopping: %s", gone)
                self._drop_in_flight()  # nothing to cancel; what finished is on disk (count_late_markers)
                break
            if not self.stop.requested and self.halted is None:
                self._top_up(queue)
            if not self.in_flight:
                break
            if self.stop.requested and self.stop.grace_over(self.config.stop_grace, self.warning_grace):
                self._abandon()
                break
            if self.halted is None and (lost := self.watch.check()):
                self._halt(lost, exit_codes.INTERRUPTED)
                logger.error("%s", lost)
                self._abandon()
                break
            self.stats.workers_lost = sorted(self.watch.lost.values())
            # A wait with a timeout, rather than a blocking as_completed iterator: the loop must also notice
            # signals and write progress while no file finishes for minutes.
            self.scheduler.wait_for_one(wait, list(self.in_flight), TICK_SECONDS)
            if self.scheduler.lost():
                continue  # its futures are all cancelled: the loop's first test stops the run
            for future in [f for f in self.in_flight if f.done()]:
                self._collect(future, queue)
            self.stop.finished = self.stats.finished_count  # for the Slurm launcher's heartbeat
            self.progress.tick()

    def capacity(self) -> int:
        """Tasks kept in flight: `tasks_per_worker` per task thread, so that a worker with several
        threads (--threads-per-worker) has a task queued behind each running one, as a one-thread
        worker has."""
        now = time.monotonic()
        if now - self._threads_counted_at >= THREAD_COUNT_REFRESH and not self.scheduler.lost():
            self._task_threads = max(1, sum(self.client.nthreads().values()))
            self._threads_counted_at = now
        return self.config.tasks_per_worker * self._task_threads

    def _top_up(self, queue: FileQueue) -> None:
        capacity = self.capacity()
        budget = group_budget(self.group_bytes, queue.queued_bytes, self._task_threads)
        while queue and len(self.in_flight) < capacity:
            # The next files' decoded sizes are found in the background, not here when each is reached.
            self.pieces.measure_ahead(queue.upcoming(AHEAD_ITEMS))
            head = queue.peek()
            if isinstance(head, PieceJob) and head.planned.relpath in self.failed_files:
                queue.take(0)  # its file failed: the file's other pieces would never be assembled
                continue
            if isinstance(head, PlannedFile) and self.pieces.needs_pieces(head):
                try:
                    queue.replace_first(self.pieces.expand(head))
                except Exception as error:  # e.g. a Parquet footer that cannot be read
                    queue.take(0)
                    self._file_failed(head, error, queue)
                continue
            # alone: a small file started in pieces; weight: a group holds at most a piece's bytes decoded
            group = queue.take(budget, alone=self.pieces.needs_pieces, weight=self.pieces.content_bytes)
            self.in_flight[self._submit(group)] = group
        self.pieces.measure_ahead(queue.upcoming(AHEAD_ITEMS))  # measured while this round's tasks run

    def _submit(self, group: list[Any]) -> Any:
        first = group[0]
        self._submitted += 1
        # The run token keeps keys unique against a long-lived scheduler that may still run an abandoned
        # task of an earlier driver for the same file (a retried file goes alone).
        key = f"classify-{first.relpath}-{len(group)}-{self._submitted}-{self._run_token}"
        self.progress.unit_started(key)
        common = {"key": key, "pure": False, "retries": 0}  # retries are ours: counted, in _failures.ndjson
        args = (self.output_dir, self.config, self.fingerprint)
        solo = self.worker_deaths.solo(first.relpath)  # a retried file is taken alone: its group is itself
        if isinstance(first, PieceJob):
            return self.client.submit(run_piece_job_on_worker, first, *args, key, solo=solo, **common)
        files = [planned.input_file for planned in group]
        size = sum(planned.size for planned in group)
        return self.client.submit(run_task_on_worker, files, *args, key, size, solo=solo, **common)

    def _collect(self, future: Any, queue: FileQueue) -> None:
        group = self.in_flight.pop(future)
        key = future.key
        result, error = result_or_error(future)
        # Released at once: while the client holds a finished task, its result stays on its worker, and
        # should that worker die, Dask would run the task (the whole file) again.
        future.release()
        started, beside = self.worker_deaths.ended(key, error)
        if isinstance(group[0], PieceJob):
            self._collect_piece_job(key, result, error, group[0], queue, started, beside)
            return
        documents = size = files = 0
        if error is None:
            outcomes: list[FileOutcome] = result
            for planned, outcome in zip(group, outcomes, strict=True):
                if outcome.error is not None:
                    self._file_failed(planned, outcome.error, queue)
                    continue
                self.stats.add_marker(outcome.marker)
                documents, size, files = (
                    documents + outcome.marker.rows_in,
                    size + planned.size,
                    files + 1,
                )
        else:  # the whole task failed (its worker died, say)
            for planned in group:
                # Files of the task that were finished before it failed keep their output and marker.
                marker = marker_written_since(
                    self.output_dir, planned.relpath, self.fingerprint, self._started
                )
                if marker is None:
                    self._file_failed(planned, error, queue, started, beside)
                    continue
                logger.info("%s was finished before its task failed (%s): not redone", planned.relpath, error)
                self.stats.add_marker(marker)
                documents, size, files = documents + marker.rows_in, size + planned.size, files + 1
        self.progress.unit_done(key, documents=documents, size=size, files=files)

    def _collect_piece_job(
        self,
        key: str,
        result: Any,
        error: BaseException | None,
        job: PieceJob,
        queue: FileQueue,
        started: bool,
        beside: int,
    ) -> None:
        if error is None:
            outcome: PieceOutcome = result
        else:  # the worker died: a stream keeps the pieces it checkpointed; so does a finished piece
            outcome = PieceOutcome(self.pieces.markers_of_failed(job), error)
        assembling = job.work is None
        for marker in outcome.markers:
            (self.stats.add_file if assembling else self.stats.add_piece)(marker)
        one_piece = job.work is not None and job.work.piece is not None
        done = outcome.error is None or (one_piece and bool(outcome.markers))  # its marker is what counts
        self.progress.unit_done(
            key,
            documents=0 if assembling else sum(m.rows_in for m in outcome.markers),
            size=job.size if done else 0,
            files=int(assembling and done),
            pieces=0 if assembling else len(outcome.markers),
        )
        if not done:
            retry = job
            if not one_piece and not assembling and outcome.markers:
                retry = self.pieces.expand(job.planned)[0]  # a stream resumes after its last checkpoint
            self._file_failed(retry, outcome.error, queue, started, beside)
            return
        if (follow := self.pieces.after(job)) is not None:
            queue.push_front(follow)

    def _file_failed(
        self, item: Any, error: BaseException, queue: FileQueue, started: bool = True, beside: int = 0
    ) -> None:
        """A file, or a piece job of one (`item.relpath` is its key), failed: retry it, or record its file
        as failed (once, however many of its pieces fail). `started`: a worker began running its task;
        `beside`: how many other tasks had begun in the worker process that died running it."""
        if self.stop.requested or self.halted is not None or self.scheduler.lost():
            # Workers may be dying from the same signal, or the scheduler is gone: not the file's fault.
            logger.info("%s not finished before the stop (%s); it will be redone", item.relpath, error)
            self.unfinished.append(item)
            return
        if isinstance(error, OutputWriteError):
            self._halt_unwritable(item, error)
            return
        key = item.relpath
        if self.worker_deaths.excused(key, error, started, beside):
            queue.retry_first(item)
            return
        attempts = self.attempts.get(key, 0) + 1
        self.attempts[key] = attempts
        deaths = self.worker_deaths.charge(key, error)
        if is_retryable(error) and attempts <= self.config.max_retries:
            self.stats.retries += 1
            logger.warning(
                "%s failed (attempt %d of %d), retrying: %s: %s",
                key,
                attempts,
                self.config.max_retries + 1,
                type(error).__name__,
                error,
            )
            queue.retry_first(item)
            return
        reason = failure_reason(error, attempts, deaths)
        relpath = item.relpath
        if isinstance(item, PieceJob):
            relpath, reason = item.planned.relpath, f"{item.describe()}: {reason}"
        logger.error("%s failed: %s; %s: %s", relpath, reason, type(error).__name__, error)
        if relpath in self.failed_files:
            return
        self.failed_files.add(relpath)
        self.failures.record(
            relpath=relpath, input_path=item.path, attempts=attempts, error=error, reason=reason
        )
        self.stats.files_failed += 1
        self.stats.failed.append(relpath)
        self.progress.file_failed()

    def _halt_unwritable(self, planned: Any, error: OutputWriteError) -> None:
        # The file system, not the file: the file stays pending, nothing more is submitted.
        self._halt(str(error), exit_codes.OUTPUT_UNWRITABLE)
        logger.error("stopping: %s (while writing the output of %s)", error, planned.relpath)

    def _halt(self, reason: str, exit_code: int) -> None:
        self.halted = reason
        self.stats.stop_reason, self.stats.stop_exit_code = reason, exit_code

    def _abandon(self) -> None:
        files = sorted(p.relpath for group in self.in_flight.values() for p in group)
        logger.warning("abandoning %d file(s) in flight: %s", len(files), ", ".join(files[:10]))
        try:
            self.client.cancel(list(self.in_flight))
        except Exception as exc:  # the cluster may be going down with the same signal
            logger.debug("cancel failed: %s", exc)
        self._drop_in_flight()

    def _drop_in_flight(self) -> None:
        self.unfinished.extend(p for group in self.in_flight.values() for p in group)
        for future in self.in_flight:
            self.progress.unit_dropped(future.key)
        self.in_flight.clear()

    def count_late_markers(self) -> None:
        """Count the stopped work that finished anyway (driver/done_markers.count_late_markers)."""
        count_late_markers(self.unfinished, self.pieces, self.stats, self.fingerprint, self._started)
