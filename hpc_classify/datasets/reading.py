"""Reading document files into a Dask dataframe with NeMo Curator 0.7.1's `read_data` semantics.

Partitions follow `files_per_partition` (N files each) or `blocksize` (consecutive files packed up to that
many bytes on disk; on pandas a larger file cut into pieces: see `partitioning`), rows in file order; every
partition matches the dataset's metadata, columns sorted as NeMo sorts them (see `schema`). `input_meta` (a dict or
a JSON/Python-literal string of column -> dtype) casts those columns and keeps only them; `columns` keeps
only these; `add_filename` adds each row's file base name in `file_name` or in the column it names.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from hpc_classify.datasets.input_files import FILE_TYPES, list_input_files
from hpc_classify.datasets.partition_reader import PartitionReader
from hpc_classify.datasets.partitioning import (
    DEFAULT_FILES_PER_PARTITION,
    SourceFiles,
    partition_groups,
)
from hpc_classify.datasets.schema import dataset_meta
from hpc_classify.datasets.value_dirs import partition_dtypes
from hpc_classify.errors import (
    ConfigError,
    DataLayoutError,
    UnexpectedArgumentError,
)
from hpc_classify.io.readers import import_cudf

FILENAME_COLUMN = "file_name"
PICKLE_KWARGS = ("compression", "storage_options")  # what pandas.read_pickle takes besides the path


def filename_column(add_filename: bool | str) -> str | None:
    """NeMo's add_filename / write_to_filename: False -> None, True -> "file_name", a string -> that column.
    None and "" are False, as NeMo's `if add_filename:` reads them (its write_to_disk refuses None: see
    `writing.write_filename_column`)."""
    if add_filename is False or add_filename is None or (isinstance(add_filename, str) and not add_filename):
        return None
    if add_filename is True:
        return FILENAME_COLUMN
    if isinstance(add_filename, str):
        return add_filename
    raise ConfigError(f"a file name column must be True, False or a column name, not {add_filename!r}")


def parse_input_meta(input_meta: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """input_meta as a dict of column -> dtype; a string may be JSON or a Python dict literal (as NeMo's)."""
    if input_meta is None:
        return None
    meta = input_meta
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            try:
                meta = ast.literal_eval(meta)
            except (ValueError, SyntaxError) as exc:
                raise ConfigError(
                    f"input_meta {input_meta!r} is neither JSON nor a Python dict literal ({exc})",
                    hint='write it as \'{"id": "int64", "text": "str"}\'',
                ) from exc
    if not isinstance(meta, Mapping) or not meta:
        raise ConfigError(f"input_meta must map column names to dtypes, not {input_meta!r}")
    for column, dtype in meta.items():
        try:
            pd.api.types.pandas_dtype(dtype)
        except TypeError as exc:
            raise ConfigError(f"input_meta: {dtype!r} (column {column!r}) is not a dtype ({exc})") from exc
    return dict(meta)


def read_data(
    input_files: str | Sequence[str],
    file_type: str = "pickle",
    backend: str = "cudf",
    blocksize: str | int | None = None,
    files_per_partition: int | None = DEFAULT_FILES_PER_PARTITION,
    add_filename: bool | str = False,
    input_meta: str | Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    **kwargs: Any,
) -> dd.DataFrame:
    """NeMo's `read_data`: a Dask dataframe of the files (JSONL, Parquet or pickle; directories are listed).

    `kwargs` are passed to `pandas.read_pickle` for pickles; other file types take none (an error)."""
    frame, _ = read_frame_and_sources(
        input_files,
        file_type,
        backend=backend,
        blocksize=blocksize,
        files_per_partition=files_per_partition,
        add_filename=add_filename,
        input_meta=input_meta,
        columns=columns,
        read_kwargs=kwargs,
    )
    return frame


def read_frame_and_sources(
    input_files: str | Sequence[str],
    file_type: str,
    *,
    backend: str,
    blocksize: str | int | None,
    files_per_partition: int | None,
    add_filename: bool | str,
    input_meta: str | Mapping[str, Any] | None,
    columns: Sequence[str] | None,
    read_kwargs: Mapping[str, Any],
    text_field: str | None = None,
) -> tuple[dd.DataFrame, list[tuple[str, ...]]]:
    """The dataframe, and the paths of the files behind each partition (a file cut into pieces is behind
    each of its pieces' partitions), with add_filename's column (None without). Keyword-only after
    `file_type`: the public readers order blocksize and files_per_partition differently (NeMo's orders)."""
    refuse_json_documents(file_type)
    columns = column_list(columns)
    kind = file_type
    if kind not in FILE_TYPES:
        raise DataLayoutError(f"file_type must be one of {', '.join(FILE_TYPES)}, not {file_type!r}")
    passed_on = PICKLE_KWARGS if kind == "pickle" else ()
    refuse_reader_kwargs(f"read_{kind}", {k: v for k, v in read_kwargs.items() if k not in passed_on})
    if backend == "cudf":
        _require_dask_cudf()
    elif backend != "pandas":
        raise ConfigError(f"backend must be 'pandas' or 'cudf', not {backend!r}")
    paths = list_input_files(input_files, kind)
    split = backend == "pandas" and kind in ("jsonl", "parquet")
    groups = partition_groups(paths, files_per_partition, blocksize, split=split)
    column = filename_column(add_filename)
    reader = PartitionReader(
        kind, backend, column, text_field, columns, parse_input_meta(input_meta), dict(read_kwargs)
    )
    reader.partition_dtypes = partition_dtypes(paths) if kind == "parquet" else {}
    reader.empty = dataset_meta(_first_partition_with_rows(reader, groups), kind)
    # Dask's convert-string would turn nested values (dicts, lists) into their repr: keep objects as they are.
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_map(reader, groups, meta=reader.empty, label="read-documents", enforce_metadata=False)
    # Always: a write keeps the column types of a partition's Parquet inputs (and, by add_filename's column,
    # gives each input its output).
    return frame, SourceFiles([tuple(p.path for p in group) for group in groups], column)


def refuse_json_documents(file_type: str) -> None:
    """NeMo reads "json" as one JSON document per file (pandas read_json(lines=False)); not as lines here."""
    if file_type == "json":
        raise DataLayoutError(
            "file_type 'json' (one JSON document per file, as NeMo reads it) is not supported: "
            "only JSON Lines (file_type='jsonl', .json files included) are read",
            hint="pass file_type='jsonl' for JSON Lines files; convert a JSON document with "
            "pd.read_json(path).to_json(out, orient='records', lines=True)",
        )


def refuse_reader_kwargs(function: str, kwargs: Mapping[str, Any]) -> None:
    """NeMo passes these to pandas/cuDF readers; here JSONL and Parquet are parsed by our readers, and a
    pickle by `pandas.read_pickle`, which takes only PICKLE_KWARGS."""
    if kwargs:
        raise UnexpectedArgumentError(
            f"{function} does not take {', '.join(sorted(kwargs))}",
            hint="these files are parsed here, not by pandas/cuDF: use columns=, input_meta= or add_filename= "
            f"(pickles also take {', '.join(PICKLE_KWARGS)})",
        )


def column_list(columns: str | Sequence[str] | None) -> list[str] | None:
    """`columns` as a list: one name given as a string is that one column (as in pandas), not its letters."""
    if columns is None:
        return None
    return [columns] if isinstance(columns, str) else list(columns)


def select_columns(df: Any, columns: Sequence[str] | None, filetype: str, add_filename: bool | str) -> Any:
    """NeMo's `select_columns`: for JSON Lines (`filetype` "jsonl" or "json") only `columns`, plus the file name
    column when there is one; for other file types `df` unchanged, as NeMo's (its readers select those)."""
    if columns is None or filetype not in ("jsonl", "json"):
        return df
    wanted = column_list(columns)
    column = filename_column(add_filename)
    if column and column not in wanted:
        wanted.append(column)
    return df[wanted]


def _first_partition_with_rows(reader: PartitionReader, groups: list[tuple[str, ...]]) -> Any:
    """The first partition with rows (or the last one), as Dask infers metadata: read twice, here and as
    itself. Its files' columns are united, so files with other keys may share it, as in NeMo."""
    frame = None
    for group in groups:
        frame = reader(group)
        if len(frame) > 0:
            break
    return frame


def _require_dask_cudf() -> None:
    import_cudf()
    try:
        import dask_cudf  # noqa: F401  (registers the cudf backend with dask.dataframe)
    except Exception as exc:
        raise ConfigError(
            f"backend 'cudf' needs dask_cudf ({type(exc).__name__}: {exc})",
            hint="use backend='pandas' on CPU machines, or install the GPU extra (pip install 'hpc-classify[gpu]')",
        ) from exc
