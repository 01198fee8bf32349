"""What every document reader returns, and the row checks shared by all formats.

A `ReadResult` holds the good rows in file order (indexed by their 0-based position in the file) and the
`BadRow`s set aside; `parse_jsonl_lines` and `check_parquet_table` decide which rows are good, so a whole
file, a byte range and a stream of one format all judge rows alike. A `Piece` is a planned part of a file
(see `io/pieces.py`), a `StreamPiece` one found while streaming a compressed file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hpc_classify.config import BAD_ROW_POLICIES
from hpc_classify.errors import ConfigError, InputFileError, MissingInputFileError

BAD_ROW_HINT = "fix the row, or run with --on-bad-row skip to quarantine bad rows"

# The text field(s) a reader checks: None (objects only), one name, or several (classifiers reading other
# fields of one file): a row whose text is bad in any of them is a bad row, set aside for all of them.
TextFields = str | Sequence[str] | None


def text_fields(text_field: TextFields) -> tuple[str, ...]:
    """The names `text_field` stands for, in order, without repeats (None: none)."""
    if text_field is None:
        return ()
    if isinstance(text_field, str):
        return (text_field,)
    return tuple(dict.fromkeys(text_field))


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


@dataclass(frozen=True)
class Piece:
    """Piece `index` of a file: bytes [start, stop) of a plain JSONL file, rows [start, stop) of Parquet."""

    index: int
    start: int
    stop: int

    def to_list(self) -> list[int]:
        return [self.index, self.start, self.stop]


@dataclass
class StreamPiece:
    """One piece of a compressed file read as a stream: its rows, and where it ends in the file."""

    index: int
    result: ReadResult
    first_line: int  # 1-based line number of its first line
    end_line: int  # lines of the file up to the end of this piece
    end_row: int  # non-blank lines of the file up to the end of this piece
    last: bool  # the file ends with this piece


UTF8_BOM = b"\xef\xbb\xbf"


def without_bom(raw: bytes, lineno: int) -> bytes:
    """Line `lineno` (1-based) of a JSONL file as its document: a UTF-8 byte order mark opening the file (a
    file saved "UTF-8 with BOM") is not part of it. Only line 1: elsewhere the bytes are the row's own."""
    return raw[len(UTF8_BOM) :] if lineno == 1 and raw.startswith(UTF8_BOM) else raw


def is_blank_line(raw: bytes, lineno: int) -> bool:
    """Whether line `lineno` of a JSONL file holds no row: whitespace only, once a byte order mark opening the
    file is set aside. The one test every count of rows makes (whole reads, byte-range pieces, streamed
    pieces), so that a row's position in the file is the same however the file is read."""
    return not without_bom(raw, lineno).strip()


def check_bad_row_policy(on_bad_row: str) -> None:
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"on_bad_row must be one of {', '.join(BAD_ROW_POLICIES)}, not {on_bad_row!r}")


def require_file(path: str) -> None:
    if not os.path.exists(path):
        raise MissingInputFileError(path, hint="check the input path (was the file moved or deleted?)")
    if os.path.isdir(path):
        raise InputFileError(
            path, "is a directory, not a document file", hint="list the files inside it instead"
        )


def corrupt_file_error(path: str, kind: str, exc: BaseException) -> InputFileError:
    """The error for a file that cannot be read as `kind` ("Parquet", "gzip", "zstd", "text")."""
    return InputFileError(
        path,
        f"cannot read the file as {kind} ({type(exc).__name__}: {exc})",
        hint="the file is truncated or corrupt: re-copy or regenerate it, or remove it from the inputs",
    )


def parse_jsonl_lines(
    path: str,
    lines: Iterable[bytes],
    text_field: TextFields,
    on_bad_row: str,
    *,
    first_lineno: int = 1,
    first_position: int = 0,
) -> tuple[list[dict], list[BadRow], list[int]]:
    """Parse raw lines of `path` (the first one is line `first_lineno` of the file, and the file's row
    `first_position` unless blank); text_field=None skips the text checks (objects are still required),
    several fields check each. Also returns each good record's 0-based position among the file's non-blank
    lines."""
    fields = text_fields(text_field)
    records: list[dict] = []
    bad: list[BadRow] = []
    positions: list[int] = []
    position = first_position - 1
    for lineno, raw in enumerate(lines, start=first_lineno):
        if is_blank_line(raw, lineno):
            continue  # blank lines carry no document: not counted as bad
        position += 1
        raw = without_bom(raw, lineno)
        record, reason = _parse_line(raw, fields)
        if reason is None:
            records.append(record)
            positions.append(position)
            continue
        if on_bad_row == "error":
            raise InputFileError(path, reason, line=lineno, hint=BAD_ROW_HINT)
        bad.append(BadRow(lineno, reason, _raw_text(raw)))
    return records, bad, positions


def _parse_line(raw: bytes, fields: tuple[str, ...]) -> tuple[Any, str | None]:
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
    if _LONE_SURROGATE.search(decoded) and not _encodes_as_utf8(record):
        return None, "invalid Unicode: an escaped lone surrogate (half of a character, as \\ud83d)"
    for name in fields:
        reason = _text_problem(record, name)
        if reason is not None:
            return None, reason
    return record, None


# JSON may escape half of a UTF-16 pair (`"\ud83d"`, an emoji cut in two); json.loads keeps it as a lone
# surrogate, which no later step can encode (pandas, the writers): the file failed whole, every attempt. Only
# lines with such an escape are checked further (valid pairs are joined by json.loads).
_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodes_as_utf8(record: dict) -> bool:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def records_to_frame(records: list[dict], text_field: TextFields) -> pd.DataFrame:
    if not records:
        # An empty file is valid: zero rows, but the text columns exist so downstream code can rely on them.
        return pd.DataFrame({name: pd.Series([], dtype="str") for name in text_fields(text_field)})
    # from_records on dicts: columns are the union of keys in first-seen order, rows in file order.
    frame = pd.DataFrame.from_records(records)
    for name in frame.columns[frame.dtypes == "float64"]:
        values = [record.get(name) for record in records]
        if all(value is None or (type(value) is int) for value in values):  # see table_to_frame
            try:
                frame[name] = pd.array(values, dtype="Int64")
            except (OverflowError, TypeError):  # beyond int64 (uint64 hashes): Python ints, as read
                frame[name] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def as_pandas_reads_it(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its nullable integer columns as float64, as pandas' own readers (and NeMo's datasets)
    give them: the dataset API keeps their dtypes, so that files of one dataset conform as they do there."""
    nullable = [
        name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.core.arrays.integer.IntegerDtype)
    ]
    return frame.astype({name: "float64" for name in nullable}) if nullable else frame


def table_to_frame(table: Any) -> pd.DataFrame:
    """A pyarrow table as pandas, every value kept. `to_pandas()` alone makes an integer column with a null
    float64: 3 would be written back as 3.0 and an id above 2**53 changed. Such columns become pandas'
    nullable integers."""
    import pyarrow as pa

    frame = table.to_pandas()
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if pa.types.is_integer(column.type) and column.null_count:
            nullable = pd.api.types.pandas_dtype(
                f"{'U' if pa.types.is_unsigned_integer(column.type) else ''}Int{column.type.bit_width}"
            )
            frame[name] = column.to_pandas(types_mapper={column.type: nullable}.get).array
    return frame


def check_parquet_table(
    path: str, table: Any, text_field: TextFields, on_bad_row: str, *, first_row: int = 0
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Check the text field(s) of a pyarrow table read from `path` (its first row is the file's row
    `first_row`, 0-based): the good rows as a frame indexed by file row, and the bad ones."""
    import pyarrow as pa

    fields = text_fields(text_field)
    reasons: list[str | None] = [None] * table.num_rows  # each row's first problem
    for name in fields:
        table = _text_as_plain_strings(table, name)
        for i, problem in enumerate(_parquet_problems(table, name)):
            if problem is not None and reasons[i] is None:
                reasons[i] = problem
    bad_rows = [i for i, reason in enumerate(reasons) if reason is not None]
    if bad_rows and on_bad_row == "error":
        raise InputFileError(path, reasons[bad_rows[0]], line=first_row + bad_rows[0] + 1, hint=BAD_ROW_HINT)
    bad = [BadRow(first_row + i + 1, reasons[i], _row_json(table, i)) for i in bad_rows]
    if bad_rows:
        table = table.filter(pa.array([reason is None for reason in reasons]))
    frame = _named_index_as_columns(table, table_to_frame(table))
    frame.index = pd.Index(
        [first_row + i for i, reason in enumerate(reasons) if reason is None], dtype="int64"
    )
    for name in fields:
        if name not in frame.columns:
            frame[name] = pd.Series([], dtype="str")  # only reachable with zero rows left
    return frame, bad


def _named_index_as_columns(table: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """pandas stores a named index (`set_index("doc_id")`) as a column that `to_pandas()` makes the index
    again, which the row numbering below would replace: it is data, so it stays a column. An unnamed one
    (`__index_level_0__`, a filtered frame's row labels) is not."""
    stored = [c for c in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
    named = [name for name in frame.index.names if name is not None]
    return frame.reset_index(level=named) if stored and named else frame


def _text_as_plain_strings(table: Any, field: str) -> Any:
    """pandas writes a categorical text column dictionary-encoded: the same strings, made plain."""
    if field in table.column_names and _is_string_dictionary(table.schema.field(field).type):
        index = table.column_names.index(field)
        table = table.set_column(
            index, field, table.column(index).cast(table.schema.field(index).type.value_type)
        )
    return table


def _parquet_problems(table: Any, field: str) -> list[str | None]:
    """Each row's problem with its text `field` (None: a string)."""
    import pyarrow.compute as pc

    if field not in table.column_names:
        return [f"missing text field {field!r}"] * table.num_rows
    field_type = table.schema.field(field).type
    if not _is_string_type(field_type):
        return [f"text field {field!r} has type {field_type}, not string"] * table.num_rows
    problem = f"text field {field!r} is null"
    return [problem if is_null else None for is_null in pc.is_null(table.column(field)).to_pylist()]


def _is_string_type(arrow_type) -> bool:
    import pyarrow as pa

    is_view = getattr(pa.types, "is_string_view", lambda _t: False)  # pyarrow >= 16
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or is_view(arrow_type)


def _is_string_dictionary(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_dictionary(arrow_type) and _is_string_type(arrow_type.value_type)


def _row_json(table, index: int) -> str:
    row = table.slice(index, 1).to_pylist()[0]
    return json.dumps(row, ensure_ascii=False, default=str)


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
