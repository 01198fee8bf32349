"""DocumentDataset: a Dask dataframe of documents with NeMo Curator 0.7.1's reading and writing API.

Computation runs on the active distributed Client if there is one, else on dask's default scheduler: this
module never starts a cluster. Writes are atomic (see `hpc_classify.datasets.writing`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from hpc_classify.datasets.partitioning import DEFAULT_BLOCKSIZE
from hpc_classify.datasets.reading import read_frame_and_sources
from hpc_classify.datasets.writing import write_to_disk
from hpc_classify.errors import ConfigError
from hpc_classify.whole_numbers import is_whole_number


class DocumentDataset:
    """A collection of documents backed by a Dask dataframe (`.df`)."""

    def __init__(self, dataset_df: dd.DataFrame, source_files: list[tuple[str, ...]] | None = None):
        self.df = dataset_df
        # Paths of the files behind each partition (when read with add_filename): what write_to_filename by
        # that column checks its output names against, and where Parquet writes find the inputs' types.
        self.source_files = source_files

    def map_partitions(self, func: Any, *args: Any, **kwargs: Any) -> DocumentDataset:
        """A partition-wise map that keeps the link between partitions and their source files."""
        return DocumentDataset(self.df.map_partitions(func, *args, **kwargs), self.source_files)

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        return f"DocumentDataset(npartitions={self.df.npartitions}, columns={list(self.df.columns)})"

    def persist(self) -> DocumentDataset:
        return DocumentDataset(self.df.persist(), self.source_files)

    @functools.wraps(dd.DataFrame.repartition)
    def repartition(self, *args: Any, **kwargs: Any) -> DocumentDataset:
        return self.__class__(self.df.repartition(*args, **kwargs))

    def head(self, n: int = 5) -> Any:
        return self.df.head(n)

    @classmethod
    def read_json(
        cls,
        input_files: str | Sequence[str],
        backend: str = "pandas",
        files_per_partition: int | None = None,
        blocksize: str | int | None = DEFAULT_BLOCKSIZE,
        add_filename: bool | str = False,
        input_meta: str | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        *,
        text_field: str | None = None,
        **kwargs: Any,
    ) -> DocumentDataset:
        """Read JSONL files (.jsonl, .json, and those compressed: .gz, .zst, .bz2, .xz) or directories of them.

        `text_field`, when given, checks each row has a string text (a bad row raises InputFileError naming
        file:line). NeMo's pandas/cuDF reader options (`**kwargs`) are refused: the files are parsed here."""
        frame, sources = read_frame_and_sources(
            input_files,
            "jsonl",
            backend=backend,
            blocksize=blocksize,
            files_per_partition=files_per_partition,
            add_filename=add_filename,
            input_meta=input_meta,
            columns=columns,
            read_kwargs=kwargs,
            text_field=text_field,
        )
        return cls(frame, sources)

    @classmethod
    def read_parquet(
        cls,
        input_files: str | Sequence[str],
        backend: str = "pandas",
        files_per_partition: int | None = None,
        blocksize: str | int | None = DEFAULT_BLOCKSIZE,
        add_filename: bool | str = False,
        columns: Sequence[str] | None = None,
        *,
        input_meta: str | Mapping[str, Any] | None = None,
        text_field: str | None = None,
        **kwargs: Any,
    ) -> DocumentDataset:
        """Read Parquet files or directories of them (see `read_json`)."""
        frame, sources = read_frame_and_sources(
            input_files,
            "parquet",
            backend=backend,
            blocksize=blocksize,
            files_per_partition=files_per_partition,
            add_filename=add_filename,
            input_meta=input_meta,
            columns=columns,
            read_kwargs=kwargs,
            text_field=text_field,
        )
        return cls(frame, sources)

    @classmethod
    def read_pickle(
        cls,
        input_files: str | Sequence[str],
        backend: str = "pandas",
        columns: Sequence[str] | None = None,
        *,
        files_per_partition: int | None = None,
        blocksize: str | int | None = None,
        add_filename: bool | str = False,
        input_meta: str | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> DocumentDataset:
        """Read pickled pandas DataFrames (.pkl, .pickle), one partition per file unless `files_per_partition`
        or `blocksize` pack several. The keywords NeMo passes on to `read_data` work as there (NeMo itself
        reads only the first file and only warns about add_filename); other `kwargs` go to
        `pandas.read_pickle` (compression, storage_options)."""
        frame, sources = read_frame_and_sources(
            input_files,
            "pickle",
            backend=backend,
            blocksize=blocksize,
            files_per_partition=files_per_partition,
            add_filename=add_filename,
            input_meta=input_meta,
            columns=columns,
            read_kwargs=kwargs,
        )
        return cls(frame, sources)

    def to_json(
        self,
        output_path: str,
        write_to_filename: bool | str = False,
        keep_filename_column: bool = False,
        partition_on: str | None = None,
    ) -> None:
        """Write JSONL: `part.N.jsonl` per partition, one file per input file name (write_to_filename: True
        for `file_name`, or the column's name), or `<column>=<value>/` directories (partition_on)."""
        write_to_disk(self, output_path, write_to_filename, keep_filename_column, "jsonl", partition_on)

    def to_parquet(
        self,
        output_path: str,
        write_to_filename: bool | str = False,
        keep_filename_column: bool = False,
        partition_on: str | None = None,
    ) -> None:
        """Write Parquet, like `to_json`; with partition_on the column lives in the directory names (hive)."""
        write_to_disk(self, output_path, write_to_filename, keep_filename_column, "parquet", partition_on)

    def to_pickle(self, output_path: str, write_to_filename: bool | str = False) -> None:
        """Write pickled pandas DataFrames: `part.N.pkl` per partition, or one `<input stem>.pkl` per file."""
        write_to_disk(self, output_path, write_to_filename, False, "pickle")

    @classmethod
    def from_pandas(
        cls,
        data: pd.DataFrame,
        npartitions: int | None = 1,
        chunksize: int | None = None,
        sort: bool | None = True,
        name: str | None = None,
    ) -> DocumentDataset:
        """A dataset from a pandas frame (see dask.dataframe.from_pandas); string columns stay as they are."""
        if name is not None:
            raise ConfigError(
                f"from_pandas(name={name!r}) is not supported: dask.dataframe.from_pandas no longer takes a name",
                hint="leave name out",
            )
        for argument, value in (("npartitions", npartitions), ("chunksize", chunksize)):
            if value is not None and not is_whole_number(value, 1):
                raise ConfigError(
                    f"from_pandas: {argument} must be a whole number >= 1, not {value!r}",
                    hint="npartitions=N cuts the frame into N partitions; chunksize=N into partitions of N rows",
                )
        if chunksize is not None and npartitions == 1:
            npartitions = None  # NeMo's default npartitions=1 with a chunksize: the chunksize decides
        with dask.config.set({"dataframe.convert-string": False}):
            return cls(
                dd.from_pandas(
                    data, npartitions=_int_or_none(npartitions), chunksize=_int_or_none(chunksize), sort=sort
                )
            )

    def to_pandas(self) -> pd.DataFrame:
        """All rows as one pandas frame (computed; a cuDF dataset is copied to the host)."""
        frame = self.df.compute()
        return frame.to_pandas() if not isinstance(frame, pd.DataFrame) else frame


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)  # numpy's integers as Python's, for dask
