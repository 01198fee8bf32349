"""Whether a Parquet file has its text column, and whether it is text at all: the schema is the same for
every row, so a missing column, or a binary, list, null or number one, is one error for the file (naming
the columns it has, or the cast that makes it text), not every row a bad row (each quarantined under
--on-bad-row skip, every attempt alike)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from hpc_classify.errors import InputFileError, MissingColumnError
from hpc_classify.io.parquet_rows import is_string_type


def is_text_type(arrow_type: Any) -> bool:
    """string, large_string, string_view, or a dictionary of them (pandas' categorical text)."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return is_string_type(arrow_type)


def check_text_column_types(path: str, schema: Any, fields: Sequence[str], num_rows: int) -> None:
    """InputFileError for the first of `fields` that `schema` lacks (MissingColumnError; not for a table of
    `num_rows` 0: an empty file has no values to lack, as the dataset readers') or holds with a type that
    is not text."""
    for name in fields:
        if name not in schema.names:
            if num_rows:
                raise _missing_column(path, name, schema)
            continue
        arrow_type = schema.field(name).type
        if not is_text_type(arrow_type):
            raise InputFileError(
                path,
                f"text field {name!r} has the Arrow type {arrow_type}, not string: no row of this file has "
                "a text to classify",
                hint=_cast_hint(name, arrow_type),
            )


def _missing_column(path: str, name: str, schema: Any) -> MissingColumnError:
    columns = schema.names
    texts = [field.name for field in schema if is_text_type(field.type)]
    close = difflib.get_close_matches(name, texts, n=1) or (texts if len(texts) == 1 else ["<column>"])
    guess = close[0]
    return MissingColumnError(
        path,
        f"has no text column {name!r} (its columns: {', '.join(map(repr, columns)) or 'none'}): no row "
        "of this file has a text to classify",
        hint=f"name the column that holds the documents: --text-field {guess} (text_field={guess!r} in "
        "Python or a YAML config)",
    )


def _cast_hint(name: str, arrow_type: Any) -> str:
    import pyarrow as pa

    elsewhere = "or point --text-field (text_field=) at the column that holds the documents"
    if pa.types.is_null(arrow_type):
        return (
            "every value of the column is null (pandas writes an all-None column so): the file has no "
            f"documents; remove it from the inputs, {elsewhere}"
        )
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return (
            "if the bytes are UTF-8 text, write the column as string (pyarrow: "
            f"table[{name!r}].cast(pa.string()); pandas: df[{name!r}].str.decode('utf-8')), {elsewhere}"
        )
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return (
            f"each row holds a list: join each into one string (pandas: df[{name!r}].str.join('\\n')), "
            f"{elsewhere}"
        )
    return f"write the column as string (pandas: df[{name!r}].astype(str)), {elsewhere}"
