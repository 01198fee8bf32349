"""Read one document file (JSONL, .jsonl.gz, .jsonl.zst, Parquet) into a pandas frame, checking every row.

`read_documents` is what a classification task uses: each row must be a JSON object whose text field is a
string; rows that are not are either an error naming file:line or collected as `BadRow`s (the driver writes
them to a quarantine file), never dropped silently. `read_frame` reads a whole file without text checks
for `DocumentDataset`, on the pandas or (lazily imported) cudf backend.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hpc_classify.errors import ConfigError, InputFileError, MissingInputFileError
from hpc_classify.io.compression import DECOMPRESSION_ERRORS, compression_of, open_decompressed

logger = logging.getLogger(__name__)

BAD_ROW_POLICIES = ("error", "skip")
BACKENDS = ("pandas", "cudf")
BAD_ROW_HINT = "fix the row, or run with --on-bad-row skip to quarantine bad rows"


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be classified: 1-based line (Parquet: row number), why, and its content."""

    line: int
    reason: str
    raw: str


@dataclass
class ReadResult:
    """Good rows in file order with the file's columns, plus the rows that were set aside. The frame's
    index is each row's 0-based position in the file (bad rows counted, blank lines not): the index
    `pandas.read_json(path, lines=True)` or `read_parquet(path)` gives the same row."""

    frame: pd.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)


def is_parquet(path: str) -> bool:
    return str(path).lower().endswith(".parquet")


def read_documents(
    path: str,
    *,
    text_field: str = "text",
    on_bad_row: str = "error",
    columns: Sequence[str] | None = None,
) -> ReadResult:
    """Read `path` and check each row has a string `text_field`.

    on_bad_row="error" raises InputFileError at the first bad row; "skip" returns bad rows in `bad_rows`.
    `columns` (optional) limits the frame to these columns; the text field is always kept.
    """
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"on_bad_row must be one of {', '.join(BAD_ROW_POLICIES)}, not {on_bad_row!r}")
    _require_file(path)
    if is_parquet(path):
        frame, bad = _read_parquet_checked(path, text_field, on_bad_row, columns)
    else:
        records, bad, positions = _parse_jsonl(path, text_field, on_bad_row)
        frame = records_to_frame(records, text_field)
        frame.index = pd.RangeIndex(0) if not positions else pd.Index(positions)
    if columns is not None:
        frame = _select_columns(frame, columns, text_field)
    if bad:
        logger.warning(
            "%s: %d bad row(s) set aside (first at line %d: %s)", path, len(bad), bad[0].line, bad[0].reason
        )
    return ReadResult(frame=frame, bad_rows=bad)


def read_frame(path: str, backend: str = "pandas", columns: Sequence[str] | None = None) -> Any:
    """Read a whole file as a pandas (or cudf) frame, without text-field checks.

    Invalid JSON, non-object rows, invalid UTF-8 and corrupt files still raise InputFileError.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    _require_file(path)
    if backend == "cudf":
        return _read_frame_cudf(path, columns)
    if is_parquet(path):
        frame = _read_parquet_table(path, columns).to_pandas()
    else:
        records, _, _ = _parse_jsonl(path, None, "error")
        frame = records_to_frame(records, None)
        if columns is not None:
            frame = frame[[c for c in columns if c in frame.columns]]
    return frame


def _require_file(path: str) -> None:
    if not os.path.exists(path):
        raise MissingInputFileError(path, hint="check the input path (was the file moved or deleted?)")
    if os.path.isdir(path):
        raise InputFileError(
            path, "is a directory, not a document file", hint="list the files inside it instead"
        )


def _parse_jsonl(
    path: str, text_field: str | None, on_bad_row: str
) -> tuple[list[dict], list[BadRow], list[int]]:
    """Parse the whole file line by line (see `parse_jsonl_lines`)."""
    try:
        with open_decompressed(path) as stream:
            return parse_jsonl_lines(path, stream, text_field, on_bad_row)
    except DECOMPRESSION_ERRORS as exc:
        raise corrupt_file_error(path, exc) from exc
    except OSError as exc:  # gzip.BadGzipFile is an OSError; so are read errors mid-file
        raise corrupt_file_error(path, exc) from exc


def parse_jsonl_lines(
    path: str,
    lines: Iterable[bytes],
    text_field: str | None,
    on_bad_row: str,
    *,
    first_lineno: int = 1,
    first_position: int = 0,
) -> tuple[list[dict], list[BadRow], list[int]]:
    """Parse raw lines of `path` (the first one is line `first_lineno` of the file, and the file's row
    `first_position` unless blank); text_field=None skips the text checks (objects are still required).
    Also returns each good record's 0-based position among the file's non-blank lines."""
    records: list[dict] = []
    bad: list[BadRow] = []
    positions: list[int] = []
    position = first_position - 1
    for lineno, raw in enumerate(lines, start=first_lineno):
        if not raw.strip():
            continue  # blank lines carry no document: not counted as bad
        position += 1
        record, reason = _parse_line(raw, text_field)
        if reason is None:
            records.append(record)
            positions.append(position)
            continue
        if on_bad_row == "error":
            raise InputFileError(path, reason, line=lineno, hint=BAD_ROW_HINT)
        bad.append(BadRow(lineno, reason, _raw_text(raw)))
    return records, bad, positions


def _parse_line(raw: bytes, text_field: str | None) -> tuple[Any, str | None]:
    """Return (record, None) for a good line, else (None, reason)."""
    try:
        decoded = raw.decode("utf-8")  # strict: a bad byte is a bad row, never silently replaced
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 (byte {exc.start} of the line)"
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError as exc:
        # Some messages end in "at" ("Unterminated string starting at"): no "at at".
        return None, f"invalid JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})"
    if not isinstance(record, dict):
        return None, f"not a JSON object (a JSON {_json_type(record)})"
    if text_field is not None:
        reason = _text_problem(record, text_field)
        if reason is not None:
            return None, reason
    return record, None


def _text_problem(record: dict, text_field: str) -> str | None:
    if text_field not in record:
        return f"missing text field {text_field!r}"
    value = record[text_field]
    if value is None:
        return f"text field {text_field!r} is null"
    if not isinstance(value, str):
        return f"text field {text_field!r} is a JSON {_json_type(value)}, not a string"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _raw_text(raw: bytes) -> str:
    # backslashreplace keeps invalid bytes recoverable in the quarantine file (\xff rather than U+FFFD).
    return raw.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")


def records_to_frame(records: list[dict], text_field: str | None) -> pd.DataFrame:
    if not records:
        # An empty file is valid: zero rows, but the text column exists so downstream code can rely on it.
        return pd.DataFrame({text_field: pd.Series([], dtype="str")}) if text_field else pd.DataFrame()
    # from_records on dicts: columns are the union of keys in first-seen order, rows in file order.
    return pd.DataFrame.from_records(records)


def _select_columns(frame: pd.DataFrame, columns: Sequence[str], text_field: str) -> pd.DataFrame:
    wanted = [c for c in columns if c in frame.columns]
    if text_field not in wanted:
        wanted.append(text_field)
    return frame[wanted]


def _read_parquet_table(path: str, columns: Sequence[str] | None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if columns is not None:
            present = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in present]
        return pq.read_table(path, columns=None if columns is None else list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_file_error(path, exc) from exc


def _read_parquet_checked(
    path: str, text_field: str, on_bad_row: str, columns: Sequence[str] | None
) -> tuple[pd.DataFrame, list[BadRow]]:
    table = _read_parquet_table(path, None if columns is None else [*columns, text_field])
    return check_parquet_table(path, table, text_field, on_bad_row)


def check_parquet_table(
    path: str, table: Any, text_field: str, on_bad_row: str, *, first_row: int = 0
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Check the text field of a pyarrow table read from `path` (its first row is the file's row
    `first_row`, 0-based): the good rows as a frame indexed by file row, and the bad ones."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if text_field not in table.column_names:
        problem = f"missing text field {text_field!r}"
        bad_mask = [True] * table.num_rows
    elif not _is_string_type(table.schema.field(text_field).type):
        problem = f"text field {text_field!r} has type {table.schema.field(text_field).type}, not string"
        bad_mask = [True] * table.num_rows
    else:
        problem = f"text field {text_field!r} is null"
        bad_mask = pc.is_null(table.column(text_field)).to_pylist()
    bad_rows = [i for i, is_bad in enumerate(bad_mask) if is_bad]
    if bad_rows and on_bad_row == "error":
        raise InputFileError(path, problem, line=first_row + bad_rows[0] + 1, hint=BAD_ROW_HINT)
    bad = [BadRow(first_row + i + 1, problem, _row_json(table, i)) for i in bad_rows]
    if bad_rows:
        keep = pa.array([not b for b in bad_mask])
        table = table.filter(keep)
    frame = table.to_pandas()
    frame.index = pd.Index([first_row + i for i, is_bad in enumerate(bad_mask) if not is_bad], dtype="int64")
    if text_field not in frame.columns:
        frame[text_field] = pd.Series([], dtype="str")  # only reachable with zero rows left
    return frame, bad


def _is_string_type(arrow_type) -> bool:
    import pyarrow as pa

    is_view = getattr(pa.types, "is_string_view", lambda _t: False)  # pyarrow >= 16
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or is_view(arrow_type)


def _row_json(table, index: int) -> str:
    row = table.slice(index, 1).to_pylist()[0]
    return json.dumps(row, ensure_ascii=False, default=str)


def corrupt_file_error(path: str, exc: BaseException) -> InputFileError:
    kind = "Parquet" if is_parquet(path) else (compression_of(path) or "text")
    return InputFileError(
        path,
        f"cannot read the file as {kind} ({type(exc).__name__}: {exc})",
        hint="the file is truncated or corrupt: re-copy or regenerate it, or remove it from the inputs",
    )


def _read_frame_cudf(path: str, columns: Sequence[str] | None) -> Any:
    cudf = import_cudf()
    if is_parquet(path):
        return cudf.read_parquet(path, columns=None if columns is None else list(columns))
    kind = compression_of(path)
    compression = {"gzip": "gzip", "zstd": "zstd", None: None}[kind]
    frame = cudf.read_json(path, lines=True, compression=compression)
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    return frame


def import_cudf() -> Any:
    """Import cudf on demand, with a clear error on machines without it (or without a GPU)."""
    try:
        import cudf
    except Exception as exc:  # ImportError, or a CUDA runtime error from a GPU-less machine
        raise ConfigError(
            f"backend 'cudf' is not available here ({type(exc).__name__}: {exc})",
            hint="use backend='pandas' on CPU machines, or install the GPU extra (pip install 'hpc-classify[gpu]') on a GPU node",
        ) from exc
    return cudf
