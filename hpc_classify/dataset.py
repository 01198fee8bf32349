"""DocumentDataset: a Dask dataframe of documents with NeMo Curator's reading and writing API.

One partition per input file by default, so the rows of a file stay together and in order; with
`add_filename=True` each row carries its file's base name in `file_name`, and
`to_json(..., write_to_filename=True)` writes one output per input file with that name. Writes are
atomic. Computation runs on the active distributed Client if there is one, else on dask's default
scheduler: this module never starts a cluster.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from hpc_classify.errors import ConfigError
from hpc_classify.io.discovery import JSONL_SUFFIXES, get_all_files_paths_under, output_relpath
from hpc_classify.io.readers import import_cudf, read_documents, read_frame
from hpc_classify.io.writers import write_frame

logger = logging.getLogger(__name__)

FILENAME_COLUMN = "file_name"


class DocumentDataset:
    """A collection of documents backed by a Dask dataframe (`.df`)."""

    def __init__(self, dataset_df: dd.DataFrame, source_files: list[tuple[str, ...]] | None = None):
        self.df = dataset_df
        # Base names of the files behind each partition (when read with add_filename): lets
        # write_to_filename give every input its output, even one whose rows were all filtered out.
        self.source_files = source_files

    def map_partitions(self, func: Any, *args: Any, **kwargs: Any) -> DocumentDataset:
        """A partition-wise map that keeps the link between partitions and their source files."""
        return DocumentDataset(self.df.map_partitions(func, *args, **kwargs), self.source_files)

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        return f"DocumentDataset(npartitions={self.df.npartitions}, columns={list(self.df.columns)})"

    def persist(self) -> DocumentDataset:
        return DocumentDataset(self.df.persist())

    def head(self, n: int = 5) -> Any:
        return self.df.head(n)

    @classmethod
    def from_pandas(cls, data: pd.DataFrame, npartitions: int = 1) -> DocumentDataset:
        return cls(dd.from_pandas(data, npartitions=npartitions, sort=False))

    @classmethod
    def read_json(
        cls,
        input_files: str | Sequence[str],
        backend: str = "pandas",
        files_per_partition: int = 1,
        add_filename: bool = False,
        input_meta: Any = None,
        text_field: str | None = None,
        columns: Sequence[str] | None = None,
        **_ignored: Any,
    ) -> DocumentDataset:
        """Read JSONL files (.jsonl, .json, .jsonl.gz, .jsonl.zst) or a directory of them.

        `text_field`, when given, checks each row has a string text (a bad row raises InputFileError
        naming file:line). `input_meta` and NeMo Curator's other reader options are accepted and ignored:
        columns and dtypes come from the files.
        """
        return cls._read(
            input_files, JSONL_SUFFIXES, backend, files_per_partition, add_filename, text_field, columns
        )

    @classmethod
    def read_parquet(
        cls,
        input_files: str | Sequence[str],
        backend: str = "pandas",
        files_per_partition: int = 1,
        add_filename: bool = False,
        text_field: str | None = None,
        columns: Sequence[str] | None = None,
        **_ignored: Any,
    ) -> DocumentDataset:
        """Read Parquet files or a directory of them (see `read_json`)."""
        return cls._read(
            input_files, (".parquet",), backend, files_per_partition, add_filename, text_field, columns
        )

    @classmethod
    def _read(
        cls,
        input_files: str | Sequence[str],
        suffixes: tuple[str, ...],
        backend: str,
        files_per_partition: int,
        add_filename: bool,
        text_field: str | None,
        columns: Sequence[str] | None,
    ) -> DocumentDataset:
        paths = _list_files(input_files, suffixes)
        if files_per_partition < 1:
            raise ConfigError(f"files_per_partition must be >= 1, not {files_per_partition}")
        if backend == "cudf":
            _require_dask_cudf()
        elif backend != "pandas":
            raise ConfigError(f"backend must be 'pandas' or 'cudf', not {backend!r}")
        if add_filename:
            _warn_duplicate_names(paths)
        groups = [
            tuple(paths[i : i + files_per_partition]) for i in range(0, len(paths), files_per_partition)
        ]
        reader = _PartitionReader(
            backend, add_filename, text_field, None if columns is None else tuple(columns)
        )
        reader.empty = _first_nonempty_meta(reader, paths)
        meta = reader.empty
        # Dask's convert-string would turn nested values (dicts, lists) into their repr: keep objects as they are.
        with dask.config.set({"dataframe.convert-string": False}):
            frame = dd.from_map(reader, groups, meta=meta, label="read-documents", enforce_metadata=False)
        names = [tuple(os.path.basename(p) for p in group) for group in groups] if add_filename else None
        return cls(frame, names)

    def to_json(
        self, output_path: str, write_to_filename: bool = False, keep_filename_column: bool = False
    ) -> None:
        """Write JSONL: one file per input file name (write_to_filename) or one `part.N.jsonl` per partition."""
        self._write(output_path, "jsonl", write_to_filename, keep_filename_column)

    def to_parquet(
        self, output_path: str, write_to_filename: bool = False, keep_filename_column: bool = False
    ) -> None:
        """Write Parquet, like `to_json`; with write_to_filename the names get a `.parquet` suffix."""
        self._write(output_path, "parquet", write_to_filename, keep_filename_column)

    def _write(self, output_path: str, fmt: str, write_to_filename: bool, keep_filename_column: bool) -> None:
        if write_to_filename and FILENAME_COLUMN not in self.df.columns:
            raise ConfigError(
                f"write_to_filename=True needs a {FILENAME_COLUMN!r} column",
                hint="read the dataset with add_filename=True",
            )
        os.makedirs(output_path, exist_ok=True)
        write = dask.delayed(_write_partition, pure=False)
        parts = self.df.to_delayed()
        expected = self.source_files if self.source_files and len(self.source_files) == len(parts) else None
        tasks = [
            write(
                part,
                output_path,
                fmt,
                index,
                write_to_filename,
                keep_filename_column,
                expected and expected[index],
            )
            for index, part in enumerate(parts)
        ]
        written = [name for names in dask.compute(*tasks) for name in names]
        clashes = sorted(name for name, n in Counter(written).items() if n > 1)
        if clashes:
            raise ConfigError(
                f"several partitions wrote the same output file(s) {clashes}: the last write won",
                hint="input files in different directories share a base name; give them distinct names",
            )
        logger.info("wrote %d %s file(s) to %s", len(written), fmt, output_path)


class _PartitionReader:
    """Reads one group of files into one frame; a plain picklable object so Dask can ship it to workers."""

    def __init__(
        self, backend: str, add_filename: bool, text_field: str | None, columns: tuple[str, ...] | None
    ):
        self.backend = backend
        self.add_filename = add_filename
        self.text_field = text_field
        self.columns = columns
        self.empty: Any = None  # zero-row frame with the dataset's columns, given to empty files

    def __call__(self, paths: tuple[str, ...]) -> Any:
        frames = [self._read_one(path) for path in paths]
        if self.empty is not None:
            # An empty file has no columns to infer (or only the text column): give it the dataset's.
            frames = [self.empty.copy() if len(f) == 0 else f for f in frames]
        if len(frames) == 1:
            return frames[0]
        if self.backend == "cudf":
            return import_cudf().concat(frames, ignore_index=True)
        return pd.concat(frames, ignore_index=True)

    def _read_one(self, path: str) -> Any:
        if self.text_field is not None and self.backend == "pandas":
            frame = read_documents(
                path, text_field=self.text_field, on_bad_row="error", columns=self.columns
            ).frame
        else:
            frame = read_frame(path, backend=self.backend, columns=self.columns)
        if self.add_filename:
            frame[FILENAME_COLUMN] = os.path.basename(path)
        return frame


def _first_nonempty_meta(reader: _PartitionReader, paths: list[str]) -> Any:
    """Columns and dtypes from the first file with rows (read twice: once here, once in its partition)."""
    frame = None
    for path in paths:
        frame = reader((path,))
        if len(frame) > 0:
            break
    return frame.iloc[:0]


def _write_partition(
    part: Any,
    output_path: str,
    fmt: str,
    index: int,
    write_to_filename: bool,
    keep_filename_column: bool,
    source_names: tuple[str, ...] | None = None,
) -> list[str]:
    """Write one partition; returns the file names written (for the clash check).

    With `source_names` (the files this partition was read from), a file whose rows were all filtered
    out still gets its (empty) output, so every input has exactly one output."""
    if hasattr(part, "to_pandas"):  # cudf: the writers are pandas/pyarrow based
        part = part.to_pandas()
    if not write_to_filename:
        name = f"part.{index}.{fmt}"
        write_frame(_drop_filename(part, keep_filename_column), os.path.join(output_path, name), fmt)
        return [name]
    present = list(part[FILENAME_COLUMN].unique())  # first-seen order
    missing = [name for name in (source_names or ()) if name not in set(present)]
    names = []
    # Boolean selection keeps row order within each file.
    for file_name in present + missing:
        rows = part[part[FILENAME_COLUMN] == file_name]
        name = output_relpath(str(file_name), fmt)
        write_frame(_drop_filename(rows, keep_filename_column), os.path.join(output_path, name), fmt)
        names.append(name)
    return names


def _drop_filename(frame: pd.DataFrame, keep_filename_column: bool) -> pd.DataFrame:
    if keep_filename_column or FILENAME_COLUMN not in frame.columns:
        return frame
    return frame.drop(columns=[FILENAME_COLUMN])


def _list_files(input_files: str | Sequence[str], suffixes: tuple[str, ...]) -> list[str]:
    if isinstance(input_files, str | os.PathLike):
        input_files = [os.fspath(input_files)]
    paths: list[str] = []
    for item in input_files:
        item = os.fspath(item)
        if os.path.isdir(item):
            paths.extend(get_all_files_paths_under(item, keep_extensions=list(suffixes)))
        else:
            paths.append(item)  # a missing file raises InputFileError when read (first one: right here)
    if not paths:
        raise ConfigError(f"no input files ({', '.join(suffixes)}) in {list(input_files)}")
    return paths


def _warn_duplicate_names(paths: list[str]) -> None:
    names = Counter(os.path.basename(p) for p in paths)
    duplicates = sorted(n for n, c in names.items() if c > 1)
    if duplicates:
        logger.warning(
            "input files share base names %s: write_to_filename would write them to one file", duplicates
        )


def _require_dask_cudf() -> None:
    import_cudf()
    try:
        import dask_cudf  # noqa: F401  (registers the cudf backend with dask.dataframe)
    except Exception as exc:
        raise ConfigError(
            f"backend 'cudf' needs dask_cudf ({type(exc).__name__}: {exc})",
            hint="use backend='pandas' on CPU machines, or install the GPU extra (pip install 'hpc-classify[gpu]')",
        ) from exc
