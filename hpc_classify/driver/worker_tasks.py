"""The functions the driver submits as Dask tasks: they run on a worker, find its name, and call the plain
per-file and per-piece functions. `config` carries the classifier objects (settings only); each worker
keeps their models loaded between tasks."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver.file_group import FileOutcome, classify_files, picklable
from hpc_classify.driver.solo_gate import GATE
from hpc_classify.driver.task import FileSettings, file_destination
from hpc_classify.io.discovery import InputFile
from hpc_classify.io.markers import CompletionMarker, read_marker

logger = logging.getLogger(__name__)

PROGRESS_TOPIC = "hpc-classify-progress"  # the workers' batch events, which the driver's Progress hears
PROGRESS_EVENT_SECONDS = 2.0  # at most one event per task this often: the scheduler relays each one


@dataclass
class PieceOutcome:
    """How a piece job ended: the markers it wrote (pieces, or the assembled file's), and the error that
    stopped it, if any (a stream keeps the pieces it finished before the error)."""

    markers: list[CompletionMarker] = field(default_factory=list)
    error: BaseException | None = None


def file_settings(output_dir: str, config: RunConfig, fingerprint: str) -> FileSettings:
    from distributed import get_worker

    try:
        worker = str(get_worker().name)
    except ValueError:  # called outside a worker (e.g. a synchronous scheduler)
        worker = ""
    return FileSettings(
        output_dir=output_dir,
        output_format=config.output_format,
        on_bad_row=config.on_bad_row,
        fingerprint=fingerprint,
        keep_columns=config.keep_columns,
        row_number_column=config.row_number_column,
        worker=worker,
    )


def run_task_on_worker(
    input_files: list[InputFile],
    output_dir: str,
    config: RunConfig,
    fingerprint: str,
    unit: str = "",
    size: int = 0,
    solo: bool = False,
) -> list[FileOutcome]:
    """classify_files: one file, or a group of small files classified together. One outcome per file,
    in order; per-file errors come back as themselves (_failures.ndjson shows the real type). `unit` (the
    task's key) and `size` (its input bytes) label its progress events; `solo`: nothing else runs in the
    worker process meanwhile (driver/solo_gate.py)."""
    settings = file_settings(output_dir, config, fingerprint)
    with GATE.entered(solo=solo), reporting_to_driver(unit, size):
        return classify_files(input_files, config.classifiers, settings)


def run_piece_job_on_worker(
    job: Any, output_dir: str, config: RunConfig, fingerprint: str, unit: str = "", solo: bool = False
) -> PieceOutcome:
    """A piece job (driver/pieces.PieceJob): classify its piece(s), or assemble its file."""
    settings = file_settings(output_dir, config, fingerprint)
    outcome = PieceOutcome()
    streamed = job.work is not None and job.work.piece is None  # its pieces' bytes are not known ahead
    with GATE.entered(solo=solo), reporting_to_driver(unit, 0 if streamed else job.size):
        _run_piece_job(job, config, settings, outcome)
    return outcome


def _run_piece_job(job: Any, config: RunConfig, settings: FileSettings, outcome: PieceOutcome) -> None:
    from hpc_classify.driver.piece_task import classify_pieces

    try:
        if job.work is None:
            outcome.markers.append(_assembled(job.planned, settings))
        else:
            outcome.markers.extend(classify_pieces(job.work, config.classifiers, settings))
    except Exception as error:
        logger.warning(
            "%s (%s) failed: %s: %s", job.planned.relpath, job.describe(), type(error).__name__, error
        )
        outcome.error = picklable(error)


@contextlib.contextmanager
def reporting_to_driver(unit: str, unit_bytes: int) -> Iterator[None]:
    """While classifying, send the driver the documents that went through the model (and their share of
    the unit's input bytes), at most every PROGRESS_EVENT_SECONDS; outside a worker, nothing. The first
    event says the task began, and in which worker process: a death blames only the tasks that had begun
    in it, and alone only a task that ran alone."""
    from distributed import get_worker

    from hpc_classify.engine.batch_progress import reporting_batches

    try:
        worker = get_worker()
    except ValueError:
        yield
        return
    announce_start(worker, unit)
    pending = {"documents": 0.0, "bytes": 0.0}
    last_sent = time.monotonic()

    def on_batch(documents: float, of_documents: int) -> None:
        nonlocal last_sent
        pending["documents"] += documents
        if unit_bytes and of_documents:
            pending["bytes"] += unit_bytes * documents / of_documents
        if time.monotonic() - last_sent >= PROGRESS_EVENT_SECONDS:
            worker.log_event(PROGRESS_TOPIC, {"unit": unit, **pending})
            pending.update(documents=0.0, bytes=0.0)
            last_sent = time.monotonic()

    with reporting_batches(on_batch):
        yield


def announce_start(worker: Any, unit: str) -> None:
    """Tell the driver that `unit` began in `worker`, and wait until the scheduler has it: a batched event
    could die unsent with a worker that a document kills a few milliseconds later."""
    from distributed.utils import sync

    message = {"unit": unit, "started": True, "worker": worker.address}
    try:
        sync(worker.loop, worker.scheduler.log_event, topic=PROGRESS_TOPIC, msg=message)
    except Exception as exc:  # the scheduler is going away; the task's own outcome will say what happened
        logger.debug("could not announce the start of %s: %s", unit, exc)


def _assembled(planned: Any, settings: FileSettings) -> CompletionMarker:
    """The file's marker once it is assembled from its pieces. An assembly runs again when its worker died
    after it had finished (Dask reruns the task, or the driver retries it): its pieces are gone by then, and
    the marker it wrote, with this run's fingerprint, is the result."""
    from hpc_classify.driver.assembly import assemble_file
    from hpc_classify.driver.piece_files import read_layout, remove_pieces

    layout = read_layout(settings.output_dir, planned.relpath)
    if layout is not None:
        return assemble_file(planned.input_file, layout, settings)
    path = file_destination(settings, planned.relpath).marker_path
    if os.path.exists(path) and (marker := read_marker(path)).fingerprint == settings.fingerprint:
        logger.info("%s: already assembled (its task ran again)", planned.relpath)
        remove_pieces(settings.output_dir, planned.relpath)  # what a removal cut short left
        return marker
    raise FileNotFoundError(f"no piece layout for {planned.relpath} in {settings.output_dir}")
