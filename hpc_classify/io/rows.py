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
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from hpc_classify.config import BAD_ROW_POLICIES
from hpc_classify.errors import ConfigError, DataLayoutError, InputFileError, MissingInputFileError

# The bad-row policy as the CLI and the Python API spell it (a DocumentDataset read has none: it refuses a bad
# row, as NeMo's readers do), for hints that hold wherever the error is raised.
SKIP_BAD_ROWS = '--on-bad-row skip (in Python: hpc_classify.run(..., on_bad_row="skip"))'
BAD_ROW_HINT = f"fix the row, or quarantine bad rows with {SKIP_BAD_ROWS}"
# A first line opening with "[" is never a row (rows are objects): the file is most likely one JSON array,
# pretty-printed ("[" alone on line 1) or on one line, which read as lines is all bad rows (or a few good ones).
JSON_ARRAY_REASON = "the file opens like one JSON array, not JSON Lines (one object per line)"


def json_array_hint(path: str) -> str:
    return f"convert it to JSON Lines and classify that, e.g. jq -c '.[]' {path} > NEW.jsonl"


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
    """The error for a file that cannot be read as `kind` ("Parquet", "gzip", "zstd", "bz2", "xz", "text")."""
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
        record, reason = parse_line(raw, fields)
        if reason is None:
            records.append(record)
            positions.append(position)
            continue
        hint = BAD_ROW_HINT
        if lineno == 1 and raw.lstrip().startswith(b"["):
            reason, hint = f"{reason}; {JSON_ARRAY_REASON}", json_array_hint(path)
        if on_bad_row == "error":
            raise InputFileError(path, reason, line=lineno, hint=hint)
        bad.append(BadRow(lineno, reason, _raw_text(raw)))
    return records, bad, positions


def parse_line(raw: bytes, fields: tuple[str, ...] = ()) -> tuple[Any, str | None]:
    """Return (record, None) for a good line (a JSON object, with a string in each of `fields`), else (None,
    reason). `raw` is a line without the byte order mark a file may open with (`without_bom`)."""
    try:
        decoded = raw.decode("utf-8")  # strict: a bad byte is a bad row, never silently replaced
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 (byte {exc.start} of the line)"
    try:
        record = json.loads(decoded)
    except json.JSONDecodeError as exc:
        # Some messages end in "at" ("Unterminated string starting at"): no "at at".
        return None, f"invalid JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})"
    except RecursionError:
        return None, TOO_DEEP
    except ValueError:  # Python's cap on int("...") digits: the only other ValueError json.loads raises
        return None, f"integer too long (more than {sys.get_int_max_str_digits()} digits)"
    if not isinstance(record, dict):
        return None, f"not a JSON object (a JSON {_json_type(record)})"
    if (decoded.count("[") + decoded.count("{") > MAX_JSON_DEPTH) and nests_too_deep(record):
        return None, TOO_DEEP
    if _LONE_SURROGATE.search(decoded) and not _encodes_as_utf8(record):
        return None, "invalid Unicode: an escaped lone surrogate (half of a character, as \\ud83d)"
    for name in fields:
        reason = _text_problem(record, name)
        if reason is not None:
            return None, reason
    return record, None


# Deeper rows are bad rows: json.loads fails on them at a depth that depends on the caller's stack (about
# 1000 levels less the frames below it), and the JSONL writer recurses too (two frames a level): a row that
# parsed could still fail its file at the write, on every retry. Real documents nest a few levels.
MAX_JSON_DEPTH = 200
TOO_DEEP = f"nesting too deep (more than {MAX_JSON_DEPTH} levels of arrays and objects)"


def nests_too_deep(value: Any) -> bool:
    """Whether `value` nests arrays and objects more than MAX_JSON_DEPTH levels (itself one), without
    recursion."""
    level = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


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


def repeated_names(names: Iterable[str]) -> list[str]:
    """The names that occur more than once, each once, in first-seen order."""
    counts = Counter(names)
    return [name for name, count in counts.items() if count > 1]


def output_column_names(df: pd.DataFrame, source: str | None) -> list[str]:
    """`df`'s column names as an output writes them (str), each once: a JSON object holds one value of a
    key, a Parquet file one column of a name. `source`, the input file, is named in the error."""
    names = [str(c) for c in df.columns]
    if repeated := repeated_names(names):
        where = f"{source}: " if source else ""
        raise DataLayoutError(
            f"{where}the column name(s) {', '.join(map(repr, repeated))} occur more than once: an output "
            "holds one column of a name, so one of them would be lost",
            hint="rename the columns (df.columns = [...]) or drop the repeats before writing",
        )
    return names


def records_to_frame(records: list[dict], text_field: TextFields) -> pd.DataFrame:
    if not records:
        # An empty file is valid: zero rows, but the text columns exist so downstream code can rely on them.
        return pd.DataFrame({name: pd.Series([], dtype="str") for name in text_fields(text_field)})
    # from_records on dicts: columns are the union of keys in first-seen order, rows in file order.
    frame = pd.DataFrame.from_records(records)
    # pandas makes a column float64 where its ints meet a null or a fraction: 7 would be written back as 7.0
    # and an id above 2**53 changed (see parquet_rows.table_to_frame). Ints and nulls become nullable ints;
    # ints beside fractions (and ints beyond int64) stay the Python values read, which the writers keep.
    for name in frame.columns[frame.dtypes == "float64"]:
        values = [record.get(name) for record in records]
        if not any(type(value) is int for value in values):
            continue  # fractions and nulls only: float64 holds them as read
        try:
            if all(value is None or type(value) is int for value in values):
                frame[name] = pd.array(values, dtype="Int64")
                continue
        except (OverflowError, TypeError):  # beyond int64 (uint64 hashes)
            pass
        frame[name] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def as_pandas_reads_it(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its nullable integer columns as float64, as pandas' own readers (and NeMo's datasets)
    give them: the dataset API keeps their dtypes, so that files of one dataset conform as they do there."""
    nullable = [
        name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.core.arrays.integer.IntegerDtype)
    ]
    return frame.astype({name: "float64" for name in nullable}) if nullable else frame


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
