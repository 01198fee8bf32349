"""Several small files in one task: read each, classify their documents together, write each on its own.

The documents of all the group's files go through the engine as one stream (length-sorted across files),
so that small files share full batches. Everything else stays per file, exactly as for a file alone: each file is read and checked on its own (a bad file fails alone, under the same on_bad_row policy
and with the same counts), and each file's output, quarantine and marker are written atomically, marker
last (driver/task.py). One file's failure never stops another file's output from being written. A plain
function, no Dask: the driver's task (dispatch.py) calls it on a worker.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hpc_classify.classifiers import combine
from hpc_classify.driver.task import FileSettings, InputRead, read_input, write_classified
from hpc_classify.errors import HpcClassifyError
from hpc_classify.io.discovery import InputFile
from hpc_classify.io.markers import CompletionMarker

logger = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    """How one file of a group ended: its marker, or the error that stopped it."""

    relpath: str
    marker: CompletionMarker | None = None
    error: BaseException | None = None


def classify_files(
    input_files: Sequence[InputFile], classifiers: Sequence[Any], settings: FileSettings
) -> list[FileOutcome]:
    """Classify `input_files` as one stream of documents; one outcome per file, in the given order.

    Errors are returned per file (not raised), so that the driver retries or records each file on its own;
    an error that stops the whole task (the worker dies) reaches the driver as the task's error."""
    outcomes: dict[str, FileOutcome] = {}
    reads: list[InputRead] = []
    fields = combine.text_fields(classifiers)  # every classifier's: a row bad in any is bad for all
    for input_file in input_files:
        try:
            read = read_input(input_file, fields, settings.on_bad_row)
            for classifier in classifiers:  # the file's own text errors, before it joins the batches
                classifier.texts(read.result.frame, input_file.path)
            reads.append(read)
        except Exception as error:
            outcomes[input_file.relpath] = _failed(input_file, error)
    for read, predicted in zip(reads, _predict(reads, classifiers), strict=True):
        relpath = read.input_file.relpath
        if isinstance(predicted, BaseException):
            outcomes[relpath] = _failed(read.input_file, predicted)
            continue
        try:
            outcomes[relpath] = FileOutcome(
                relpath, marker=write_classified(read, predicted, classifiers, settings)
            )
        except Exception as error:
            outcomes[relpath] = _failed(read.input_file, error)
    return [outcomes[input_file.relpath] for input_file in input_files]


def _predict(reads: list[InputRead], classifiers: Sequence[Any]) -> list[pd.DataFrame | BaseException]:
    """Every read file's frame with the output columns: all files together, or, should that fail (a
    document that breaks the model), each file alone, so that the failure lands on its own file only."""
    if not reads:
        return []
    frames = [read.result.frame for read in reads]
    if len(reads) > 1:
        try:
            return list(combine.predict_frames(classifiers, frames, source=f"<{len(reads)} files>"))
        except Exception as error:
            logger.warning(
                "classifying %d files together failed (%s: %s): classifying each file alone",
                len(reads),
                type(error).__name__,
                error,
            )
    results: list[pd.DataFrame | BaseException] = []
    for read, frame in zip(reads, frames, strict=True):
        try:
            results.append(combine.predict_together(classifiers, frame, source=read.input_file.path))
        except Exception as error:
            results.append(error)
    return results


def _failed(input_file: InputFile, error: Exception) -> FileOutcome:
    # An error returned in the task's result never reaches Dask's own log, so an unexpected one is logged
    # here with its traceback. A project error (bad rows, settings) says all in its message, which the
    # driver reports: here it is only a debug line, or the user would read it twice.
    expected = isinstance(error, HpcClassifyError)
    logger.log(
        logging.DEBUG if expected else logging.WARNING,
        "%s failed: %s: %s",
        input_file.relpath,
        type(error).__name__,
        error,
        exc_info=None if expected else error,
    )
    return FileOutcome(input_file.relpath, error=picklable(error))


def picklable(error: BaseException) -> BaseException:
    """`error` itself when it pickles (ours do, with their attributes: _failures.ndjson shows the real type);
    otherwise a RuntimeError naming it, since one unpicklable error must not lose the group's markers."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
