"""Parquet documents: read, cut into row ranges, write, assemble; pyarrow is imported when used.

A file is cut by row groups (consecutive groups up to `piece_bytes` uncompressed, as the footer gives each
column chunk's size: text compresses 3-5x, and a piece is held decoded), a row group larger than that into
row ranges; a piece is read a row group (or a batch of one) at a time, never the whole file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import pandas as pd

from hpc_classify.errors import DataLayoutError, HpcClassifyError
from hpc_classify.io.parquet_rows import (
    check_column_names,
    check_parquet_table,
    named_index_as_columns,
    table_to_frame,
)
from hpc_classify.io.parquet_text import check_text_column_types
from hpc_classify.io.parquet_types import (
    UNWRITABLE_HINT,
    check_readable_depth,
    frame_to_table,
    input_types,
)
from hpc_classify.io.rows import (
    Piece,
    ReadResult,
    TextFields,
    corrupt_file_error,
    import_cudf,
    text_fields,
)

_PARQUET_BATCH_ROWS = 8192  # rows decoded at a time inside a row group larger than a piece
_READ_BUFFER_BYTES = 8 << 20  # a piece's reads go through a buffer this size, not whole column chunks


class ParquetFormat:
    name = "parquet"
    suffixes = (".parquet",)
    output_suffix = ".parquet"
    compression = None  # inside the file, per column: nothing to choose by name
    streamed = False
    pieces_in_rows = True  # pieces are row ranges of the file

    def __repr__(self) -> str:
        return "ParquetFormat()"

    def corrupt_error(self, path: str, exc: BaseException):
        return corrupt_file_error(path, "Parquet", exc)

    def read(
        self, path: str, text_field: TextFields, on_bad_row: str, columns: Sequence[str] | None = None
    ) -> ReadResult:
        """The whole file with its text field(s) checked, rows indexed by file position."""
        fields = text_fields(text_field)
        table = self._read_table(path, None if columns is None else list(dict.fromkeys([*columns, *fields])))
        check_text_column_types(path, table.schema, fields, table.num_rows)
        frame, bad = check_parquet_table(path, table, text_field, on_bad_row)
        if columns is not None:
            wanted = [c for c in columns if c in frame.columns]
            frame = frame[wanted + [f for f in fields if f not in wanted]]
        return ReadResult(frame=frame, bad_rows=bad)

    def read_frame(self, path: str, columns: Sequence[str] | None) -> pd.DataFrame:
        """The whole file as pandas, without text checks, with the dtypes pandas gives (the dataset API's)."""
        table = self._read_table(path, columns)
        return named_index_as_columns(table, table.to_pandas())

    def read_cudf(self, path: str, columns: Sequence[str] | None) -> Any:
        return import_cudf().read_parquet(path, columns=None if columns is None else list(columns))

    def _read_table(self, path: str, columns: Sequence[str] | None) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
            check_column_names(path, schema)
            if columns is not None:
                columns = [c for c in columns if c in set(schema.names)]
            return pq.read_table(path, columns=None if columns is None else list(columns))
        except (pa.ArrowException, OSError) as exc:
            raise self.corrupt_error(path, exc) from exc

    def content_bytes(self, path: str, size: int, limit: int) -> int:
        """The bytes of the file's row groups uncompressed (`size`, on disk, when that is over `limit`
        already, or when the footer cannot be read: the read says what is wrong)."""
        if not self.content_bytes_reads(size, limit):
            return size
        try:
            metadata = self._metadata(path)
        except HpcClassifyError:  # an unreadable footer or names: the file's read reports it
            return size
        return sum(_row_group_bytes(metadata.row_group(g)) for g in range(metadata.num_row_groups))

    def content_bytes_reads(self, size: int, limit: int) -> bool:
        """Whether `content_bytes` opens the file (reads its footer: one no larger than `limit` on disk)."""
        return size <= limit

    def _metadata(self, path: str) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            check_column_names(path, parquet.schema_arrow)
            return parquet.metadata
        except (pa.ArrowException, OSError) as exc:
            raise self.corrupt_error(path, exc) from exc

    def plan_pieces(self, path: str, size: int, piece_bytes: int) -> list[Piece]:
        metadata = self._metadata(path)
        ranges: list[tuple[int, int]] = []
        start = row = pending_bytes = 0
        for group in range(metadata.num_row_groups):
            meta = metadata.row_group(group)
            rows = meta.num_rows
            decoded = _row_group_bytes(meta)
            if decoded > piece_bytes and rows:  # a large row group: cut into row ranges of about piece_bytes
                if row > start:
                    ranges.append((start, row))
                cuts = min(rows, math.ceil(decoded / piece_bytes))
                edges = [row + rows * i // cuts for i in range(cuts + 1)]
                ranges.extend(zip(edges[:-1], edges[1:], strict=True))
                start, pending_bytes = row + rows, 0
            elif pending_bytes + decoded > piece_bytes and row > start:
                ranges.append((start, row))
                start, pending_bytes = row, decoded
            else:
                pending_bytes += decoded
            row += rows
        if row > start or not ranges:
            ranges.append((start, row))
        return [Piece(i, lo, hi) for i, (lo, hi) in enumerate(ranges)]

    def read_piece(
        self,
        path: str,
        piece: Piece,
        text_field: TextFields,
        on_bad_row: str,
        columns: Sequence[str] | None,
    ) -> ReadResult:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # Not pre-buffered, read through a bounded buffer: a piece of a huge row group decodes its
            # batches, without first loading the row group's whole column chunks.
            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER_BYTES)
            check_column_names(path, parquet.schema_arrow)
            wanted = None
            if columns is not None:
                present = set(parquet.schema_arrow.names)
                wanted = [c for c in dict.fromkeys([*columns, *text_fields(text_field)]) if c in present]
            tables = list(_parquet_rows(parquet, piece.start, piece.stop, wanted))
            table = pa.concat_tables(tables) if tables else parquet.schema_arrow.empty_table()
            if wanted is not None and not tables:
                table = table.select(wanted)
        except (pa.ArrowException, OSError) as exc:
            raise self.corrupt_error(path, exc) from exc
        if text_field is None:
            frame = named_index_as_columns(table, table_to_frame(table))
            frame.index = pd.RangeIndex(piece.start, piece.start + len(frame))
            return ReadResult(frame=frame)
        check_text_column_types(path, table.schema, text_fields(text_field), table.num_rows)
        frame, bad = check_parquet_table(path, table, text_field, on_bad_row, first_row=piece.start)
        return ReadResult(frame=frame, bad_rows=bad)

    def iter_stream_pieces(self, path: str, piece_bytes: int, **_: Any) -> Iterator[Any]:
        raise ValueError(f"{path} is Parquet: its pieces are planned, not streamed")

    def write(
        self,
        df: pd.DataFrame,
        fileobj: BinaryIO,
        path: str,
        source: str | None = None,
        types: Mapping[str, Any] | None = None,
    ) -> None:
        """`df` (index dropped) as one Parquet file. `types`: column -> the Arrow type it keeps while its
        values fit (`parquet_types.frame_to_table`), by default the columns' types in `source`, the input
        file its rows were read from (a Parquet one), which errors name."""
        import pyarrow.parquet as pq

        if types is None:
            types = input_types([source])
        table = frame_to_table(df, types, source or path)
        check_readable_depth(table.schema, source or path)
        pq.write_table(table, fileobj)

    def assemble(
        self, parts: Sequence[str], out: BinaryIO, schema: Any = None, source: str | None = None
    ) -> None:
        """Parts written by `write`, in order, streamed row group by row group into one file under `schema`
        (by default their `common_schema`). `source`: the input file the parts come from, named in errors
        (by default the part)."""
        import pyarrow.parquet as pq

        if schema is None:
            schema = self.common_schema(parts)
        rows = 0
        with pq.ParquetWriter(out, schema) as writer:
            # One part open at a time, not pre-buffered: a file of a thousand pieces must not hold a
            # thousand descriptors (EMFILE) nor every part's column chunks in memory at once.
            for part in parts:
                with pq.ParquetFile(part, pre_buffer=False) as parquet:
                    for group in range(parquet.metadata.num_row_groups):
                        writer.write_table(_conform(parquet.read_row_group(group), schema, source or part))
                    rows += parquet.metadata.num_rows
            if rows == 0:
                writer.write_table(schema.empty_table())

    def common_schema(self, paths: Sequence[str]) -> Any:
        """One schema for files written by `write` from frames of one dataset, so that they read as one
        dataset: their unified schema (a column all null in one and text or list<double> in another takes
        the other's type)."""
        import pyarrow.parquet as pq

        return unify_schemas([pq.read_schema(path) for path in paths])

    def has_schema(self, path: str, schema: Any) -> bool:
        """The file's columns are `schema`'s, in order and types (metadata aside): it needs no rewrite."""
        import pyarrow.parquet as pq

        return pq.read_schema(path).equals(schema, check_metadata=False)


def _row_group_bytes(meta: Any) -> int:
    """A row group's bytes uncompressed (its column chunks' pages, from the footer), or on disk if more."""
    columns = [meta.column(c) for c in range(meta.num_columns)]
    uncompressed = sum(c.total_uncompressed_size for c in columns)
    return max(uncompressed, sum(c.total_compressed_size for c in columns))


def unify_schemas(schemas: Sequence[Any]) -> Any:
    """One schema for files of one dataset: pyarrow's permissive unification (a column all null in one
    takes the other's type, int64 and double give double, a struct gains the fields of each); a
    DataLayoutError naming the first column of no common type."""
    import pyarrow as pa

    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise _type_clash(schemas, exc) from exc
    bare = [s.remove_metadata() for s in schemas]
    if any(not b.equals(bare[0]) for b in bare[1:]):
        # The schemas differed (a column int64 with nulls in one part, fractional in another): the first
        # part's pandas metadata ("Int64") no longer describes the unified column.
        schema = schema.remove_metadata()
    return schema


def _type_clash(schemas: Sequence[Any], exc: BaseException) -> DataLayoutError:
    """The error for parts whose column types have no common type, naming the first such column."""
    import pyarrow as pa

    for name in dict.fromkeys(n for s in schemas for n in s.names):
        fields = [s.field(name) for s in schemas if name in s.names]
        try:
            pa.unify_schemas([pa.schema([f]) for f in fields], promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            seen = dict.fromkeys(str(f.type) for f in fields)
            return DataLayoutError(
                f"column {name!r} holds values of the types {', '.join(seen)} in different partitions: "
                "they cannot be written with one Parquet schema",
                hint=f"give {name!r} one type before writing (e.g. df[{name!r}].astype(str)), or drop it",
            )
    return DataLayoutError(f"the partitions cannot be written as one Parquet dataset ({exc})")


def _parquet_rows(parquet: Any, start: int, stop: int, columns: list[str] | None) -> Iterator[Any]:
    """Tables holding rows [start, stop) of the file, decoded a row group (or a batch of one) at a time."""
    import pyarrow as pa

    metadata = parquet.metadata
    first = 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        lo, hi = max(start, first), min(stop, first + rows)
        if lo < hi:
            if lo == first and hi == first + rows:
                yield parquet.read_row_group(group, columns=columns)
            else:  # part of a large row group: stream its batches, keep the slice
                at = first
                for batch in parquet.iter_batches(
                    batch_size=_PARQUET_BATCH_ROWS, row_groups=[group], columns=columns
                ):
                    b_lo, b_hi = max(lo, at), min(hi, at + batch.num_rows)
                    if b_lo < b_hi:
                        yield pa.Table.from_batches([batch.slice(b_lo - at, b_hi - b_lo)])
                    at += batch.num_rows
                    if at >= hi:
                        break
        first += rows
        if first >= stop:
            break


def _conform(table: Any, schema: Any, source: str) -> Any:
    """`table` with `schema`'s columns in its order and types (columns it lacks are all null). A value the
    shared type cannot hold exactly (an int64 above 2**53 in a column that is double in another part) is
    the data's: a DataLayoutError naming `source` and the column, as writing the whole file would give."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        try:
            columns.append(table.column(field.name).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise DataLayoutError(
                f"{source}: column {field.name!r} cannot be written as Parquet: its pieces' values have no "
                f"common type that holds each exactly ({exc})",
                hint=UNWRITABLE_HINT,
            ) from exc
    return pa.Table.from_arrays(columns, schema=schema)
