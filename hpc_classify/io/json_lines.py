"""Rows as JSON Lines: frames and dicts encoded to UTF-8 lines, compressed as the file name says.

NaN/NA become null, numpy scalars and arrays Python values, timestamps ISO strings: what a JSONL reader
reads back as the same values (a float32 with the fewest digits that give the same float32 back). Infinities become null too, as pandas' `to_json` writes them: JSON has no
infinity (Python's `json` reads a non-standard `Infinity` in an input, which other readers reject).
Decimals become strings of their exact digits, and a Parquet input's maps JSON objects (see below).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from hpc_classify.errors import DataLayoutError
from hpc_classify.io.compression import open_compressed_writer
from hpc_classify.io.parquet_types import map_columns

_LINES_PER_CHUNK = 2048  # JSONL lines encoded per write call: few syscalls, bounded extra memory


def write_jsonl_rows(rows: Iterable[Mapping[str, Any]], fileobj: BinaryIO, path: str) -> None:
    encoder = json.JSONEncoder(ensure_ascii=False, default=json_default, allow_nan=False)
    with open_compressed_writer(fileobj, path) as out:
        chunk: list[str] = []
        for row in rows:
            chunk.append(encoder.encode(row))
            if len(chunk) >= _LINES_PER_CHUNK:
                out.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk.clear()
        if chunk:
            out.write(("\n".join(chunk) + "\n").encode("utf-8"))


def frame_rows(df: pd.DataFrame, source: str | None = None) -> Iterable[dict[str, Any]]:
    """Rows of `df` as JSON-ready dicts: NaN/NA/infinity -> None, numpy scalars and arrays -> Python values.
    `source`: the input file the rows come from, named in errors; a Parquet one's maps become objects."""
    names = [str(c) for c in df.columns]
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
    return [_to_json_value(v) for v in series.tolist()]


def _to_json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and value.dtype.itemsize < 8:
            return _short_floats(value.reshape(-1)) if value.ndim == 1 else _to_json_value(list(value))
        return [_to_json_value(v) for v in value.tolist()]
    if isinstance(value, np.float32 | np.float16):
        return _short_floats(np.array([value]))[0]
    if isinstance(value, list | tuple):
        return [_to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _to_json_value(value.item())
    if isinstance(value, bytes | bytearray | memoryview):
        raise _BytesValue
    try:
        return json_default(value)
    except TypeError:
        raise _UnwritableValue(f"a {type(value).__name__} value") from None


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
