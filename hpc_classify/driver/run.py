"""`run_classification(config) -> RunResult`: one resumable run over a sharded corpus.

Steps: list the inputs; take the output directory's lock; bring the directory in line with this run
(driver/run_start.py: fingerprint, changed inputs, plan; files with a completion marker are skipped);
connect to (or start) the cluster; stream the rest through it (driver/dispatch.py); give a complete Parquet run's
outputs one schema (driver/output_schema.py); write `_summary.json`. Exit codes are in
hpc_classify/exit_codes.py. What a caller above the driver adds to a run (the report: hpc_classify/api.py) comes
in as `RunHooks`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from hpc_classify import exit_codes
from hpc_classify.cluster.kill_wait import kill_wait_here
from hpc_classify.cluster.main_guard import refuse_start_while_importing_main
from hpc_classify.cluster.slurm_env import job_run
from hpc_classify.config import RunConfig
from hpc_classify.driver.column_checks import check_keep_columns, check_text_fields, warn_prediction_columns
from hpc_classify.driver.dispatch import Dispatcher
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.fingerprint import compute_run_fingerprint
from hpc_classify.driver.lock import LOCK_LOST, RunLock
from hpc_classify.driver.output_schema import after_run, before_classifying
from hpc_classify.driver.pieces import default_piece_bytes
from hpc_classify.driver.plan import PlannedFile, list_input_files
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.run_start import reconcile_output_dir
from hpc_classify.driver.summary import RunStats, build_summary, write_summary
from hpc_classify.driver.unfinished import check_all_accounted_for
from hpc_classify.driver.worker_gpus import WorkerGpus, refuse_gpu_settings_without_gpus
from hpc_classify.errors import ConfigError, OutputDirectoryError
from hpc_classify.io.markers import MarkerFiles
from hpc_classify.stop_request import StopRequest
from hpc_classify.warning_grace import resolve_warning_grace

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    exit_code: int
    summary: dict[str, Any]
    summary_path: str | None  # None: not written (the output's lock was taken over)


def _no_context(config: RunConfig, output_dir: str) -> AbstractContextManager[Any]:
    return nullcontext()


def _nothing(output_dir: str, stopped_by: str | None, markers: MarkerFiles | None) -> None:
    return None


@dataclass(frozen=True)
class RunHooks:
    """What a layer above the driver adds to a run, given (config, output directory): a context around
    the classifying (while the cluster is up), and a step after the summary is written, told the stop signal
    that came at any time (None: none), one whose files all finished within its grace included: a job
    stopping for its time limit has seconds left, whether or not its run is complete; and every marker, where
    the run's end has read them all already (a complete Parquet run's one-schema step; None: not read)."""

    around_classifying: Callable[[RunConfig, str], AbstractContextManager[Any]] = _no_context
    after_summary: Callable[[str, str | None, MarkerFiles | None], None] = _nothing


def run_classification(
    config: RunConfig,
    *,
    client: Any | None = None,
    connect_timeout: float | None = None,
    hooks: RunHooks = RunHooks(),
    stop: StopRequest | None = None,
) -> RunResult:
    """Classify every input file of `config` that has no completion marker yet in `config.output`.

    `client`: a `distributed.Client` to use (not closed here); None connects as `config` says.
    `hooks`: what the caller adds (hpc_classify.api.classify adds the report).
    `stop`: a StopRequest the caller has entered already and holds for longer than the run (the Slurm
    node's rank 0, from before its cluster starts); None: the run holds the stop signals itself.
    Raises OutputDirectoryError (locked, fingerprint mismatch), ConfigError (classifiers, settings),
    InputFileError (inputs), ModelNotAvailableError or ClusterError before any work; per-file errors
    end in _failures.ndjson.
    """
    # Everything that can be wrong with the command is checked before anything is written into the
    # output directory: the classifiers and their fingerprint (labels, checkpoint hashes: no weights), the
    # inputs, and the output path itself. A corrected command then starts afresh.
    # Signals are caught from the start: listing a large corpus and reading its markers can take minutes,
    # and a stop asked for meanwhile must still end in a clean summary (nothing is submitted then).
    refuse_start_while_importing_main()  # a script's unguarded run(), again in a worker process: stop now
    with nullcontext(stop) if stop is not None else StopRequest(kill_wait=kill_wait_here()) as stop:
        resolve_warning_grace(config)  # a grace not below the batch script's warning lead: refused now
        stop.warn_if_grace_cut(config.stop_grace)  # Slurm's KillWait leaves less: said, and cut then
        details = _fingerprint_details(config)
        output_dir = os.path.abspath(config.output)
        files = list_input_files(config.inputs, output_dir, config.output_format)
        check_text_fields(config.classifiers, files)
        check_keep_columns(config.keep_columns, config.key_column, files)
        warn_prediction_columns(config.classifiers, config.keep_columns, files)
        _make_output_dir(output_dir)
        with RunLock(output_dir, on_lost=lambda: stop.abandon_now(LOCK_LOST), job=job_run()):
            caller = _Caller(client=client, connect_timeout=connect_timeout, hooks=hooks)
            return _run_locked(config, output_dir, details, files, stop, caller)


def _make_output_dir(output_dir: str) -> None:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputDirectoryError(
            f"--output {output_dir} is a file, not a directory",
            hint="give a directory path (created if missing)",
        )
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as exc:
        raise OutputDirectoryError(
            f"cannot create the output directory {output_dir}: {exc.strerror or exc}",
            hint="check the path and its permissions, or choose another --output",
        ) from exc


@dataclass(frozen=True, kw_only=True)
class _Caller:
    """What the caller of `run_classification` passed besides the config, for the steps that use it."""

    client: Any | None
    connect_timeout: float | None
    hooks: RunHooks


def _run_locked(
    config: RunConfig,
    output_dir: str,
    details: dict[str, Any],
    files: list[PlannedFile],
    stop: StopRequest,
    caller: _Caller,
) -> RunResult:
    started = time.time()
    fingerprint, pending = reconcile_output_dir(config, output_dir, details, files)
    stats = RunStats(files_planned=len(files), files_skipped=len(files) - len(pending))
    failures = FailureLog(output_dir)
    context = RunContext(
        config=config,
        output_dir=output_dir,
        fingerprint=fingerprint,
        stats=stats,
        failures=failures,
        stop=stop,
    )
    logger.info(
        "%d input file(s): %d already done, %d to classify into %s",
        len(files),
        stats.files_skipped,
        len(pending),
        output_dir,
    )
    cluster_info: dict[str, Any] = {
        "scheduler_address": None,
        "protocol": None,
        "workers": 0,
        "dashboard": None,
    }
    if pending and stop.requested:
        logger.warning("%s received before classifying began: nothing submitted", stop.signal_name)
    elif pending:
        before_classifying(config.output_format, output_dir)
        cluster_info = _classify(context, pending, caller) or cluster_info  # None: stopped before a cluster
    finished_anyway = stop.requested and stats.files_remaining == 0
    if finished_anyway:  # the stop came, but the files in flight finished within the grace period
        logger.info(
            "%s received, but every file had finished (done or failed): the run is complete, not interrupted",
            stop.signal_name,
        )
    if not stop.requested and stats.stop_exit_code is None:  # files left over anyway: 3, never 0
        check_all_accounted_for(stats, pending, output_dir)
    if stop.requested and not finished_anyway:
        exit_code = exit_codes.stopped(exit_codes.INTERRUPTED, stats.finished_something)
    elif stats.stop_exit_code is not None:  # no workers left, output unwritable, files left over
        exit_code = exit_codes.stopped(stats.stop_exit_code, stats.finished_something)
    elif stats.files_failed:
        exit_code = exit_codes.FILES_FAILED
    else:
        exit_code = exit_codes.OK
    interrupted_by = None if finished_anyway else stop.signal_name
    output_schema, markers = after_run(context, exit_code)  # a complete Parquet run's outputs: one schema
    summary = build_summary(
        stats,
        started=started,
        finished=time.time(),
        exit_code=exit_code,
        interrupted_by=interrupted_by,
        fingerprint=fingerprint,
        cluster=cluster_info,
    )
    if output_schema is not None:
        summary["output_schema"] = output_schema
    if stop.signal_name == LOCK_LOST:
        # The directory is another run's now: its summary and report are its own to write.
        logger.error("the output directory's lock was taken over: no summary or report written by this run")
        return RunResult(exit_code=exit_code, summary=summary, summary_path=None)
    path = write_summary(output_dir, summary)
    _log_outcome(summary, failures)
    # Any stop, before the schema step or during it, leaves the job seconds, a complete run's too: no report.
    caller.hooks.after_summary(output_dir, stop.signal_name, markers)  # each marker read once at the end
    return RunResult(exit_code=exit_code, summary=summary, summary_path=path)


def _classify(context: RunContext, pending: list[PlannedFile], caller: _Caller) -> dict[str, Any] | None:
    from hpc_classify.cluster.connect import (
        CLOSE_TIMEOUT,
        DEFAULT_CONNECT_TIMEOUT,
        STOP_CLOSE_TIMEOUT,
        close_quietly,
        connect,
    )
    from hpc_classify.cluster.first_worker import ConnectStopped

    config, stop, given_client = context.config, context.stop, caller.client
    if given_client is not None:
        client, cluster = given_client, None
    else:
        timeout = caller.connect_timeout or DEFAULT_CONNECT_TIMEOUT
        try:
            client, cluster = connect(config, timeout=timeout, stopped=lambda: stop.requested)
        except ConnectStopped as stopped:
            logger.warning("%s received (%s): nothing submitted", stop.signal_name, stopped)
            return None
    try:
        info = _cluster_info(client)
        logger.info(
            "Dask scheduler %s with %d worker(s); dashboard: %s",
            info["scheduler_address"],
            info["workers"],
            info["dashboard"],
        )
        gpus = WorkerGpus(client)  # asked at most once, by whichever setting needs it first
        refuse_gpu_settings_without_gpus(config.classifiers, gpus)
        piece_bytes = config.piece_bytes
        if piece_bytes is None:
            piece_bytes = default_piece_bytes(config.device, gpus)
        if piece_bytes:
            logger.info("files over %d bytes are classified in pieces of that size", piece_bytes)
        progress = Progress(
            len(pending), interval=config.progress_interval, total_bytes=sum(f.size for f in pending)
        )
        dispatcher = Dispatcher(client, context, progress=progress, piece_bytes=piece_bytes)
        logger.info(
            "on a stop the files in flight get %g s to finish after the time-limit warning (USR1/USR2), "
            "%g s after SIGTERM/SIGINT",
            dispatcher.warning_grace,
            stop.grace_after_term(config.stop_grace),
        )
        try:
            with caller.hooks.around_classifying(config, context.output_dir):
                dispatcher.run(pending)
        finally:
            progress.close()
    finally:
        if given_client is None:  # after a stop, within what it leaves: the summary and the requeue follow
            close_quietly(
                client, cluster, stop.within(STOP_CLOSE_TIMEOUT) if stop.requested else CLOSE_TIMEOUT
            )
    dispatcher.count_late_markers()
    return info


def _fingerprint_details(config: RunConfig) -> dict[str, Any]:
    # Labels and the checkpoints' hashes only: no weights are loaded in the driver.
    from hpc_classify.classifiers.run_checks import check_classifiers

    classifiers = check_classifiers(config.classifiers)
    row_column = config.row_number_column
    if row_column is not None and row_column in {c for x in classifiers for c in x.output_columns()}:
        raise ConfigError(f"a classifier writes the column {row_column!r} that keep_columns adds to join on")
    return compute_run_fingerprint(
        [classifier.fingerprint() for classifier in classifiers],
        output_format=config.output_format,
        keep_columns=config.keep_columns,
        key_column=config.key_column,
    )


def _cluster_info(client: Any) -> dict[str, Any]:
    address = client.scheduler.address
    return {
        "scheduler_address": address,
        "protocol": address.split("://", 1)[0] if "://" in address else None,
        "workers": len(client.nthreads()),
        "dashboard": client.dashboard_link,
    }


def _log_outcome(summary: dict[str, Any], failures: FailureLog) -> None:
    logger.info(
        "run finished: %d processed, %d skipped (already done), %d failed, %d remaining; "
        "%d documents in, %d out, %.1f docs/s; exit code %d (%s)",
        summary["files_processed"],
        summary["files_skipped"],
        summary["files_failed"],
        summary["files_remaining"],
        summary["documents_in"],
        summary["documents_out"],
        summary["documents_per_second"],
        summary["exit_code"],
        summary["exit_meaning"],
    )
    if failures.relpaths:
        logger.error("failed files (details in %s): %s", failures.path, ", ".join(failures.relpaths))
