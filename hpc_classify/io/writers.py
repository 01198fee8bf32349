"""Atomic file writers: nothing ever appears under a final name until it is complete and on disk.

Every write goes to `.<name>.tmp-<pid>-<random>` in the destination directory (same file system, so the
rename is atomic), is flushed and fsynced, renamed over the final name with os.replace, and the directory
is fsynced so the rename survives a node crash. A killed writer leaves only a hidden temp file, which
`is_temp_file` recognises for cleanup.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from hpc_classify.errors import ConfigError, OutputWriteError
from hpc_classify.io.compression import open_compressed_writer

logger = logging.getLogger(__name__)

TEMP_MARKER = ".tmp-"
WRITE_FORMATS = ("jsonl", "parquet")
# errno values that mean "this file system takes no more writes from us", not "this file is bad".
UNWRITABLE_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM))
_LINES_PER_CHUNK = 2048  # JSONL lines encoded per write call: few syscalls, bounded extra memory


def is_temp_file(name: str) -> bool:
    """True for a temp file left by `write_atomically` (takes a base name or a path)."""
    base = os.path.basename(name)
    return base.startswith(".") and TEMP_MARKER in base


def temp_path_for(final_path: str) -> str:
    directory, base = os.path.split(os.path.abspath(final_path))
    return os.path.join(directory, f".{base}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")


def write_atomically(final_path: str, write_fn: Callable[[BinaryIO], Any]) -> None:
    """Call write_fn(binary file) on a temp file, then fsync and rename it to `final_path`.

    The parent directory is created if needed. If write_fn (or anything after it) fails, the temp file is
    removed and the exception re-raised; `final_path` is then untouched. A file system that refuses writes
    (full, over quota, read-only, no permission) raises OutputWriteError naming `final_path`.
    """
    directory = os.path.dirname(os.path.abspath(final_path))
    tmp = temp_path_for(final_path)
    try:
        os.makedirs(directory, exist_ok=True)
        try:
            with open(tmp, "xb") as fileobj:  # "x": never clobber another writer's temp file
                write_fn(fileobj)
                fileobj.flush()
                os.fsync(fileobj.fileno())
            os.replace(tmp, final_path)
        except BaseException:  # also KeyboardInterrupt/SystemExit: never leave a temp file behind
            _remove_quietly(tmp)
            raise
    except OSError as exc:
        if exc.errno in UNWRITABLE_ERRNOS:
            raise OutputWriteError(final_path, exc.strerror or str(exc), errno=exc.errno) from exc
        raise
    _fsync_directory(directory)


def write_frame(df: pd.DataFrame, path: str, fmt: str) -> None:
    """Write `df` (index dropped) atomically as JSONL (gzip/zstd by extension) or Parquet."""
    if fmt not in WRITE_FORMATS:
        raise ConfigError(f"output format must be one of {', '.join(WRITE_FORMATS)}, not {fmt!r}")
    if fmt == "parquet":
        write_atomically(path, lambda f: _write_parquet(df, f))
    else:
        write_atomically(path, lambda f: _write_jsonl_rows(_frame_rows(df), f, path))


def write_jsonl_records(path: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Write dicts atomically as JSONL (gzip/zstd by extension), e.g. a quarantine file of bad rows."""
    write_atomically(path, lambda f: _write_jsonl_rows(records, f, path))


def write_json_atomically(path: str, obj: Any, *, indent: int | None = None) -> None:
    """Write one JSON document atomically (UTF-8, non-ASCII kept as is)."""
    data = json.dumps(obj, ensure_ascii=False, indent=indent, default=_json_default).encode("utf-8")
    write_atomically(path, lambda f: f.write(data))


def _write_jsonl_rows(rows: Iterable[Mapping[str, Any]], fileobj: BinaryIO, path: str) -> None:
    encoder = json.JSONEncoder(ensure_ascii=False, default=_json_default, allow_nan=False)
    with open_compressed_writer(fileobj, path) as out:
        chunk: list[str] = []
        for row in rows:
            chunk.append(encoder.encode(row))
            if len(chunk) >= _LINES_PER_CHUNK:
                out.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk.clear()
        if chunk:
            out.write(("\n".join(chunk) + "\n").encode("utf-8"))


def _frame_rows(df: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Rows of `df` as JSON-ready dicts: NaN/NA -> None, numpy scalars and arrays -> Python values."""
    names = [str(c) for c in df.columns]
    columns = [_column_values(df.iloc[:, i]) for i in range(df.shape[1])]
    for values in zip(*columns, strict=True):
        yield dict(zip(names, values, strict=True))


def _column_values(series: pd.Series) -> list[Any]:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return series.tolist()  # numpy ints/bools hold no missing values; tolist gives Python scalars
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return [None if math.isnan(v) else v for v in series.tolist()]
    return [_to_json_value(v) for v in series.tolist()]


def _to_json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, np.ndarray):
        return [_to_json_value(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _to_json_value(value.item())
    return value  # anything else goes to _json_default


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def _write_parquet(df: pd.DataFrame, fileobj: BinaryIO) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, fileobj)


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some network file systems refuse fsync on directories; the rename still happened
        logger.debug("fsync of directory %s failed: %s", directory, exc)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove temp file %s: %s", path, exc)
