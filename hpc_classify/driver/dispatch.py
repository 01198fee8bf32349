"""Stream files through the cluster: a bounded number of tasks in flight, retries, failures, stop requests.

Memory on the driver is bounded by the number of tasks in flight (tasks_per_worker x workers): results
are small marker dicts folded into counters as they arrive, and futures are dropped as soon as they finish.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.signals import StopRequest
from hpc_classify.driver.summary import RunStats
from hpc_classify.driver.task import classify_file
from hpc_classify.errors import HpcClassifyError
from hpc_classify.io.discovery import InputFile

logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # longest the loop blocks before it looks at signals and progress again
WORKER_COUNT_REFRESH = 10.0  # workers may join later (jobqueue scaling); recount this often


class FileTaskError(Exception):
    """A deterministic per-file error (bad input, bad settings) raised on a worker: not retried.

    Carries only strings, so it survives pickling between processes (our errors with keyword-only
    constructor arguments do not)."""

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def run_task_on_worker(
    input_file: InputFile, output_dir: str, config: RunConfig, fingerprint: str
) -> dict[str, Any]:
    """The Dask task: classify_file with the worker's name (only the driver layer may ask Dask for it).
    `config` carries the classifier objects (settings only); each worker keeps their models loaded."""
    from distributed import get_worker

    try:
        worker = str(get_worker().name)
    except ValueError:  # called outside a worker (e.g. a synchronous scheduler)
        worker = ""
    try:
        return classify_file(
            input_file,
            output_dir,
            config.classifiers,
            output_format=config.output_format,
            on_bad_row=config.on_bad_row,
            fingerprint=fingerprint,
            keep_columns=config.keep_columns,
            row_number_column=config.row_number_column,
            worker=worker,
        )
    except HpcClassifyError as exc:
        raise FileTaskError(type(exc).__name__, str(exc)) from None


class Dispatcher:
    """Submits `pending` files to `client`, keeping at most tasks_per_worker x workers in flight."""

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
        self.in_flight: dict[Any, PlannedFile] = {}
        self.attempts: dict[str, int] = {}  # only files that failed at least once
        # Files left unfinished by a stop (at most the tasks in flight): one may still have written its
        # marker; the run counts those once the cluster is closed (count_late_markers).
        self.unfinished: list[PlannedFile] = []
        self._workers = 1
        self._run_token = uuid.uuid4().hex[:8]
        self._workers_counted_at = float("-inf")

    def run(self, pending: Sequence[PlannedFile]) -> None:
        from distributed import wait

        queue: deque[PlannedFile] = deque(pending)
        while True:
            if not self.stop.requested:
                self._top_up(queue)
            if not self.in_flight:
                break
            if self.stop.requested and self._should_abandon():
                self._abandon()
                break
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

    def _top_up(self, queue: deque[PlannedFile]) -> None:
        capacity = self.capacity()
        while queue and len(self.in_flight) < capacity:
            planned = queue.popleft()
            attempt = self.attempts.get(planned.relpath, 0)
            future = self.client.submit(
                run_task_on_worker,
                planned.input_file,
                self.output_dir,
                self.config,
                self.fingerprint,
                # The run token keeps keys unique against a long-lived scheduler that may still run an
                # abandoned task of an earlier driver for the same file.
                key=f"classify_file-{planned.relpath}-{attempt}-{self._run_token}",
                pure=False,
                retries=0,  # retries are ours: they are counted and end in failures.jsonl
            )
            self.in_flight[future] = planned

    def _collect(self, future: Any, queue: deque[PlannedFile]) -> None:
        planned = self.in_flight.pop(future)
        if future.status == "finished":
            marker = future.result()
            self.stats.add_marker(marker)
            self.progress.file_done(int(marker["rows_in"]))
            return
        error = _future_error(future)
        if self.stop.requested:
            # Workers may be dying from the same signal: not the file's fault; it stays pending.
            logger.info("%s not finished before the stop (%s); it will be redone", planned.relpath, error)
            self.unfinished.append(planned)
            return
        attempts = self.attempts.get(planned.relpath, 0) + 1
        self.attempts[planned.relpath] = attempts
        retryable = not isinstance(error, FileTaskError)
        if retryable and attempts <= self.config.max_retries:
            self.stats.retries += 1
            logger.warning(
                "%s failed (attempt %d of %d), retrying: %s: %s",
                planned.relpath,
                attempts,
                self.config.max_retries + 1,
                type(error).__name__,
                error,
            )
            queue.appendleft(planned)
            return
        self.failures.record(relpath=planned.relpath, input_path=planned.path, attempts=attempts, error=error)
        self.stats.files_failed += 1
        self.stats.failed.append(planned.relpath)
        self.progress.file_failed()
        logger.error("%s failed after %d attempt(s): %s", planned.relpath, attempts, error)

    def _should_abandon(self) -> bool:
        if self.stop.abandon:
            return True
        requested_at = self.stop.requested_at if self.stop.requested_at is not None else time.monotonic()
        return time.monotonic() - requested_at >= self.stop_grace

    def _abandon(self) -> None:
        logger.warning(
            "abandoning %d file(s) in flight: %s",
            len(self.in_flight),
            ", ".join(sorted(p.relpath for p in self.in_flight.values())[:10]),
        )
        try:
            self.client.cancel(list(self.in_flight))
        except Exception as exc:  # the cluster may be going down with the same signal
            logger.debug("cancel failed: %s", exc)
        self.unfinished.extend(self.in_flight.values())
        self.in_flight.clear()


def _future_error(future: Any) -> BaseException:
    if future.status == "cancelled":
        from concurrent.futures import CancelledError

        return CancelledError(f"task {future.key} was cancelled (its worker or the scheduler went away)")
    try:
        return future.exception()
    except Exception as exc:  # the exception itself could not be unpickled, or the client lost the scheduler
        return exc
