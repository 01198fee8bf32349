"""Did a file finish although its task failed? A task of several files writes each file's output and
marker as it goes: when its worker dies half-way, the files it finished are done and must not be redone.
Likewise the work left in flight by a stop or a lost scheduler (`count_late_markers`)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from typing import Any

from hpc_classify.driver.pieces import PieceJob, PieceScheduler
from hpc_classify.driver.summary import RunStats
from hpc_classify.errors import InputFileError
from hpc_classify.io.markers import CompletionMarker, marker_path, read_marker

logger = logging.getLogger(__name__)

# Workers' clocks (other nodes) may lag the driver's a little. A marker of an earlier run is never found for
# a file this run classifies: a changed input's old marker is removed before the run submits anything
# (driver/input_changes.forget_old_versions), so the allowance cannot let an old marker pass as this run's.
CLOCK_SKEW_SECONDS = 5.0


def marker_written_since(
    output_dir: str, relpath: str, fingerprint: str, since: float
) -> CompletionMarker | None:
    """`relpath`'s completion marker when this run wrote it: the run's fingerprint, and finished no earlier
    than `since` (the run's start, epoch seconds) less CLOCK_SKEW_SECONDS. None otherwise. Finished, not
    started: a file assembled from pieces is started when its first piece was, perhaps in an earlier run."""
    path = marker_path(output_dir, relpath)
    if not os.path.exists(path):
        return None
    try:
        marker = read_marker(path)
    except InputFileError as exc:  # torn or unreadable: the file is redone, as one without a marker
        logger.warning("%s", exc)
        return None
    written = marker.finished_at or marker.started_at
    if marker.fingerprint != fingerprint or not written:
        return None
    return marker if dt.datetime.fromisoformat(written).timestamp() >= since - CLOCK_SKEW_SECONDS else None


def count_late_markers(
    unfinished: Iterable[Any], pieces: PieceScheduler, stats: RunStats, fingerprint: str, since: float
) -> None:
    """Count into `stats` the stopped work that finished anyway: a task abandoned at a stop may still complete
    (its output and marker are atomic) before its worker is retired, and one whose result a lost scheduler
    took along had completed. The marker on disk is the truth. `unfinished`: files and piece jobs."""
    output_dir = pieces.output_dir
    for item in unfinished:
        if isinstance(item, PieceJob):
            markers = pieces.markers_of_failed(item)
            if item.work is None:
                late = marker_written_since(output_dir, item.planned.relpath, fingerprint, since)
                markers = [late] if late is not None else []
            for marker in markers:
                (stats.add_file if item.work is None else stats.add_piece)(marker)
            continue
        marker = marker_written_since(output_dir, item.relpath, fingerprint, since)
        if marker is not None:
            stats.add_marker(marker)
            logger.info("%s finished while the run was stopping: counted as processed", item.relpath)
