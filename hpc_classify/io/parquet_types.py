"""The Arrow types a Parquet output's columns are written with; pyarrow is imported when used.

pandas does not carry Arrow types: a `decimal128(10, 2)` column reads as Python Decimals (which pyarrow
writes as the narrowest decimal holding a piece's values), a dictionary column as a categorical (written
with int8 indices), `string` as pandas 3's `str` (written `large_string`), int32 with nulls as Int32 or
float64. So the writer is given the types the columns had (`input_types`: the Parquet input's schema;
the classifiers' declared output types) and keeps each one while the column still holds that kind of
values (`fits`: its pandas dtype is one that reading the type gives, and its values convert): every piece
of a file then has the same schema. A column given another dtype (a dataset's `map_partitions`) is
written as pyarrow infers it, a pandas string column without a type as `string` (as nested strings,
pandas 2 and NeMo Curator write it), not `large_string`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from hpc_classify.errors import DataLayoutError
from hpc_classify.io.rows import output_column_names

logger = logging.getLogger(__name__)

# The remedy for a column Parquet cannot hold (a piece's, or the assembled file's).
UNWRITABLE_HINT = (
    "give the column one Arrow type, drop it (--keep-columns / columns=[...] without it), or write "
    "JSONL (--output-format jsonl / to_json)"
)

# pyarrow's Parquet reader refuses a schema deeper than this ("Parquet schema too deeply nested ... limit is
# 100"), counting the root and every schema node on the way to a leaf (`schema_depth`); its writer writes
# such a file without complaint. 49 nested lists are readable, 50 are not; 98 nested structs, 99 are not.
PARQUET_MAX_SCHEMA_DEPTH = 100

# As formats.format_of tells a Parquet file (formats imports this module, through parquet_format).
PARQUET_SUFFIX = ".parquet"


def input_types(sources: Iterable[str | None]) -> dict[str, Any]:
    """Column -> Arrow type in the Parquet files among `sources` (the first file holding a column gives
    its type); other files, and Parquet files whose schema cannot be read, give none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types: dict[str, Any] = {}
    for source in dict.fromkeys(sources):
        if source is None or not source.lower().endswith(PARQUET_SUFFIX):
            continue
        try:
            schema = pq.read_schema(source)
        except (pa.ArrowException, OSError):
            continue  # no type known, as before; reading the file reports what is wrong with it
        for field in schema:
            types.setdefault(field.name, field.type)
    return types


def map_columns(source: str | None) -> dict[str, Any]:
    """The Map columns of the Parquet file `source` (name -> Arrow type); {} for any other input. pandas
    holds a map as a list of (key, value) pairs, from which neither pyarrow nor JSON can tell it was one."""
    import pyarrow as pa

    return {name: kind for name, kind in input_types([source]).items() if pa.types.is_map(kind)}


def arrow_type_of(dtype: Any) -> Any:
    """The Arrow type a column of pandas `dtype` (as a classifier's `output_meta` gives it) is written
    with: "str" -> string, numbers and bools as such; None (inferred from the values) for object."""
    import pyarrow as pa

    dtype = pd.api.types.pandas_dtype(dtype)
    if pd.api.types.is_object_dtype(dtype):
        return None
    if pd.api.types.is_string_dtype(dtype):
        return pa.string()
    try:
        return pa.from_numpy_dtype(dtype)
    except (pa.ArrowNotImplementedError, TypeError):  # an extension dtype: Int64, category, ...
        return pa.Schema.from_pandas(pd.DataFrame({"c": pd.Series([], dtype=dtype)})).field("c").type


def frame_to_table(df: pd.DataFrame, types: Mapping[str, Any], source: str) -> Any:
    """`df` (index dropped) as a pyarrow table: each column with its type in `types` where it `fits`,
    else inferred (a pandas string column as `string`). `source` names the file in errors."""
    import pyarrow as pa

    names = output_column_names(df, source)
    if list(df.columns) != names:  # pyarrow finds a schema's columns by name: 0 is stored as "0" anyway
        df = df.set_axis(names, axis=1)
    chosen = {}
    for i, name in enumerate(names):
        dtype = df.iloc[:, i].dtype
        if types.get(name) is not None and fits(dtype, types[name]):
            chosen[i] = types[name]
        elif _is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
            chosen[i] = pa.string()
    try:
        return _table(df, names, chosen)
    except _conversion_errors() as exc:
        # Values that no longer fit their column's type (changed by the user) keep their own type.
        kept = {i: t for i, t in chosen.items() if _converts(df.iloc[:, i], t)}
        if kept == chosen:
            raise _unconvertible(df, source, chosen, exc) from exc
        logger.debug(
            "%s: %s written with inferred types", source, [names[i] for i in chosen if i not in kept]
        )
    try:
        return _table(df, names, kept)
    except _conversion_errors() as exc:
        raise _unconvertible(df, source, kept, exc) from exc


def check_readable_depth(schema: Any, source: str) -> None:
    """DataLayoutError, naming `source` and the column, for a schema pyarrow would write but not read back
    (its depth above PARQUET_MAX_SCHEMA_DEPTH): rows nested a few dozen levels (JSONL inputs may nest 200)."""
    for field in schema:
        depth = 1 + schema_depth(field.type)  # with the root
        if depth > PARQUET_MAX_SCHEMA_DEPTH:
            raise DataLayoutError(
                f"{source}: column {field.name!r} nests too deep for Parquet: its type takes {depth} schema "
                f"levels, and pyarrow cannot read a file deeper than {PARQUET_MAX_SCHEMA_DEPTH} (a list takes "
                "2 levels, a struct 1: at most 49 nested lists); the file would be written but unreadable",
                hint="write JSONL (--output-format jsonl / to_json), which keeps such values, or drop the "
                "column (--keep-columns / columns=[...] without it)",
            )


def schema_depth(arrow_type: Any) -> int:
    """The Parquet schema nodes a column of `arrow_type` takes, its own to its deepest leaf: a list 2 (its
    group and the repeated one), a map 2, a struct 1, a leaf 1 (a dictionary is an encoding: its values')."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return schema_depth(arrow_type.value_type)
    if isinstance(arrow_type, pa.ExtensionType):
        return schema_depth(arrow_type.storage_type)
    if pa.types.is_struct(arrow_type):
        return 1 + max(
            (schema_depth(arrow_type.field(i).type) for i in range(arrow_type.num_fields)), default=0
        )
    if pa.types.is_map(arrow_type):
        return 2 + max(schema_depth(arrow_type.key_type), schema_depth(arrow_type.item_type))
    if hasattr(arrow_type, "value_type"):  # list, large_list, fixed_size_list, list views
        return 2 + schema_depth(arrow_type.value_type)
    return 1


def fits(dtype: Any, arrow_type: Any) -> bool:
    """A pandas column of `dtype` may hold values of `arrow_type`: it is the dtype reading that type gives
    (integers also nullable or float64, as read with nulls; timestamps in any unit of the same time zone;
    strings in any string dtype), or object, whose values decide."""
    import pyarrow as pa

    if pd.api.types.is_object_dtype(dtype):
        return True
    if pa.types.is_dictionary(arrow_type):
        if isinstance(dtype, pd.CategoricalDtype):
            return fits(dtype.categories.dtype, arrow_type.value_type)
        return _is_string(arrow_type.value_type) and _is_string_dtype(dtype)
    if _is_string(arrow_type):
        return _is_string_dtype(dtype)
    if pa.types.is_timestamp(arrow_type):
        zone = getattr(dtype, "tz", None)
        return pd.api.types.is_datetime64_any_dtype(dtype) and (
            str(zone) == arrow_type.tz if zone is not None else arrow_type.tz is None
        )
    read = _read_dtype(arrow_type)
    if pa.types.is_integer(arrow_type):
        nullable = f"{'U' if pa.types.is_unsigned_integer(arrow_type) else ''}Int{arrow_type.bit_width}"
        return dtype in (read, pd.api.types.pandas_dtype(nullable), pd.api.types.pandas_dtype("float64"))
    return read is not None and dtype == read


def _conversion_errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    # OverflowError: a Python int beyond int64 and uint64 (pyarrow raises it, not an ArrowInvalid).
    return (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError)


def _table(df: pd.DataFrame, names: list[str], chosen: Mapping[int, Any]) -> Any:
    import pyarrow as pa

    rest = [i for i in range(len(names)) if i not in chosen]
    inferred = pa.Schema.from_pandas(df.iloc[:, rest], preserve_index=False) if rest else pa.schema([])
    inferred_types = dict(zip(rest, inferred.types, strict=True))
    fields = [pa.field(name, chosen[i] if i in chosen else inferred_types[i]) for i, name in enumerate(names)]
    return pa.Table.from_pandas(df, schema=pa.schema(fields), preserve_index=False)  # + pandas metadata


def _converts(series: pd.Series, arrow_type: Any) -> bool:
    import pyarrow as pa

    try:
        pa.array(series, type=arrow_type, from_pandas=True)
    except _conversion_errors():
        return False
    return True


@functools.lru_cache(maxsize=256)
def _read_dtype(arrow_type: Any) -> Any:
    """The pandas dtype a column of `arrow_type` reads as (None where pandas cannot read it)."""
    import pyarrow as pa

    try:
        return pa.array([], type=arrow_type).to_pandas().dtype
    except (pa.ArrowException, TypeError, ValueError):
        return None


def _is_string_dtype(dtype: Any) -> bool:
    return pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)


def _is_string(arrow_type: Any) -> bool:
    import pyarrow as pa

    is_view = getattr(pa.types, "is_string_view", lambda _t: False)  # pyarrow >= 16
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or is_view(arrow_type)


def _unconvertible(
    df: pd.DataFrame, source: str, chosen: Mapping[int, Any], exc: BaseException
) -> DataLayoutError:
    """The error for a frame pyarrow cannot convert, naming the first column it fails on. A property of
    the data: a DataLayoutError, so the driver does not retry it."""
    import pyarrow as pa

    what = "the rows"
    for i, name in enumerate(map(str, df.columns)):
        try:
            pa.array(df.iloc[:, i], type=chosen.get(i), from_pandas=True)
        except _conversion_errors() as column_exc:
            what, exc = f"column {name!r}", column_exc
            break
    return DataLayoutError(f"{source}: {what} cannot be written as Parquet ({exc})", hint=UNWRITABLE_HINT)
