"""One rule for the columns of a dataset read from files: every partition matches the dataset's metadata.

Dask requires each partition to have exactly the columns and dtypes of `ddf._meta`; files that write their
keys in another order, or that lack or add keys, would otherwise give partitions that disagree with their
dataset. The metadata is the first partition with rows, as NeMo Curator infers it, with JSONL and Parquet
columns sorted as NeMo sorts them. Then each file (or piece of one) is conformed to it:
- a column in another order: reordered;
- a column the file lacks: filled with nulls (a JSON row without a key is a null, as pandas reads it);
- a column of another dtype: cast when no value changes (int -> float, anything -> object; a bool is not a
  number here, though True == 1: 1 -> true changes the value), else an error;
- a column the dataset does not declare: an error naming the file and the column (NeMo drops it silently).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hpc_classify.errors import InputFileError
from hpc_classify.io.file_rows import FILE_ROWS

SORTED_KINDS = ("jsonl", "parquet")  # NeMo sorts these; pickles keep their own order


def dataset_meta(first: Any, kind: str) -> Any:
    """The zero-row frame every partition must match, from the first partition with rows."""
    meta = first.iloc[:0]
    if isinstance(meta, pd.DataFrame):
        meta.attrs.pop(FILE_ROWS, None)  # the first partition's file rows are not the dataset's
    if kind in SORTED_KINDS:
        meta = meta[sorted(meta.columns)]
    return meta


def keep_bools_apart(frames: list[Any]) -> list[Any]:
    """The files of one partition before they are joined: pandas joins a bool column with an int one as
    int64 (true -> 1); such a column becomes object in each, so every file's values stay as written."""
    if not all(isinstance(f, pd.DataFrame) for f in frames):
        return frames
    kinds: dict[Any, set[str]] = {}
    for frame in frames:
        for column, dtype in frame.dtypes.items():
            kinds.setdefault(column, set()).add(dtype.kind)
    mixed = [c for c, k in kinds.items() if "b" in k and k & {"i", "u"}]
    return [f.astype({c: object for c in mixed if c in f.columns}) if mixed else f for f in frames]


def conform(frame: Any, meta: Any, source: str) -> Any:
    """`frame` with exactly `meta`'s columns, order and dtypes; `source` names the file in errors."""
    extra = [c for c in frame.columns if c not in meta.columns]
    if extra:
        raise InputFileError(
            source,
            f"has column(s) {', '.join(map(repr, extra))} that the dataset does not have "
            f"(its columns, from its first partition with rows: {', '.join(map(str, meta.columns))})",
            hint="pass columns=[...] to read only the columns you need, or read files with different "
            "columns as separate datasets",
        )
    if list(frame.columns) != list(meta.columns):
        frame = frame.reindex(
            columns=list(meta.columns)
        )  # a missing column: NaN, as pandas reads a missing key
    for column, dtype in meta.dtypes.items():
        if frame[column].dtype != dtype:
            frame[column] = _cast_without_loss(frame[column], dtype, source, column)
    return frame


def _cast_without_loss(series: Any, dtype: Any, source: str, column: Any) -> Any:
    if not isinstance(series, pd.Series):  # cudf: its astype raises on values that do not fit
        return series.astype(dtype)
    problem = None
    try:
        cast = series.astype(dtype)
        if not pd.api.types.is_object_dtype(dtype):
            problem = _value_change(series, cast)
    except (ValueError, TypeError, OverflowError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if problem is None:
        return cast
    raise InputFileError(
        source,
        f"column {column!r} is {series.dtype} here but {dtype} in the dataset (its first partition with rows), "
        f"and cannot be converted ({problem})",
        hint=f"give it a type that holds both in input_meta, e.g. {{{str(column)!r}: {_holding_both(series.dtype, dtype)!r}, "
        "...} (input_meta keeps only the columns it lists), or fix the data",
    )


def _holding_both(here: Any, dataset: Any) -> str:
    """The dtype to suggest: numbers (not bools) widen, as int and float to float64; anything else: object.
    Only a suggestion: the dataset's dtype is its first partition's, fixed before later files are read."""
    numbers = [
        pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d) for d in (here, dataset)
    ]
    try:
        return str(np.result_type(here, dataset)) if all(numbers) else "object"
    except TypeError:  # extension dtypes (Int64, ...)
        return "object"


def _value_change(before: pd.Series, after: pd.Series) -> str | None:
    """Why the cast `before` -> `after` changes what would be written, or None when no value changes."""
    old, new = before.astype(object), after.astype(object)
    try:
        changed = ~((old == new) | (old.isna() & new.isna()))
    except (ValueError, TypeError):  # values without a plain equality (arrays): not provably the same
        return "some values would change"
    if changed.any():
        first = changed.to_numpy().nonzero()[0][0]
        return f"some values would change, first {old.iloc[first]!r} to {new.iloc[first]!r}"
    # True == 1 in Python, but a file's 1 is not its true: a bool is not a number here.
    if _may_hold_bools(before) or _may_hold_bools(after):
        was, now = old.map(_is_bool), new.map(_is_bool)
        if (was & ~now).any():
            return "true/false would become numbers"
        if (now & ~was).any():
            return "numbers would become true/false"
    return None


def _may_hold_bools(series: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_object_dtype(series.dtype)


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))
