"""Rows as JSON Lines: frames and dicts encoded to UTF-8 lines, compressed as the file name says.

NaN/NA become null, numpy scalars and arrays Python values, timestamps ISO strings: what a JSONL reader
reads back as the same values (a float32 with the fewest digits that give the same float32 back). Infinities become null too, as pandas' `to_json` writes them: JSON has no
infinity (Python's `json` reads a non-standard `Infinity` in an input, which other readers reject).
Decimals become strings of their exact digits, and a Parquet input's maps JSON objects (see below).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from hpc_classify.errors import DataLayoutError
from hpc_classify.io.compression import open_compressed_writer
from hpc_classify.io.parquet_types import map_columns
from hpc_classify.io.rows import output_column_names

_LINES_PER_CHUNK = 2048  # JSONL lines encoded per write call: few syscalls, bounded extra memory


def write_jsonl_rows(
    rows: Iterable[Mapping[str, Any]], fileobj: BinaryIO, path: str, source: str | None = None
) -> None:
    """`rows` as JSON lines of `path`; `source`, the input file they were read from, is named in errors."""
    encoder = json.JSONEncoder(ensure_ascii=False, default=json_default, allow_nan=False)
    with open_compressed_writer(fileobj, path) as out:
        chunk: list[str] = []
        for row in rows:
            try:
                chunk.append(encoder.encode(row))
            except RecursionError:  # json's encoder recurses: a value nested about as deep as the limit
                raise _too_deep(row, source or path) from None
            if len(chunk) >= _LINES_PER_CHUNK:
                out.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk.clear()
        if chunk:
            out.write(("\n".join(chunk) + "\n").encode("utf-8"))


def frame_rows(df: pd.DataFrame, source: str | None = None) -> Iterable[dict[str, Any]]:
    """Rows of `df` as JSON-ready dicts: NaN/NA/infinity -> None, numpy scalars and arrays -> Python values.
    `source`: the input file the rows come from, named in errors; a Parquet one's maps become objects."""
    names = output_column_names(df, source)
    maps = map_columns(source)
    where = f"{source}: " if source else ""
    columns = []
    for i, name in enumerate(names):
        try:
            values = _column_values(df.iloc[:, i])
            columns.append([_map_object(v) for v in values] if name in maps else values)
        except _BytesValue:
            raise DataLayoutError(
                f"{where}column {name!r} holds bytes (e.g. a Parquet binary column): JSON has no bytes, and "
                "decoding them as text could change them",
                hint=f"write Parquet, which keeps bytes (--output-format parquet / to_parquet); or drop the "
                f"column (columns=[...] / --keep-columns without it), or decode it yourself "
                f"(df[{name!r}].str.decode('utf-8')) before writing JSONL",
            ) from None
        except _UnwritableValue as problem:
            raise DataLayoutError(
                f"{where}column {name!r} holds {problem}, which has no JSON form",
                hint="write Parquet (--output-format parquet / to_parquet); or drop the column "
                "(columns=[...] / --keep-columns without it), or convert it before writing JSONL",
            ) from None
    for values in zip(*columns, strict=True):
        yield dict(zip(names, values, strict=True))


def _too_deep(row: Mapping[str, Any], where: str) -> DataLayoutError:
    """The error for a row json's encoder cannot nest deep enough for, naming its most nested column."""
    depths = {name: _depth(value) for name, value in row.items()}
    name = max(depths, key=depths.__getitem__)
    return DataLayoutError(
        f"{where}: column {name!r} holds a value nested {depths[name]} levels deep, deeper than JSON can be "
        f"written here (Python's recursion limit is {sys.getrecursionlimit()})",
        hint="flatten the column, or drop it (columns=[...] / --keep-columns without it)",
    )


def _depth(value: Any) -> int:
    """How many lists and dicts deep a JSON-ready value nests (by a loop: it may be deeper than recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, list | dict):
            deepest = max(deepest, depth + 1)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _map_object(pairs: list | None) -> dict | None:
    """A map's (key, value) pairs as the JSON object a reader expects ({"k": 1}, not [["k", 1]]). A map
    may repeat a key (Arrow allows it), which an object cannot hold: that is an error, not a lost value."""
    if pairs is None:
        return None
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise _UnwritableValue(f"a map with the key {key!r} twice")
        found[key] = value
    return found


def _column_values(series: pd.Series) -> list[Any]:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return series.tolist()  # numpy ints/bools hold no missing values; tolist gives Python scalars
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        if dtype.itemsize < 8:
            return _short_floats(series.to_numpy())
        return [v if math.isfinite(v) else None for v in series.tolist()]
    leaf = _leaf
    return [v if (v := leaf(x)) is not _NESTED else _nested_to_json(x) for x in series.tolist()]


def _nested_to_json(value: Any) -> list | dict:
    """A list, tuple, dict or array as JSON-ready Python values, by a loop rather than recursion: a row
    nested ~1000 deep, which `json.loads` reads, would exhaust Python's stack (a RecursionError). Each
    container is made empty, put in its parent and filled later, in place."""
    leaf = _leaf
    root: list | dict = {} if isinstance(value, dict) else []
    stack = [(value, root)]  # (a value, the container its items go to)
    while stack:
        source, out = stack.pop()
        if isinstance(source, dict):
            for key, item in source.items():
                converted = leaf(item)
                if converted is _NESTED:
                    converted = {} if isinstance(item, dict) else []
                    stack.append((item, converted))
                out[str(key)] = converted
            continue
        items = _items(source)
        converted = [leaf(item) for item in items]
        if _NESTED in converted:
            for i, item in enumerate(items):
                if converted[i] is _NESTED:
                    converted[i] = {} if isinstance(item, dict) else []
                    stack.append((item, converted[i]))
        out.extend(converted)
    return root


_NESTED = object()  # _leaf's answer for a container, which _nested_to_json fills


def _leaf(value: Any) -> Any:
    """`value` as JSON, or _NESTED for a list, tuple, dict or array whose items need converting."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _leaf(value[()])  # its one value, a numpy scalar
        if value.dtype.kind in "biu":
            return value.tolist()  # Python ints and bools, at any depth; no missing values
        if value.dtype.kind == "f" and value.ndim == 1:
            if value.dtype.itemsize < 8:
                return _short_floats(value)
            return [v if math.isfinite(v) else None for v in value.tolist()]
        return _NESTED
    if isinstance(value, list | tuple | dict):
        return _NESTED
    if isinstance(value, np.float32 | np.float16):
        return _short_floats(np.array([value]))[0]
    if isinstance(value, np.generic):
        item = value.item()
        if isinstance(item, np.generic):  # np.longdouble: no Python scalar holds it
            raise _UnwritableValue(f"a {type(value).__name__} value")
        return _leaf(item)  # a Python scalar: one call deep
    if isinstance(value, bytes | bytearray | memoryview):
        raise _BytesValue
    try:
        return json_default(value)
    except TypeError:
        raise _UnwritableValue(f"a {type(value).__name__} value") from None


def _items(value: list | tuple | np.ndarray) -> list | tuple:
    """A list's, tuple's or array's items: a float array's by rows (each then gets its floats' shortest
    form), another array's as Python values."""
    if isinstance(value, np.ndarray):
        return list(value) if value.dtype.kind == "f" else value.tolist()
    return value


def _short_floats(values: np.ndarray) -> list[float | None]:
    """float32 (probabilities, scores) with the fewest digits that read back as the same float32: `0.1`,
    not its exact float64 value `0.10000000149011612`. Nearly half the characters; numpy's shortest
    round-trip text (`astype(str)`) is about 1 microsecond a value."""
    finite = np.isfinite(values).tolist()
    return [float(text) if ok else None for text, ok in zip(values.astype(str).tolist(), finite, strict=True)]


class _BytesValue(Exception):
    """A bytes value: frame_rows names its column (pandas' to_json decodes it as UTF-8, or fails)."""


class _UnwritableValue(Exception):
    """A value JSON cannot hold: frame_rows names its column (the error is the data's: never retried)."""


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A string of its exact digits ("12.50"): a JSON number is read as a binary float by most readers
        # (pandas, JavaScript, Python's json), which silently changes a decimal beyond ~15 digits and drops
        # its scale; Decimal(s) or pd.to_numeric gives the value back. "f": never an exponent ("0E-10").
        return format(value, "f") if value.is_finite() else None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
