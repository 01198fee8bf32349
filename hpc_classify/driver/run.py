"""`run_classification(config) -> RunResult`: one resumable run over a sharded corpus.

Steps: take the output directory's lock; check (or store) the run fingerprint; remove temp files a killed
run left; list the inputs and store the plan; skip files with a completion marker; connect to (or start)
the cluster; stream the rest through it (driver/dispatch.py); write `_summary.json`. Exit codes are in
driver/exit_codes.py.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver import exit_codes
from hpc_classify.driver.dispatch import Dispatcher
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.fingerprint import check_or_store_fingerprint, compute_run_fingerprint
from hpc_classify.driver.input_changes import apply_changed_input_policy, find_changed_inputs
from hpc_classify.driver.lock import RunLock
from hpc_classify.driver.plan import (
    PlannedFile,
    list_input_files,
    pending_files,
    remove_stale_temp_files,
    write_plan,
)
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.signals import StopRequest
from hpc_classify.driver.summary import RunStats, build_summary, write_summary
from hpc_classify.errors import ConfigError, InputFileError, OutputDirectoryError
from hpc_classify.io.markers import marker_path, read_marker

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    exit_code: int
    summary: dict[str, Any]
    summary_path: str


def run_classification(
    config: RunConfig, *, client: Any | None = None, connect_timeout: float | None = None
) -> RunResult:
    """Classify every input file of `config` that has no completion marker yet in `config.output`.

    `client`: a `distributed.Client` to use (not closed here); None connects as `config` says.
    Raises OutputDirectoryError (locked, fingerprint mismatch), ConfigError (classifiers, settings),
    InputFileError (inputs), ModelNotAvailableError or ClusterError before any work; per-file errors
    end in failures.jsonl.
    """
    # Everything that can be wrong with the command is checked before anything is written into the
    # output directory: the classifiers and their fingerprint (labels, checkpoint hashes: no weights), the
    # inputs, and the output path itself. A corrected command then starts afresh.
    details = _fingerprint_details(config)
    output_dir = os.path.abspath(config.output)
    files = list_input_files(config.inputs, output_dir, config.output_format)
    _make_output_dir(output_dir)
    with RunLock(output_dir):
        return _run_locked(config, output_dir, details, files, client=client, connect_timeout=connect_timeout)


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


def _run_locked(
    config: RunConfig,
    output_dir: str,
    details: dict[str, Any],
    files: list[PlannedFile],
    *,
    client: Any | None,
    connect_timeout: float | None,
) -> RunResult:
    started = time.time()
    fingerprint = check_or_store_fingerprint(output_dir, details, overwrite=config.overwrite)
    remove_stale_temp_files(output_dir)
    changes = find_changed_inputs(files, output_dir, verify=config.verify_inputs)
    redo = apply_changed_input_policy(changes, config.on_changed_input, output_dir)
    write_plan(output_dir, config.inputs, files)
    pending = pending_files(files, output_dir, redo=redo)
    stats = RunStats(files_planned=len(files), files_skipped=len(files) - len(pending))
    failures = FailureLog(output_dir)
    logger.info(
        "%d input file(s): %d already done, %d to classify into %s",
        len(files),
        stats.files_skipped,
        len(pending),
        output_dir,
    )
    stop = StopRequest()
    cluster_info: dict[str, Any] = {
        "scheduler_address": None,
        "protocol": None,
        "workers": 0,
        "dashboard": None,
    }
    if pending:
        cluster_info = _classify(
            config, output_dir, fingerprint, pending, stats, failures, stop, client, connect_timeout
        )
    if stop.requested:
        exit_code = exit_codes.INTERRUPTED
    elif stats.stop_exit_code is not None:  # no workers left, output unwritable
        exit_code = stats.stop_exit_code
    elif stats.files_failed:
        exit_code = exit_codes.FILES_FAILED
    else:
        exit_code = exit_codes.OK
    summary = build_summary(
        stats,
        started=started,
        finished=time.time(),
        exit_code=exit_code,
        interrupted_by=stop.signal_name,
        fingerprint=fingerprint,
        cluster=cluster_info,
    )
    path = write_summary(output_dir, summary)
    _log_outcome(summary, failures)
    return RunResult(exit_code=exit_code, summary=summary, summary_path=path)


def _classify(
    config: RunConfig,
    output_dir: str,
    fingerprint: str,
    pending: list[PlannedFile],
    stats: RunStats,
    failures: FailureLog,
    stop: StopRequest,
    given_client: Any | None,
    connect_timeout: float | None,
) -> dict[str, Any]:
    from hpc_classify.cluster.connect import DEFAULT_CONNECT_TIMEOUT, close_quietly, connect

    # Signals are caught from here on: a SIGTERM while the cluster starts still ends in a clean summary.
    with stop:
        if given_client is not None:
            client, cluster = given_client, None
        else:
            client, cluster = connect(config, timeout=connect_timeout or DEFAULT_CONNECT_TIMEOUT)
        try:
            info = _cluster_info(client)
            logger.info(
                "Dask scheduler %s with %d worker(s); dashboard: %s",
                info["scheduler_address"],
                info["workers"],
                info["dashboard"],
            )
            progress = Progress(len(pending), interval=config.progress_interval)
            dispatcher = Dispatcher(
                client,
                config,
                output_dir=output_dir,
                fingerprint=fingerprint,
                stats=stats,
                failures=failures,
                progress=progress,
                stop=stop,
                stop_grace=config.stop_grace,
            )
            try:
                dispatcher.run(pending)
            finally:
                progress.close()
        finally:
            if given_client is None:
                close_quietly(client, cluster)
        count_late_markers(dispatcher.unfinished, output_dir, stats)
    return info


def count_late_markers(unfinished: list[PlannedFile], output_dir: str, stats: RunStats) -> None:
    """Count the stopped files that finished anyway: a task abandoned at the stop may still complete (its
    output and marker are atomic) before its worker is retired. The marker on disk is the truth."""
    for planned in unfinished:
        path = marker_path(output_dir, planned.relpath)
        if not os.path.exists(path):
            continue
        try:
            marker = read_marker(path)
        except InputFileError as exc:  # unreadable: the file is redone on resume, as any unfinished one
            logger.warning("%s", exc)
            continue
        stats.add_marker(marker.to_dict())
        logger.info("%s finished while the run was stopping: counted as processed", planned.relpath)


def _fingerprint_details(config: RunConfig) -> dict[str, Any]:
    # Labels and the checkpoints' hashes only: no weights are loaded in the driver.
    from hpc_classify.classifiers.base import check_classifiers

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
