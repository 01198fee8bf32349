"""The field names a document file's rows have, from a cheap look at its start (the settings check)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hpc_classify.io.compression import DECOMPRESSION_ERRORS, open_decompressed
from hpc_classify.io.formats import PARQUET, known_format


@dataclass(frozen=True)
class ColumnSample:
    """`columns` in first-seen order, seen in `rows` rows; `whole_file`: those were all the file's rows."""

    columns: tuple[str, ...]
    rows: int
    whole_file: bool


def sample_columns(path: str, max_rows: int) -> ColumnSample:
    """A Parquet file's schema (every row has its columns), or the keys of a JSONL file's first `max_rows`
    JSON objects. Unreadable files and lines are skipped silently: reading the file reports them properly."""
    if known_format(path) is PARQUET:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            return ColumnSample(tuple(parquet.schema_arrow.names), parquet.metadata.num_rows, True)
        except (pa.ArrowException, OSError):
            return ColumnSample((), 0, False)
    columns: dict[str, None] = {}  # an ordered set
    rows = 0
    try:
        with open_decompressed(path) as stream:
            for raw in stream:
                try:
                    record = json.loads(raw)
                except ValueError:  # JSONDecodeError, UnicodeDecodeError; blank lines too
                    continue
                if isinstance(record, dict):
                    columns.update(dict.fromkeys(map(str, record)))
                    rows += 1
                    if rows == max_rows:
                        return ColumnSample(tuple(columns), rows, False)
    except (*DECOMPRESSION_ERRORS, OSError):
        return ColumnSample(tuple(columns), rows, False)
    return ColumnSample(tuple(columns), rows, True)
