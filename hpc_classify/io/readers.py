"""Read one document file (JSONL, compressed .gz, .zst, .bz2 or .xz, Parquet) into a pandas frame, checking every row.

`read_documents` is what a classification task uses: each row must be a JSON object whose text field is a
string; rows that are not are either an error naming file:line or collected as `BadRow`s (the driver writes
them to a quarantine file), never dropped silently. `read_frame` reads a whole file without text checks
for `DocumentDataset`, on the pandas or (lazily imported) cudf backend. The work is the file's format's
(`io/formats.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hpc_classify.errors import ConfigError
from hpc_classify.io.formats import format_of
from hpc_classify.io.rows import (  # noqa: F401  (BadRow, BAD_ROW_HINT, import_cudf: this module's API)
    BAD_ROW_HINT,
    BadRow,
    ReadResult,
    TextFields,
    check_bad_row_policy,
    import_cudf,
    require_file,
)

logger = logging.getLogger(__name__)

BACKENDS = ("pandas", "cudf")


def read_documents(
    path: str,
    *,
    text_field: TextFields = "text",
    on_bad_row: str = "error",
    columns: Sequence[str] | None = None,
) -> ReadResult:
    """Read `path` and check each row has a string `text_field` (several fields: a string in each).

    on_bad_row="error" raises InputFileError at the first bad row; "skip" returns bad rows in `bad_rows`.
    `columns` (optional) limits the frame to these columns; the text field(s) are always kept.
    """
    check_bad_row_policy(on_bad_row)
    require_file(path)
    result = format_of(path).read(path, text_field, on_bad_row, columns)
    bad = result.bad_rows
    if bad:
        logger.warning(
            "%s: %d bad row(s) set aside (first at line %d: %s)", path, len(bad), bad[0].line, bad[0].reason
        )
    return result


def read_frame(path: str, backend: str = "pandas", columns: Sequence[str] | None = None) -> Any:
    """Read a whole file as a pandas (or cudf) frame, without text-field checks.

    Invalid JSON, non-object rows, invalid UTF-8 and corrupt files still raise InputFileError.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    require_file(path)
    fmt = format_of(path)
    return fmt.read_cudf(path, columns) if backend == "cudf" else fmt.read_frame(path, columns)
