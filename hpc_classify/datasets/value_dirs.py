"""The `partition_on` layout, a directory per value of the column (`<column>=<value>/part.N.<ext>`, as hive,
the value as `str` gives it, a `%` written `%25` so that the value reads back as it was),
what a failed write leaves of it, and the columns a Parquet read takes back from such directory names.

Reading, as Dask and pyarrow read a list of Parquet files (NeMo's `read_parquet`): every `<column>=<value>`
directory segment of a file's absolute path (a relative path is taken from the working directory, as Dask
makes it absolute) becomes a column of that file's rows, unless the file has a column of that name (its own
values are kept). The column is categorical, with the values of every file of the read as categories,
sorted: integers (int32) when every value is one that fits and no two values are the same integer (`12` and
`0012`: strings, where Dask fails), else strings. A value is percent-decoded (`en%20US` is `en US`), and
`__HIVE_DEFAULT_PARTITION__` is null.

A write that fails removes the value directories it made, with the files it wrote into them: a later read
of the output would take them for partitions (empty ones: the directory is made before its file is written).
Directories that were there before the write are left as they are, whatever the write put into them. Best
effort, as `assembly.remove_parts`: a partition still being written when another failed may make its
directory again afterwards.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import pandas as pd

from hpc_classify.errors import ConfigError
from hpc_classify.io.readers import import_cudf
from hpc_classify.io.writers import is_temp_file

logger = logging.getLogger(__name__)

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # pyarrow's directory name for a null partition value
_INT32 = (
    -(2**31),
    2**31 - 1,
)  # pyarrow reads a partition value as int32 when every one is an integer in range
_INTEGER = re.compile(r"-?[0-9]+")  # as pyarrow: `+5` is a string


def value_dir(column: str, value: Any) -> str:
    """The directory of the rows whose `column` is `value`: `str(value)` as it is, as Dask and NeMo name it
    (`lang=en US`), except `%`, written `%25`: a read percent-decodes the name, so `a%20b` written raw would
    read back as `a b` (Dask writes it raw). A value that cannot be part of a directory name is a ConfigError."""
    if pd.isna(value):
        return f"{column}={HIVE_NULL}"
    text = str(value)
    if "/" in text or "\0" in text:
        raise ConfigError(
            f"partition_on={column!r}: the value {text!r} cannot name a directory (it holds "
            f"{'a /' if '/' in text else 'a NUL character'})",
            hint=f"replace those characters in column {column!r} before writing, or partition on another column",
        )
    return f"{column}={text.replace('%', '%25')}"


def partition_file(index: int, ext: str) -> str:
    """The file partition `index` writes (into each of its value directories with `partition_on`)."""
    return f"part.{index}.{ext}"


@contextmanager
def removing_new_value_dirs(output_path: str, column: str | None, ext: str) -> Iterator[None]:
    """Around a write into `output_path`: if it fails, remove the `column` value directories it made."""
    if column is None:
        yield
        return
    before = _value_dirs(output_path, column)
    try:
        yield
    except BaseException:
        for name in sorted(_value_dirs(output_path, column) - before):
            _remove_written_dir(os.path.join(output_path, name), ext)
        raise


def _value_dirs(output_path: str, column: str) -> set[str]:
    prefix = f"{column}="
    with os.scandir(output_path) as entries:
        return {e.name for e in entries if e.name.startswith(prefix) and e.is_dir(follow_symlinks=False)}


def _remove_written_dir(directory: str, ext: str) -> None:
    """Remove the files a write puts there (its partitions' files, parts and temp files), then the directory;
    anything else keeps it."""
    written = re.compile(rf"part\.\d+\.{re.escape(ext)}")
    try:
        for name in os.listdir(directory):
            if written.fullmatch(name) or is_temp_file(name):
                os.remove(os.path.join(directory, name))
        os.rmdir(directory)
    except OSError as exc:
        logger.warning("could not remove %s, made by the failed write: %s", directory, exc)


def path_values(path: str) -> dict[str, str | None]:
    """The `<column>=<value>` directory segments of `path` made absolute, as Dask makes it (a relative
    `corpus/a.parquet` read in `run=3/` has `run`); the innermost wins for a column named twice."""
    values: dict[str, str | None] = {}
    for segment in os.path.dirname(os.path.abspath(path)).split(os.sep):
        column, equals, value = segment.partition("=")
        if equals and column:
            values[column] = None if value == HIVE_NULL else unquote(value)
    return values


def partition_dtypes(paths: Iterable[str]) -> dict[str, pd.CategoricalDtype]:
    """The columns a read of `paths` takes from their directory names, each with its categorical dtype."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for column, value in path_values(path).items():
            found.setdefault(column, set()).update(() if value is None else (value,))
    return {column: _categories(values) for column, values in found.items()}


def _categories(values: set[str]) -> pd.CategoricalDtype:
    """Integers where every value is one in int32's range and no two are the same integer (`12`, `0012`:
    Dask would fail on the duplicate category), else strings."""
    if values and all(_INTEGER.fullmatch(v) and _INT32[0] <= int(v) <= _INT32[1] for v in values):
        integers = {int(v) for v in values}
        if len(integers) == len(values):
            return pd.CategoricalDtype(pd.Index(sorted(integers), dtype="int32"))
    return pd.CategoricalDtype(pd.Index(sorted(values), dtype=object))


def add_partition_columns(frame: Any, path: str, dtypes: dict[str, pd.CategoricalDtype]) -> Any:
    """`frame` (the rows of the file `path`) with the `dtypes` columns it lacks, valued from `path`'s
    directory names (null where `path` has no segment for one)."""
    missing = [column for column in dtypes if column not in frame.columns]
    if not missing:
        return frame
    values = path_values(path)
    for column in missing:
        dtype = dtypes[column]
        value = values.get(column)
        if value is not None and pd.api.types.is_integer_dtype(dtype.categories.dtype):
            value = int(value)
        column_values = pd.Categorical([value] * len(frame), dtype=dtype)
        if isinstance(frame, pd.DataFrame):
            frame[column] = column_values
        else:
            frame[column] = import_cudf().Series(column_values, index=frame.index)
    return frame
