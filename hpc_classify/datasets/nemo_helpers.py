"""NeMo Curator 0.7.1's lower-level reading and writing helpers, with its signatures and defaults.

`read_data_blocksize` and `read_data_files_per_partition` are `read_data` with one way of forming partitions;
`read_single_partition` reads a list of files into one frame (the work of one partition);
`single_partition_write_with_filename` writes one frame's rows to one file per value of its file name column.
They share `read_data`'s and `write_to_disk`'s rules: atomic writes, files parsed here (reader `**kwargs`
refused), output names as `write_to_disk` gives them.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import dask.dataframe as dd
import pandas as pd

from hpc_classify.datasets.partition_reader import PartitionReader
from hpc_classify.datasets.partitioning import FilePart
from hpc_classify.datasets.reading import (
    filename_column,
    parse_input_meta,
    read_data,
    refuse_json_documents,
    refuse_reader_kwargs,
)
from hpc_classify.datasets.writing import PartitionWriter, finish_file_name_write
from hpc_classify.errors import ConfigError, DataLayoutError

logger = logging.getLogger(__name__)

BLOCKSIZE_FILE_TYPES = ("jsonl", "parquet")
SINGLE_PARTITION_FILE_TYPES = ("jsonl", "parquet")
FILENAME_WRITE_TYPES = ("jsonl", "parquet")


def read_single_partition(
    files: Sequence[str | os.PathLike],
    backend: str = "cudf",
    filetype: str = "jsonl",
    add_filename: bool | str = False,
    input_meta: str | Mapping[str, Any] | None = None,
    io_columns: Sequence[str] | None = None,
    **kwargs: Any,
) -> Any:
    """The files read into one pandas (or cuDF) frame, rows in file order; their columns united, in the
    order they first appear (not sorted: the dataset readers sort), the file name column last."""
    refuse_json_documents(filetype)
    if filetype not in SINGLE_PARTITION_FILE_TYPES:
        raise DataLayoutError(
            f"read_single_partition reads {', '.join(SINGLE_PARTITION_FILE_TYPES)} files, not {filetype!r}",
            hint="read pickles with read_data(file_type='pickle')",
        )
    refuse_reader_kwargs("read_single_partition", kwargs)
    if backend not in ("pandas", "cudf"):
        raise ConfigError(f"backend must be 'pandas' or 'cudf', not {backend!r}")
    reader = PartitionReader(
        filetype,
        backend,
        filename_column(add_filename),
        None,
        None if io_columns is None else list(io_columns),
        parse_input_meta(input_meta),
        {},
    )
    return reader(tuple(FilePart(os.fspath(f)) for f in files))


def read_data_files_per_partition(
    input_files: Sequence[str],
    file_type: str,
    backend: str = "cudf",
    add_filename: bool | str = False,
    files_per_partition: int | None = None,
    input_meta: str | Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    **kwargs: Any,
) -> dd.DataFrame:
    """`files_per_partition` consecutive files per partition (None: one), columns sorted as NeMo's."""
    return read_data(
        input_files,
        file_type=file_type,
        backend=backend,
        blocksize=None,
        files_per_partition=1 if files_per_partition is None else files_per_partition,
        add_filename=add_filename,
        input_meta=input_meta,
        columns=columns,
        **kwargs,
    )


def read_data_blocksize(
    input_files: Sequence[str],
    backend: str,
    file_type: str,
    blocksize: str | int | None,
    add_filename: bool | str = False,
    input_meta: str | Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    **kwargs: Any,
) -> dd.DataFrame:
    """Partitions of about `blocksize` bytes (see `read_data`), columns sorted as NeMo's."""
    refuse_json_documents(file_type)
    if file_type not in BLOCKSIZE_FILE_TYPES:
        raise ConfigError(
            f"read_data_blocksize reads {' or '.join(BLOCKSIZE_FILE_TYPES)} files, not {file_type!r}",
            hint="use read_data_files_per_partition for other file types",
        )
    if file_type == "parquet" and add_filename:
        # NeMo's rule (its Parquet reader cannot add the column); DocumentDataset.read_parquet can.
        raise ConfigError(
            "read_data_blocksize cannot add a file name column to Parquet files",
            hint="use DocumentDataset.read_parquet(..., blocksize=..., add_filename=...) or "
            "read_data_files_per_partition",
        )
    return read_data(
        input_files,
        file_type=file_type,
        backend=backend,
        blocksize=blocksize,
        files_per_partition=None,
        add_filename=add_filename,
        input_meta=input_meta,
        columns=columns,
        **kwargs,
    )


def single_partition_write_with_filename(
    df: Any,
    output_file_dir: str | os.PathLike,
    keep_filename_column: bool = False,
    output_type: str = "jsonl",
    filename_col: str = "file_name",
) -> Any:
    """Write `df`'s rows to one file per value of `filename_col` in `output_file_dir`, rows in order, each
    file atomically. Returns a one-element Series: True when `df` was empty (nothing written), as NeMo's."""
    if output_type == "bitext":  # NeMo: a RuntimeError (its bitext writer is another function)
        raise DataLayoutError(
            "single_partition_write_with_filename does not write NeMo's bitext (parallel text) files",
            hint="write jsonl or parquet",
        )
    if output_type not in FILENAME_WRITE_TYPES:
        raise ConfigError(
            f"single_partition_write_with_filename writes {' or '.join(FILENAME_WRITE_TYPES)}, "
            f"not {output_type!r}",
            hint="write pickles with DocumentDataset.to_pickle(..., write_to_filename=True)",
        )
    if filename_col not in df.columns:
        raise ConfigError(
            f"no {filename_col!r} column to take the file names from "
            f"(columns: {', '.join(map(str, df.columns))})",
            hint="read the data with add_filename=True (or the column's name), or pass filename_col=",
        )
    empty = len(df) == 0
    if empty:
        logger.warning("empty partition: no file written to %s", output_file_dir)
    else:
        directory, token = os.fspath(output_file_dir), secrets.token_hex(4)
        writer = PartitionWriter(directory, output_type, filename_col, keep_filename_column, None, token)
        finish_file_name_write(directory, writer(df, 0), output_type, token)
    if type(df).__module__.startswith("cudf"):
        import cudf

        return cudf.Series([empty])
    return pd.Series([empty])
