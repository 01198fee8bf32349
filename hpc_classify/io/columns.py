"""The field names a document file's rows have, from a cheap look at its start (the settings check)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hpc_classify.errors import InputFileError
from hpc_classify.io.compression import DECOMPRESSION_ERRORS, compression_of, open_decompressed
from hpc_classify.io.file_head import check_jsonl_head
from hpc_classify.io.formats import PARQUET, known_format
from hpc_classify.io.rows import is_blank_line, parse_line, without_bom


@dataclass(frozen=True)
class ColumnSample:
    """`columns` in first-seen order, seen in `rows` rows; `whole_file`: those were all the file's rows."""

    columns: tuple[str, ...]
    rows: int
    whole_file: bool


def sample_columns(path: str, max_rows: int) -> ColumnSample:
    """A Parquet file's schema (every row has its columns), or the keys of the JSON objects among a JSONL
    file's first `max_rows` rows (judged as the readers judge them). Unreadable files and rows are passed over
    silently: reading the file reports them properly."""
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
            check_jsonl_head(path, stream, compression_of(path))
            # At most `max_rows` rows looked at, good or bad: a file of bad rows is not read to its end here.
            lines = ((n, raw) for n, raw in enumerate(stream, start=1) if not is_blank_line(raw, n))
            for lineno, raw in itertools.islice(lines, max_rows):
                record, _reason = parse_line(without_bom(raw, lineno))
                if record is not None:
                    columns.update(dict.fromkeys(map(str, record)))
                    rows += 1
            whole_file = _only_blank_left(stream)
    except (*DECOMPRESSION_ERRORS, OSError, InputFileError):
        return ColumnSample(tuple(columns), rows, False)
    return ColumnSample(tuple(columns), rows, whole_file)


def _only_blank_left(stream) -> bool:
    """Whether the rest of the stream is whitespace (no row left), read in chunks: the next line may be
    hundreds of MB, and the settings check needs only whether it exists."""
    while chunk := stream.read(1 << 16):
        if chunk.strip():
            return False
    return True
