"""A Parquet table's rows as the classifiers read them: every value kept (nullable integers, a named index as a
column), the text field(s) checked row by row. The JSON Lines counterpart is rows.py."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from hpc_classify.errors import InputFileError
from hpc_classify.io.rows import BAD_ROW_HINT, BadRow, TextFields, repeated_names, text_fields


def check_column_names(path: str, schema: Any) -> None:
    """Refuse a file whose schema repeats a column name, or a field name inside a struct (`s.k`): pandas
    holds one column of a name and a dict one value of a key, so one of them would be lost silently, or
    the read fail later with an error that blames the file's bytes."""
    import pyarrow as pa

    repeated = repeated_names(schema.names)
    fields = [(field.name, field.type) for field in schema]
    for name, kind in fields:  # grows as nested types are met: every level is checked
        children = [kind.field(i) for i in range(kind.num_fields)]
        if pa.types.is_struct(kind):
            repeated += [f"{name}.{child}" for child in repeated_names(c.name for c in children)]
            fields += [(f"{name}.{c.name}", c.type) for c in children]
        else:  # a list's items, a map's entries: named by their column
            fields += [(name, c.type) for c in children]
    if repeated:
        raise InputFileError(
            path,
            f"repeats the column name(s) {', '.join(map(repr, repeated))}: one of each would be lost",
            hint="rename the columns so that each name occurs once (pyarrow: table.rename_columns([...])), "
            "and write the file again",
        )


def table_to_frame(table: Any) -> pd.DataFrame:
    """A pyarrow table as pandas, every value kept. `to_pandas()` alone makes integers beside a null
    float64: 3 would be written back as 3.0 and an id above 2**53 changed. Top-level such columns become
    pandas' nullable integers; nested ones (a list<uint64> minhash signature, token ids, a struct's field)
    hold Python ints and None (`integer_object_nulls`, which reaches every nested child)."""
    import pyarrow as pa

    frame = table.to_pandas(integer_object_nulls=True)
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
    frame = named_index_as_columns(table, table_to_frame(table))
    frame.index = pd.Index(
        [first_row + i for i, reason in enumerate(reasons) if reason is None], dtype="int64"
    )
    for name in fields:
        if name not in frame.columns:
            frame[name] = pd.Series([], dtype="str")  # only reachable with zero rows left
    return frame, bad


# Dask's to_parquet stores an unnamed index under this name: an unnamed index still (Dask's reader drops
# the name), not a column to carry into every output.
DASK_UNNAMED_INDEX = "__null_dask_index__"


def named_index_as_columns(table: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """pandas stores a named index (`set_index("doc_id")`) as a column that `to_pandas()` makes the index
    again, which the row numbering below would replace: it is data, so it stays a column. An unnamed one
    (`__index_level_0__`, a filtered frame's row labels; Dask's `__null_dask_index__`) is not."""
    stored = [c for c in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
    named = [name for name in frame.index.names if name is not None and name != DASK_UNNAMED_INDEX]
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

    if field not in table.column_names:  # zero rows: check_text_column_types refuses a table with rows
        return [f"missing text field {field!r}"] * table.num_rows
    field_type = table.schema.field(field).type
    if not is_string_type(field_type):
        return [f"text field {field!r} has type {field_type}, not string"] * table.num_rows
    problem = f"text field {field!r} is null"
    return [problem if is_null else None for is_null in pc.is_null(table.column(field)).to_pylist()]


def is_string_type(arrow_type) -> bool:
    """string, large_string or string_view (a text column's types, its dictionary's values aside)."""
    import pyarrow as pa

    is_view = getattr(pa.types, "is_string_view", lambda _t: False)  # pyarrow >= 16
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or is_view(arrow_type)


def _is_string_dictionary(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_dictionary(arrow_type) and is_string_type(arrow_type.value_type)


def _row_json(table, index: int) -> str:
    row = table.slice(index, 1).to_pylist()[0]
    return json.dumps(row, ensure_ascii=False, default=str)
