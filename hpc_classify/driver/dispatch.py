"""Stream files through the cluster: a bounded number of tasks in flight, retries, failures, stop requests.

Memory on the driver is bounded by the number of tasks in flight (tasks_per_worker x workers): results
are small marker dicts folded into counters as they arrive, and futures are dropped as soon as they finish.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver import exit_codes
from hpc_classify.driver.done_markers import marker_written_since
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.file_group import FileOutcome, classify_files
from hpc_classify.driver.grouping import FileQueue, group_budget
from hpc_classify.driver.liveness import WorkerWatch
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.signals import StopRequest
from hpc_classify.driver.summary import RunStats
from hpc_classify.driver.task import FileSettings
from hpc_classify.errors import HpcClassifyError, OutputWriteError
from hpc_classify.io.discovery import InputFile

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # longest the loop blocks before it looks at signals and progress again
WORKER_COUNT_REFRESH = 10.0  # workers may join later (jobqueue scaling); recount this often


def run_task_on_worker(
    input_files: list[InputFile], output_dir: str, config: RunConfig, fingerprint: str
) -> list[FileOutcome]:
    """The Dask task: classify_files (one file, or a group of small files classified together) with the
    worker's name (only the driver layer may ask Dask for it). `config` carries the classifier objects
    (settings only); each worker keeps their models loaded. One outcome per file, in order."""
    from distributed import get_worker

    try:
        worker = str(get_worker().name)
    except ValueError:  # called outside a worker (e.g. a synchronous scheduler)
        worker = ""
    settings = FileSettings(
        output_dir=output_dir,
        output_format=config.output_format,
        on_bad_row=config.on_bad_row,
        fingerprint=fingerprint,
        keep_columns=config.keep_columns,
        row_number_column=config.row_number_column,
        worker=worker,
    )
    # Per-file errors come back as themselves (ours pickle with their attributes): failures.jsonl shows
    # the real type.
    return classify_files(input_files, config.classifiers, settings)


class Dispatcher:
    """Submits `pending` files to `client` as tasks (one file, or a group of small files up to
    `group_bytes`), keeping at most tasks_per_worker x workers tasks in flight."""

    def __init__(
        self,
        client: Any,
        config: RunConfig,
        *,
        output_dir: str,
        fingerprint: str,
        stats: RunStats,
        failures: FailureLog,
        progress: Progress,
        stop: StopRequest,
        stop_grace: float,
    ):
        self.client = client
        self.config = config
        self.output_dir = output_dir
        self.fingerprint = fingerprint
        self.stats = stats
        self.failures = failures
        self.progress = progress
        self.stop = stop
        self.stop_grace = stop_grace
        self.in_flight: dict[Any, list[PlannedFile]] = {}  # task -> its files
        self.attempts: dict[str, int] = {}  # only files that failed at least once
        # Files left unfinished by a stop (at most the tasks in flight): one may still have written its
        # marker; the run counts those once the cluster is closed (count_late_markers).
        self.unfinished: list[PlannedFile] = []
        self.deaths: dict[str, int] = {}  # attempts that ended with the worker process dying
        self.halted: str | None = None  # why the run stopped on its own (no workers, output unwritable)
        self.watch = WorkerWatch(client, config)
        self._workers = 1
        self._run_token = uuid.uuid4().hex[:8]
        self._workers_counted_at = float("-inf")
        self._started = time.time()  # markers written since then are this run's

    def run(self, pending: Sequence[PlannedFile]) -> None:
        from distributed import wait

        queue = FileQueue(pending)
        while True:
            if not self.stop.requested and self.halted is None:
                self._top_up(queue)
            if not self.in_flight:
                break
            if self.stop.requested and self._should_abandon():
                self._abandon()
                break
            if self.halted is None and (lost := self.watch.check()):
                self._halt(lost, exit_codes.INTERRUPTED)
                logger.error("%s", lost)
                self._abandon()
                break
            self.stats.workers_lost = sorted(self.watch.lost.values())
            try:
                # A wait with a timeout, rather than a blocking as_completed iterator: the loop must also
                # notice signals and write progress while no file finishes for minutes.
                wait(list(self.in_flight), timeout=TICK_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            for future in [f for f in self.in_flight if f.done()]:
                self._collect(future, queue)
            self.progress.tick()

    def capacity(self) -> int:
        now = time.monotonic()
        if now - self._workers_counted_at >= WORKER_COUNT_REFRESH:
            self._workers = max(1, len(self.client.nthreads()))
            self._workers_counted_at = now
        return self.config.tasks_per_worker * self._workers

    def _top_up(self, queue: FileQueue) -> None:
        capacity = self.capacity()
        budget = group_budget(self.config.group_bytes, queue.queued_bytes, self._workers)
        while queue and len(self.in_flight) < capacity:
            group = queue.take(budget)
            attempt = self.attempts.get(group[0].relpath, 0)
            future = self.client.submit(
                run_task_on_worker,
                [planned.input_file for planned in group],
                self.output_dir,
                self.config,
                self.fingerprint,
                # The run token keeps keys unique against a long-lived scheduler that may still run an
                # abandoned task of an earlier driver for the same file (a retried file goes alone).
                key=f"classify_files-{group[0].relpath}-{len(group)}-{attempt}-{self._run_token}",
                pure=False,
                retries=0,  # retries are ours: they are counted and end in failures.jsonl
            )
            self.in_flight[future] = group

    def _collect(self, future: Any, queue: FileQueue) -> None:
        group = self.in_flight.pop(future)
        if future.status == "finished":
            outcomes: list[FileOutcome] = future.result()
            for planned, outcome in zip(group, outcomes, strict=True):
                if outcome.error is not None:
                    self._file_failed(planned, outcome.error, queue)
                    continue
                self.stats.add_marker(outcome.marker)
                self.progress.file_done(int(outcome.marker["rows_in"]))
            return
        error = _future_error(future)  # the whole task failed (its worker died, say)
        for planned in group:
            # Files of the task that were finished before it failed keep their output and marker.
            marker = marker_written_since(self.output_dir, planned.relpath, self.fingerprint, self._started)
            if marker is None:
                self._file_failed(planned, error, queue)
                continue
            logger.info("%s was finished before its task failed (%s): not redone", planned.relpath, error)
            self.stats.add_marker(marker)
            self.progress.file_done(int(marker["rows_in"]))

    def _file_failed(self, planned: PlannedFile, error: BaseException, queue: FileQueue) -> None:
        if self.stop.requested or self.halted is not None:
            # Workers may be dying from the same signal: not the file's fault; it stays pending.
            logger.info("%s not finished before the stop (%s); it will be redone", planned.relpath, error)
            self.unfinished.append(planned)
            return
        if isinstance(error, OutputWriteError):
            self._halt_unwritable(planned, error)
            return
        attempts = self.attempts.get(planned.relpath, 0) + 1
        self.attempts[planned.relpath] = attempts
        if _worker_died(error):
            self.deaths[planned.relpath] = self.deaths.get(planned.relpath, 0) + 1
        if is_retryable(error) and attempts <= self.config.max_retries:
            self.stats.retries += 1
            logger.warning(
                "%s failed (attempt %d of %d), retrying: %s: %s",
                planned.relpath,
                attempts,
                self.config.max_retries + 1,
                type(error).__name__,
                error,
            )
            queue.retry_first(planned)
            return
        reason = failure_reason(error, attempts, self.deaths.get(planned.relpath, 0))
        self.failures.record(
            relpath=planned.relpath, input_path=planned.path, attempts=attempts, error=error, reason=reason
        )
        self.stats.files_failed += 1
        self.stats.failed.append(planned.relpath)
        self.progress.file_failed()
        logger.error("%s failed: %s; %s: %s", planned.relpath, reason, type(error).__name__, error)

    def _halt_unwritable(self, planned: PlannedFile, error: OutputWriteError) -> None:
        # The file system, not the file: the file stays pending, nothing more is submitted.
        self._halt(str(error), exit_codes.OUTPUT_UNWRITABLE)
        logger.error("stopping: %s (while writing the output of %s)", error, planned.relpath)

    def _halt(self, reason: str, exit_code: int) -> None:
        self.halted = reason
        self.stats.stop_reason, self.stats.stop_exit_code = reason, exit_code

    def _should_abandon(self) -> bool:
        if self.stop.abandon:
            return True
        requested_at = self.stop.requested_at if self.stop.requested_at is not None else time.monotonic()
        return time.monotonic() - requested_at >= self.stop_grace

    def _abandon(self) -> None:
        files = sorted(p.relpath for group in self.in_flight.values() for p in group)
        logger.warning("abandoning %d file(s) in flight: %s", len(files), ", ".join(files[:10]))
        try:
            self.client.cancel(list(self.in_flight))
        except Exception as exc:  # the cluster may be going down with the same signal
            logger.debug("cancel failed: %s", exc)
        self.unfinished.extend(p for group in self.in_flight.values() for p in group)
        self.in_flight.clear()


def _future_error(future: Any) -> BaseException:
    if future.status == "cancelled":
        from concurrent.futures import CancelledError

        return CancelledError(f"task {future.key} was cancelled (its worker or the scheduler went away)")
    try:
        return future.exception()
    except Exception as exc:  # the exception itself could not be unpickled, or the client lost the scheduler
        return exc


def is_retryable(error: BaseException) -> bool:
    """Project errors (ours, unless marked retryable: bad input, settings) are not retried; infrastructure
    errors (a worker lost, a timeout, I/O) and unknown ones are."""
    if isinstance(error, HpcClassifyError):
        return error.retryable
    return True


def failure_reason(error: BaseException, attempts: int, deaths: int) -> str:
    """Why a file ended in failures.jsonl, in words (its `reason`)."""
    if deaths:
        return (
            f"the worker process running it died (KilledWorker) in {deaths} of {attempts} attempt(s): "
            "a document that crashes the tokenizer or model, or exhausts memory? see the worker's log"
        )
    if not is_retryable(error):
        return "a problem with the file or the settings (not retried)"
    return f"still failing after {attempts} attempt(s)"


def _worker_died(error: BaseException) -> bool:
    return type(error).__name__ == "KilledWorker"
