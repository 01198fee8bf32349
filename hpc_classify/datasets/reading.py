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
import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from hpc_classify.datasets.input_files import FILE_TYPES, list_input_files
from hpc_classify.datasets.partitioning import (
    DEFAULT_FILES_PER_PARTITION,
    FilePart,
    SourceFiles,
    partition_groups,
)
from hpc_classify.datasets.schema import conform, dataset_meta, keep_bools_apart
from hpc_classify.datasets.value_dirs import add_partition_columns, partition_dtypes
from hpc_classify.errors import (
    ConfigError,
    DataLayoutError,
    InputFileError,
    MissingColumnError,
    MissingInputFileError,
    UnexpectedArgumentError,
)
from hpc_classify.io.file_rows import FILE_ROWS, file_rows, file_run
from hpc_classify.io.pieces import read_piece
from hpc_classify.io.readers import import_cudf, read_documents, read_frame

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


class PartitionReader:
    """Reads one group of files into one frame; a plain picklable object so Dask can ship it to workers."""

    def __init__(
        self,
        kind: str,
        backend: str,
        filename_column: str | None,
        text_field: str | None,
        columns: Sequence[str] | None,
        dtypes: dict[str, Any] | None,
        read_kwargs: dict[str, Any],
    ):
        self.kind = kind
        self.backend = backend
        self.filename_column = filename_column
        self.text_field = text_field
        wanted = columns if columns is not None else (list(dtypes) if dtypes else None)
        # The file name column is added after the read, then selected (as NeMo does): not read from the file.
        self.columns = None if wanted is None else tuple(c for c in wanted if c != filename_column)
        self.dtypes = {c: t for c, t in dtypes.items() if c != filename_column} if dtypes else dtypes
        self.read_kwargs = read_kwargs
        self.empty: Any = None  # zero-row frame with the dataset's columns, given to empty files
        self.partition_dtypes: dict[str, Any] = {}  # Parquet: columns from `<column>=<value>` directories

    def __call__(self, parts: tuple[FilePart, ...]) -> Any:
        frames = [self._read_one(part) for part in parts]
        runs = [
            file_run(f, p.path, p.piece is not None) for f, p in zip(frames, parts, strict=True) if len(f)
        ]
        if self.empty is not None:
            # Every partition matches the dataset's metadata (see schema.py); an empty file has no columns
            # to infer (or only the text column): it gets the dataset's.
            frames = [
                conform(f, self.empty, part.path) if len(f) else self.empty.copy()
                for f, part in zip(frames, parts, strict=True)
            ]
        # A zero-row frame would change the others' dtypes in the concatenation (int64 -> float64): only
        # frames with rows are joined, one empty frame kept when all are empty.
        joined = keep_bools_apart([f for f in frames if len(f)] or frames[:1])
        # NeMo's readers give every JSONL/Parquet partition a RangeIndex from 0 (a user's map_partitions may
        # align a new pd.Series on it); a pickle keeps the index it was saved with (pd.read_pickle, as NeMo).
        renumber = self.kind != "pickle"
        frame = joined[0] if len(joined) == 1 else _concat(joined, ignore_index=renumber)
        if isinstance(frame, pd.DataFrame):
            if renumber:
                frame.index = pd.RangeIndex(len(frame))
            # Which file row each row is, for errors that name it; always set: a Parquet or pickle file our
            # writer made may bring back an old value in its attrs.
            frame.attrs.pop(FILE_ROWS, None)
            if None not in runs and frame.index.equals(pd.RangeIndex(len(frame))):
                frame.attrs[FILE_ROWS] = file_rows(runs)
        if self.kind == "pickle" and self.backend == "cudf" and isinstance(frame, pd.DataFrame):
            frame = import_cudf().from_pandas(frame)
        return frame

    def _read_one(self, part: FilePart) -> Any:
        path = part.path
        if self.kind == "pickle":
            frame = _read_pickle(path, self.read_kwargs)
        elif part.piece is not None:  # pandas only (see partition_groups' split)
            frame = read_piece(
                path, part.piece, text_field=self.text_field, on_bad_row="error", columns=self.columns
            ).frame
        elif self.text_field is not None:  # rows checked on the host, cuDF or not: file:line in the error
            frame = read_documents(
                path, text_field=self.text_field, on_bad_row="error", columns=self.columns
            ).frame
            if self.backend == "cudf":
                frame = import_cudf().from_pandas(frame)
        else:
            frame = read_frame(path, backend=self.backend, columns=self.columns)
        frame = self._select_and_cast(add_partition_columns(frame, path, self.partition_dtypes), path)
        if self.filename_column:
            frame[self.filename_column] = os.path.basename(path)
        return frame

    def _select_and_cast(self, frame: Any, path: str) -> Any:
        """`columns` and `input_meta`'s dtypes; an empty file lacks columns without error (it has no values)."""
        if self.columns is not None:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing and not len(frame):
                frame = frame.reindex(columns=list(self.columns))
            elif missing:
                raise MissingColumnError(
                    path,
                    f"no column(s) {', '.join(map(repr, missing))} (columns: {', '.join(map(str, frame.columns))})",
                    hint="drop them from columns= / input_meta=, or fix the file",
                )
            frame = frame[list(self.columns)]
        for column, dtype in (self.dtypes or {}).items():
            if column in frame.columns:
                try:
                    frame[column] = frame[column].astype(dtype)
                except (ValueError, TypeError) as exc:
                    raise InputFileError(
                        path,
                        f"column {column!r} cannot be read as {dtype} ({exc})",
                        hint="fix input_meta or the data",
                    ) from exc
        return frame


def _read_pickle(path: str, read_kwargs: dict[str, Any]) -> pd.DataFrame:
    if not os.path.isfile(path):
        raise MissingInputFileError(path, hint="check the input path")
    try:
        frame = pd.read_pickle(path, **read_kwargs)
    except (pickle.UnpicklingError, EOFError, OSError) as exc:
        raise InputFileError(path, f"cannot read the pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(frame, pd.DataFrame):
        raise InputFileError(path, f"holds a {type(frame).__name__}, not a pandas DataFrame")
    return frame


def _concat(frames: list[Any], ignore_index: bool) -> Any:
    if type(frames[0]).__module__.startswith("cudf"):
        return import_cudf().concat(frames, ignore_index=ignore_index)
    return pd.concat(frames, ignore_index=ignore_index)


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
