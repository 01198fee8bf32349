"""One input file read, then (once classified) written: `read_input` and `write_classified`, plain functions
(no Dask) that driver/file_group.py runs for a file or a group of small files, and driver/piece_task.py for
the pieces of a large file.

Order matters for resumability: the output (and quarantine) are written atomically first, the completion
marker last. A crash at any point leaves either nothing under a final name, or an output without a
marker, which the next run redoes; a marker therefore always stands for a complete output. A file (or
piece) with no output row has no output file at all, in either format, and its marker records the output
path "" (a zero-row JSONL file or a Parquet file without the input's columns breaks readers of the whole
output directory: Dask's "Metadata mismatch", pyarrow taking that file's schema and dropping the others').
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hpc_classify.cluster.slurm_env import current_node_name
from hpc_classify.driver.run_owner import fence
from hpc_classify.errors import InputFileError
from hpc_classify.io.discovery import InputFile, output_relpath
from hpc_classify.io.formats import PARQUET, format_of
from hpc_classify.io.hashing import file_sha256
from hpc_classify.io.markers import CompletionMarker, iso_time, marker_path, write_marker
from hpc_classify.io.parquet_types import input_types
from hpc_classify.io.readers import BadRow, ReadResult, read_documents
from hpc_classify.io.skipped_names import LEGACY_QUARANTINE_SUFFIX, QUARANTINE_SUFFIX
from hpc_classify.io.writers import write_frame, write_jsonl_records

logger = logging.getLogger(__name__)


def quarantine_relpath(out_relpath: str) -> str:
    """`dir/_<output name>.quarantine`: beside the output, but "_"-prefixed so that input discovery skips it
    when this output directory is the input of a next classification stage, and with no document suffix so
    that `dir/*.jsonl` globs and dataset readers of the directory never take it for documents."""
    directory, name = os.path.split(out_relpath)
    return os.path.join(directory, f"_{name}{QUARANTINE_SUFFIX}")


def remove_earlier_quarantines(path: str, rewritten: bool, fence: Callable[[], None]) -> None:
    """Remove what an earlier attempt of this file quarantined (e.g. before --overwrite), misleading now:
    `path` unless it is `rewritten`, and the quarantine an older version named `_<output>.quarantine.jsonl`.
    `fence` first: the newer run's quarantine is not this task's to remove."""
    legacy = path[: -len(QUARANTINE_SUFFIX)] + LEGACY_QUARANTINE_SUFFIX
    for earlier in (legacy,) if rewritten else (path, legacy):
        if os.path.exists(earlier):
            fence()
            os.remove(earlier)


@dataclass(frozen=True)
class FileSettings:
    """Where and how a task writes each file's output and marker (the run's settings, per task)."""

    output_dir: str
    output_format: str
    on_bad_row: str
    fingerprint: str
    keep_columns: Sequence[str] | None = None
    row_number_column: str | None = None
    worker: str = ""


@dataclass
class InputRead:
    """One input file read: its documents, bad rows, and what its marker records about the input."""

    input_file: InputFile
    started: float
    stat: os.stat_result
    input_sha256: str | None
    result: ReadResult


def read_input(input_file: InputFile, text_field: str | Sequence[str], on_bad_row: str) -> InputRead:
    """Read `input_file` (InputFileError for bad rows under on_bad_row="error"), checking the text of
    every field in `text_field` (the run's classifiers': a row bad in any of them is bad for all)."""
    started = time.time()
    stat = os.stat(input_file.path)
    # Before the read: a file rewritten meanwhile then differs from its marker, and the next resume sees it.
    input_sha256 = file_sha256(input_file.path)
    result = read_documents(input_file.path, text_field=text_field, on_bad_row=on_bad_row)
    return InputRead(input_file, started, stat, input_sha256, result)


@dataclass(frozen=True)
class Destination:
    """Where one classified unit (a file, or a piece of one) is written: output, quarantine, marker.
    `output_named_as`: the name whose suffix says how the output is compressed, where `output_path`'s does
    not (a piece's: its file's output name; None: `output_path`)."""

    output_path: str
    quarantine_path: str
    marker_path: str
    output_named_as: str | None = None


def file_destination(settings: FileSettings, relpath: str) -> Destination:
    """A whole file's: its output under the output directory, its marker under _markers/."""
    out_relpath = output_relpath(relpath, settings.output_format)
    return Destination(
        output_path=os.path.abspath(os.path.join(settings.output_dir, out_relpath)),
        quarantine_path=os.path.join(settings.output_dir, quarantine_relpath(out_relpath)),
        marker_path=marker_path(settings.output_dir, relpath),
    )


def write_classified(
    read: InputRead,
    predicted: pd.DataFrame,
    classifiers: Sequence[Any],
    settings: FileSettings,
    destination: Destination | None = None,
    extra: dict[str, Any] | None = None,
) -> CompletionMarker:
    """Write the output (and quarantine) of one classified file, or piece of one, atomically, then its
    marker; return the marker. `predicted` is the frame with every classifier's output columns;
    `destination` defaults to the whole file's (`file_destination`); `extra` goes to the marker's extra."""
    from hpc_classify.classifiers.combine import keep_mask, output_counts, output_types

    input_file, result = read.input_file, read.result
    counts = output_counts(classifiers, predicted)
    kept = lean_columns(
        predicted[keep_mask(classifiers, predicted)],
        classifiers,
        settings.keep_columns,
        settings.row_number_column,
        input_file,
    )
    destination = destination or file_destination(settings, input_file.relpath)
    output_path = destination.output_path
    types = None
    if settings.output_format == PARQUET.name:  # the input's column types, then the predictions' own
        types = {**input_types([input_file.path]), **output_types(classifiers)}
    # Each rename into a final name first checks that this run still owns the directory (run_owner.py).
    if len(kept):
        write_frame(
            kept,
            output_path,
            settings.output_format,
            source=input_file.path,
            types=types,
            before_rename=owner_fence(settings, output_path),
            named_as=destination.output_named_as,
        )
    else:  # no rows, no file (as NeMo): an empty one breaks readers of the whole directory
        output_path = remove_leftover_output(output_path, owner_fence(settings, output_path))
    quarantine = _write_quarantine(
        destination.quarantine_path, result.bad_rows, owner_fence(settings, destination.quarantine_path)
    )

    finished = time.time()
    marker = CompletionMarker(
        input_path=input_file.path,
        input_size=read.stat.st_size,
        input_mtime=read.stat.st_mtime,
        output_path=output_path,
        rows_in=len(result.frame),
        rows_out=len(kept),
        rows_bad=len(result.bad_rows),
        label_counts=counts,
        seconds=round(finished - read.started, 6),
        node=current_node_name(),
        worker=settings.worker,
        fingerprint=settings.fingerprint,
        quarantine_path=quarantine,
        started_at=iso_time(read.started),
        finished_at=iso_time(finished),
        output_size=os.path.getsize(output_path) if output_path else 0,
        input_sha256=read.input_sha256,
        extra={**_engine_descriptions(classifiers), **(extra or {})},
        bad_rows_by_kind=dict(Counter(bad_row_kind(b.reason) for b in result.bad_rows)),
    )
    write_marker(
        destination.marker_path, marker, before_rename=owner_fence(settings, destination.marker_path)
    )
    logger.debug(
        "%s: %d rows in, %d out, %d bad", input_file.relpath, marker.rows_in, marker.rows_out, marker.rows_bad
    )
    return marker


def _engine_descriptions(classifiers: Sequence[Any]) -> dict[str, Any]:
    """{"engines": {classifier: "bf16, eager, bias attention"}} for the classifiers whose engine ran here."""
    engines = {}
    for classifier in classifiers:
        describe = getattr(classifier, "engine_description", None)
        description = describe() if describe else None
        if description:
            engines[type(classifier).__name__] = description
    return {"engines": engines} if engines else {}


def lean_columns(
    frame: pd.DataFrame,
    classifiers: Sequence[Any],
    keep_columns: Sequence[str] | None,
    row_number_column: str | None,
    input_file: InputFile,
) -> pd.DataFrame:
    """`frame` as written: all columns, or the kept input columns + row number + prediction columns.

    A kept column that `frame` lacks is null in JSONL (a row without a key has no value there; a piece or
    a file whose rows all lack it is no different, wherever the pieces were cut), and an error for
    Parquet, whose schema says which columns every row of the file has (each piece reads that schema)."""
    if keep_columns is None:
        return frame
    predictions = [c for classifier in classifiers for c in classifier.output_columns()]
    missing = [c for c in keep_columns if c not in frame.columns]
    if missing and format_of(input_file.path) is PARQUET:
        raise InputFileError(
            input_file.path,
            f"no column(s) {', '.join(map(repr, missing))} to keep in this Parquet file's schema "
            f"(columns: {', '.join(map(str, frame.columns))})",
            hint="leave the column out of --keep-columns, or give the file that column",
        )
    lean = pd.DataFrame(index=frame.index)
    for column in keep_columns:
        # Missing: object None, which Parquet writes as type null, unified with the type of other pieces.
        lean[column] = frame[column] if column in frame.columns else pd.Series(None, lean.index, object)
    if row_number_column is not None:
        lean.insert(0, row_number_column, frame.index.to_numpy(dtype="int64"))
    for column in predictions:
        lean[column] = frame[column]
    return lean


def bad_row_kind(reason: str) -> str:
    """The kind of a bad row's problem, for grouping: its reason without the details in parentheses
    ("invalid JSON (Expecting value at column 1)" -> "invalid JSON")."""
    return reason.split(" (", 1)[0]


def owner_fence(settings: FileSettings, path: str) -> Callable[[], None]:
    """The check before `path` is renamed into place (or removed): the run of `settings` still owns the
    output directory (run_owner.py), or RunSupersededError."""
    return fence(settings.output_dir, settings.fingerprint, path)


def remove_leftover_output(path: str, before_remove: Callable[[], None]) -> str:
    """For an output of zero rows, which is never written: remove a file left at its name by an earlier
    attempt (a marker naming no output must mean that no file holds its rows); returns "", the output
    name such a marker records."""
    if os.path.lexists(path):
        before_remove()  # the newer run's output is not this task's to remove
        os.remove(path)
    return ""


def _write_quarantine(path: str, bad_rows: list[BadRow], before_rename: Callable[[], None]) -> str | None:
    remove_earlier_quarantines(path, bool(bad_rows), before_rename)
    if not bad_rows:
        return None
    records = ({"line": b.line, "reason": b.reason, "raw": b.raw} for b in bad_rows)
    write_jsonl_records(path, records, before_rename=before_rename)
    return os.path.abspath(path)
