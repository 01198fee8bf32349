"""Atomic file writers: nothing ever appears under a final name until it is complete and on disk.

Every write goes to `.<name>.tmp-<pid>-<random>` in the destination directory (same file system, so the
rename is atomic), is flushed and fsynced, renamed over the final name with os.replace, and the directory
is fsynced so the rename survives a node crash; so is the parent of each directory created on the way, or
a marker's directory could survive a crash that loses its output's. A killed writer leaves only a hidden
temp file, which `is_temp_file` recognises for cleanup.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO

import pandas as pd

from hpc_classify.errors import OutputWriteError
from hpc_classify.io.formats import output_format
from hpc_classify.io.json_lines import json_default, write_jsonl_rows

logger = logging.getLogger(__name__)

TEMP_MARKER = ".tmp-"
# errno values that mean "this file system takes no more writes from us", not "this file is bad".
UNWRITABLE_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM))


def is_temp_file(name: str) -> bool:
    """True for a temp file left by `write_atomically` (takes a base name or a path)."""
    base = os.path.basename(name)
    return base.startswith(".") and TEMP_MARKER in base


def temp_path_for(final_path: str) -> str:
    directory, base = os.path.split(os.path.abspath(final_path))
    return os.path.join(directory, f".{base}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")


def write_atomically(
    final_path: str,
    write_fn: Callable[[BinaryIO], Any],
    *,
    before_rename: Callable[[], None] | None = None,
) -> None:
    """Call write_fn(binary file) on a temp file, then fsync and rename it to `final_path`.

    The parent directory is created if needed. If write_fn (or anything after it) fails, the temp file is
    removed and the exception re-raised; `final_path` is then untouched. `before_rename`: called once the
    temp file is on disk, just before the rename; what it raises stops the write the same way (a task's
    check that its run still owns the output directory). A file system that refuses writes
    (full, over quota, read-only, no permission) raises OutputWriteError naming `final_path`.
    """
    directory = os.path.dirname(os.path.abspath(final_path))
    tmp = temp_path_for(final_path)
    try:
        _make_directories(directory)
        try:
            with open(tmp, "xb") as fileobj:  # "x": never clobber another writer's temp file
                write_fn(fileobj)
                fileobj.flush()
                os.fsync(fileobj.fileno())
            if before_rename is not None:
                before_rename()
            os.replace(tmp, final_path)
        except BaseException:  # also KeyboardInterrupt/SystemExit: never leave a temp file behind
            _remove_quietly(tmp)
            raise
    except OSError as exc:
        if exc.errno in UNWRITABLE_ERRNOS:
            raise OutputWriteError(final_path, exc.strerror or str(exc), errno=exc.errno) from exc
        raise
    _fsync_directory(directory)


def write_frame(
    df: pd.DataFrame,
    path: str,
    fmt: str,
    source: str | None = None,
    types: Mapping[str, Any] | None = None,
    *,
    before_rename: Callable[[], None] | None = None,
    named_as: str | None = None,
) -> None:
    """Write `df` (index dropped) atomically as JSONL (compressed by extension: `named_as`'s, by default
    `path`'s) or Parquet. `source`: the input file its rows were read from (named in errors; a Parquet one's
    map columns stay maps). Parquet: `types` (column -> Arrow type), by default `source`'s column types, are
    kept where the values fit. `before_rename`: as `write_atomically`'s."""
    document_format = output_format(fmt)
    name = named_as or path
    write_atomically(
        path, lambda f: document_format.write(df, f, name, source, types), before_rename=before_rename
    )


def write_jsonl_records(
    path: str, records: Iterable[Mapping[str, Any]], *, before_rename: Callable[[], None] | None = None
) -> None:
    """Write dicts atomically as JSONL (compressed by extension), e.g. a quarantine file of bad rows."""
    write_atomically(path, lambda f: write_jsonl_rows(records, f, path), before_rename=before_rename)


def write_json_atomically(
    path: str, obj: Any, *, indent: int | None = None, before_rename: Callable[[], None] | None = None
) -> None:
    """Write one JSON document atomically (UTF-8, non-ASCII kept as is)."""
    data = json.dumps(obj, ensure_ascii=False, indent=indent, default=json_default).encode("utf-8")
    write_atomically(path, lambda f: f.write(data), before_rename=before_rename)


def _make_directories(directory: str) -> None:
    """os.makedirs, then fsync the parent of each directory it created (top down): the new entries are
    on disk before any file renamed into them is."""
    missing = []
    path = directory
    while not os.path.isdir(path) and path not in missing:
        missing.append(path)
        path = os.path.dirname(path)
    if not missing:
        return
    os.makedirs(directory, exist_ok=True)
    for created in reversed(missing):
        _fsync_directory(os.path.dirname(created))


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
