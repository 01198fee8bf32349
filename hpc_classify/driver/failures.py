"""`<output>/_failures.ndjson`: one line per file that kept failing in the latest run (its retries spent).

Rewritten from scratch by each run (the failed files of a previous run are retried), appended and fsynced
one line at a time, so the file is accurate even when the driver is killed. JSON Lines, named with "_" and no
document suffix so that readers of the output directory as a dataset never take it for documents. Older
versions wrote `failures.jsonl`: it is read when the new log is absent, and a run removes it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from hpc_classify.errors import HpcClassifyError
from hpc_classify.io.markers import iso_time
from hpc_classify.io.skipped_names import FAILURES_FILE, RUN_FAILURES_FILE

logger = logging.getLogger(__name__)

LEGACY_FAILURES_FILE = RUN_FAILURES_FILE  # an older version's failure log


def failures_path(output_dir: str) -> str:
    return os.path.join(output_dir, FAILURES_FILE)


def legacy_failures_path(output_dir: str) -> str:
    return os.path.join(output_dir, LEGACY_FAILURES_FILE)


class FailureLog:
    def __init__(self, output_dir: str):
        self.path = failures_path(output_dir)
        self.relpaths: list[str] = []
        for path in (self.path, legacy_failures_path(output_dir)):
            if os.path.exists(path):
                os.remove(path)

    def record(
        self, *, relpath: str, input_path: str, attempts: int, error: BaseException, reason: str = ""
    ) -> dict[str, Any]:
        """Append one entry: the error's real type and message, and `reason` in words."""
        entry = {
            "relpath": relpath,
            "input_path": input_path,
            "attempts": attempts,
            "error_type": type(error).__name__,
            "error": str(error),
            "reason": reason,
            "time": iso_time(time.time(), "seconds"),
        }
        self.relpaths.append(relpath)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # e.g. the disk filled up: the log and the summary still name the file
            logger.error("could not record the failure of %s in %s: %s", relpath, self.path, exc)
        return entry


def read_failures(output_dir: str) -> list[dict[str, Any]]:
    """Entries of the failure log, or of an older version's `failures.jsonl` where the run that wrote it
    was the last (a torn last line from a crash is ignored)."""
    entries: list[dict[str, Any]] = []
    for path in (failures_path(output_dir), legacy_failures_path(output_dir)):
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entries.append(json.loads(line))
                    except ValueError:
                        continue
        except FileNotFoundError:
            continue
        return entries
    return entries


def is_retryable(error: BaseException) -> bool:
    """Project errors (ours, unless marked retryable: bad input, settings) are not retried; infrastructure
    errors (a worker lost, a timeout, I/O) and unknown ones are."""
    if isinstance(error, HpcClassifyError):
        return error.retryable
    return True


def failure_reason(error: BaseException, attempts: int, deaths: int) -> str:
    """Why a file ended in the failure log, in words (its `reason`)."""
    if deaths:
        return (
            f"the worker process running it died (KilledWorker) in {deaths} of {attempts} attempt(s): "
            "a document that crashes the tokenizer or model, or exhausts memory? see the worker's log"
        )
    if not is_retryable(error):
        return "a problem with the file or the settings (not retried)"
    return f"still failing after {attempts} attempt(s)"


def worker_died(error: BaseException) -> bool:
    return type(error).__name__ == "KilledWorker"
