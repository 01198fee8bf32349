"""The `partition_on` layout, a directory per value of the column (`<column>=<value>/part.N.<ext>`, as hive),
and what a failed write leaves of it.

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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pandas as pd

from hpc_classify.io.writers import is_temp_file

logger = logging.getLogger(__name__)

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # pyarrow's directory name for a null partition value


def value_dir(column: str, value: Any) -> str:
    """The directory of the rows whose `column` is `value`."""
    return f"{column}={HIVE_NULL if pd.isna(value) else quote(str(value), safe='')}"


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
