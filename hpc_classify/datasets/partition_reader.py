"""Reading one partition of a dataset (a group of files, or pieces of one file) into one frame, on a worker:
columns and `input_meta`'s dtypes selected and cast, the file name column added, every partition conformed to
the dataset's metadata (see `schema`), rows renumbered from 0 as NeMo's JSONL/Parquet readers do."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import Any

import pandas as pd

from hpc_classify.datasets.partitioning import FilePart
from hpc_classify.datasets.schema import conform, keep_bools_apart
from hpc_classify.datasets.value_dirs import add_partition_columns
from hpc_classify.errors import InputFileError, MissingColumnError, MissingInputFileError
from hpc_classify.io.file_rows import FILE_ROWS, file_rows, file_run
from hpc_classify.io.pieces import read_piece
from hpc_classify.io.readers import import_cudf, read_documents, read_frame


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
