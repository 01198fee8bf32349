"""`<output>/failures.jsonl`: one line per file that kept failing in the latest run (its retries spent).

Rewritten from scratch by each run (the failed files of a previous run are retried), appended and fsynced
one line at a time, so the file is accurate even when the driver is killed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from hpc_classify.errors import HpcClassifyError
from hpc_classify.io.markers import iso_time

logger = logging.getLogger(__name__)

FAILURES_FILE = "failures.jsonl"


def failures_path(output_dir: str) -> str:
    return os.path.join(output_dir, FAILURES_FILE)


class FailureLog:
    def __init__(self, output_dir: str):
        self.path = failures_path(output_dir)
        self.relpaths: list[str] = []
        if os.path.exists(self.path):
            os.remove(self.path)

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
    """Entries of failures.jsonl (a torn last line from a crash is ignored)."""
    entries: list[dict[str, Any]] = []
    try:
        with open(failures_path(output_dir), encoding="utf-8") as f:
            for line in f:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return entries


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


def worker_died(error: BaseException) -> bool:
    return type(error).__name__ == "KilledWorker"
