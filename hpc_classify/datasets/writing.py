"""Writing a Dask dataframe of documents with NeMo Curator 0.7.1's `write_to_disk` semantics, atomically.

One file per partition (`part.N.<ext>`); with `write_to_filename` one file per value of the file name column,
its rows in order even when they span partitions (see `assembly`; an input whose rows were all filtered out
gets no file, as in NeMo: an empty one breaks readers of the directory);
with `partition_on` a directory per value (`<column>=<value>/part.N.<ext>`; a failed write removes those it
made, see `value_dirs`); a JSONL path for a single-partition dataset writes that one file. Parquet files of
one write share one schema, so the directory reads as one dataset (see `assembly`): the column types of
the Parquet files read, where every file read had the same, else their common type.
"""

from __future__ import annotations

import logging
import os
import pickle
import secrets
from collections import Counter
from typing import Any

import dask
import pandas as pd

from hpc_classify.datasets.assembly import finish_outputs, part_name, remove_parts
from hpc_classify.datasets.output_names import OUTPUT_TYPES, file_name_text, output_name
from hpc_classify.datasets.reading import filename_column
from hpc_classify.datasets.value_dirs import partition_file, removing_new_value_dirs, value_dir
from hpc_classify.errors import ConfigError, DataLayoutError
from hpc_classify.io.file_rows import FILE_ROWS
from hpc_classify.io.formats import known_format
from hpc_classify.io.output_clashes import refuse_output_clashes
from hpc_classify.io.parquet_types import input_types, map_columns
from hpc_classify.io.writers import write_atomically, write_frame

logger = logging.getLogger(__name__)


def write_to_disk(
    df: Any,
    output_path: str,
    write_to_filename: bool | str = False,
    keep_filename_column: bool = False,
    output_type: str = "jsonl",
    partition_on: str | None = None,
) -> None:
    """NeMo's `write_to_disk` for a Dask dataframe (or a DocumentDataset: then the files behind its partitions
    give Parquet outputs their column types, and, written by the column add_filename filled, inputs whose
    names would share an output are refused). An input whose rows were all filtered out gets no file."""
    source_files = getattr(df, "source_files", None)
    read_from = source_files  # the files behind each partition, whatever writes: their Map columns, types
    frame = getattr(df, "df", df)
    if output_type not in OUTPUT_TYPES:
        raise ConfigError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, not {output_type!r}")
    column = write_filename_column(write_to_filename)
    if not column or getattr(source_files, "column", column) != column:
        source_files = None  # written by another column than add_filename's: only its values name outputs
    if _names_one_jsonl_file(output_path, output_type):
        _write_single_jsonl(frame, output_path, column, partition_on)
        return
    output_path = os.fspath(output_path)
    _check_columns(frame, column, partition_on)
    if column and source_files:
        _check_distinct_sources(source_files)
        _refuse_shared_outputs([os.path.basename(p) for group in source_files for p in group], output_type)
    os.makedirs(output_path, exist_ok=True)
    # With a file name column, or to Parquet: parts first, joined per name (and Parquet given one schema)
    # once every partition has written (assembly.py).
    token = secrets.token_hex(4) if column or output_type == "parquet" else None
    spec = PartitionWriter(output_path, output_type, column, keep_filename_column, partition_on, token)
    parts = frame.to_delayed()
    inputs = read_from if read_from and len(read_from) == len(parts) else None
    write = dask.delayed(spec, pure=False)
    tasks = [write(part, index, inputs and tuple(inputs[index])) for index, part in enumerate(parts)]
    with removing_new_value_dirs(output_path, partition_on, OUTPUT_TYPES[output_type]):
        try:
            written = [entry for entries in dask.compute(*tasks) for entry in entries]
        except BaseException:
            if token:
                remove_parts(output_path, token)
            raise
        if column:
            names = finish_file_name_write(output_path, written, output_type, token)
        elif token:
            names = _finish(output_path, written, output_type, token)
        else:
            names = [name for name, _, _ in written]
    logger.info("wrote %d %s file(s) to %s", len(names), output_type, output_path)


def write_filename_column(write_to_filename: bool | str) -> str | None:
    """The file name column of a write: as `reading.filename_column` (False and "" write without file names),
    except that None is refused, as NeMo's write_to_disk refuses it (ValueError)."""
    if write_to_filename is None:
        raise ConfigError(
            "write_to_filename=None: it must be True, False or a column name",
            hint="False (or leave it out) writes without file names; True writes one file per 'file_name' value",
        )
    return filename_column(write_to_filename)


def _names_one_jsonl_file(output_path: Any, output_type: str) -> bool:
    """Whether `output_path` is one JSONL file rather than a directory: a `str` (as NeMo: a `pathlib.Path` is a
    directory, whatever its name) with a JSONL name (`.jsonl`, as NeMo, and `.json`, compressed ones). A
    `.jsonl` name with another output type is refused: NeMo fails inside Dask's metadata inference there."""
    if not isinstance(output_path, str) or getattr(known_format(output_path), "name", None) != "jsonl":
        return False
    if output_type == "jsonl":
        return True
    if output_path.endswith(".jsonl"):
        raise ConfigError(
            f"{output_path} names a JSON Lines file, but output_type={output_type!r} writes a directory of "
            f"{output_type} files",
            hint="give a directory path (a name without .jsonl), or write JSON Lines",
        )
    return False  # out.json, out.jsonl.gz: a directory for other types, as in NeMo


def _write_single_jsonl(frame: Any, output_path: str, column: str | None, partition_on: str | None) -> None:
    if column or partition_on:
        raise ConfigError(
            f"{output_path} is one file: write_to_filename and partition_on need a directory",
            hint="give a directory as output_path",
        )
    if frame.npartitions != 1:
        raise DataLayoutError(
            f"cannot write {frame.npartitions} partitions to the single file {output_path}",
            hint="give a directory as output_path, or dataset.repartition(npartitions=1) first",
        )
    write_frame(_to_pandas(frame.partitions[0].compute()), output_path, "jsonl")


def _check_columns(frame: Any, column: str | None, partition_on: str | None) -> None:
    if column and partition_on:
        raise ConfigError(
            "write_to_filename and partition_on cannot be used together",
            hint="write per input file or per column value, not both",
        )
    if column and column not in frame.columns:
        hint = "add_filename=True" if column == "file_name" else f"add_filename={column!r}"
        raise ConfigError(
            f"write_to_filename needs a {column!r} column", hint=f"read the dataset with {hint}"
        )
    if partition_on and partition_on not in frame.columns:
        raise ConfigError(
            f"partition_on={partition_on!r} is not a column (columns: {', '.join(map(str, frame.columns))})"
        )


def finish_file_name_write(
    output_path: str, written: list[tuple[str, str, str]], fmt: str, token: str
) -> list[str]:
    """The outputs of a `write_to_filename` write from its parts (see `assembly`). File name values that
    share an output name (`a` and `a.jsonl`) are refused, as inputs are (io/output_clashes), parts removed."""
    try:
        refuse_output_clashes(
            ((source, name) for name, _, source in written),
            hint="give the rows distinct file names (without their suffixes)",
        )
    except ConfigError:
        remove_parts(output_path, token)
        raise
    return _finish(output_path, written, fmt, token)


def _finish(output_path: str, written: list[tuple[str, str, str]], fmt: str, token: str) -> list[str]:
    try:
        return finish_outputs(output_path, [(name, part) for name, part, _ in written], fmt)
    except BaseException:  # e.g. Parquet parts without a common schema: nothing written, parts removed
        remove_parts(output_path, token)
        raise


def _refuse_hidden_outputs(values: pd.Series, present: list[Any], column: str, fmt: str) -> None:
    """An empty or dot-leading name (`""`, `.x.jsonl`, `..`) names a hidden file, which the next read of the
    directory skips (its rows lost). A path is no harm: its output takes the last part's name, as NeMo's."""
    bad = [name for name in present if output_name(file_name_text(name, column), fmt).startswith(".")]
    if bad:
        count = int(values.isin(bad).sum())
        example = file_name_text(bad[0], column)
        raise DataLayoutError(
            f"{count} row(s) of a partition have a file name in column {column!r} that names a hidden output "
            f"file (e.g. {example!r} -> {output_name(example, fmt)!r}): a directory read skips it",
            hint=f"give those rows names in {column!r} that are not empty and do not start with '.', "
            "or write without write_to_filename",
        )


def _check_distinct_sources(source_files: list[tuple[str, ...]]) -> None:
    """Different input files with one base name would write one output (a file in pieces is one file)."""
    paths = dict.fromkeys(p for group in source_files for p in group)
    shared = sorted(name for name, n in Counter(map(os.path.basename, paths)).items() if n > 1)
    if shared:
        raise ConfigError(
            f"input files in different directories share the base name(s) {shared}: "
            "write_to_filename would write them to one file",
            hint="give them distinct names, or write without write_to_filename",
        )


def _refuse_shared_outputs(file_names: list[str], fmt: str) -> None:
    # a.jsonl and a.jsonl.gz both become a.parquet: refused before writing, as in the CLI's planning.
    refuse_output_clashes(
        ((name, output_name(name, fmt)) for name in file_names),
        hint="give the input files distinct names (without their suffixes), or write without write_to_filename",
    )


class PartitionWriter:
    """Writes one partition; returns (output name, name written, file name) for each file written. With a
    file name column, each name's rows go to a part file of the write `token` (see `assembly`). Given the
    input files the partition was read from, Parquet ones' columns keep their Arrow types in Parquet (where
    their dtypes still fit, see `io.parquet_types`) and their Map columns are objects in JSONL, as the
    driver writes them. Errors name the output file, never a part. Picklable."""

    def __init__(
        self,
        output_path: str,
        fmt: str,
        column: str | None,
        keep_filename_column: bool,
        partition_on: str | None,
        token: str | None = None,
    ):
        self.output_path = output_path
        self.fmt = fmt
        self.column = column
        self.keep_filename_column = keep_filename_column
        self.partition_on = partition_on
        self.token = token

    def __call__(
        self,
        part: Any,
        index: int,
        inputs: tuple[str, ...] | None = None,
    ) -> list[tuple[str, str, str]]:
        part = _to_pandas(part)
        if FILE_ROWS in part.attrs:  # the reader's note on this partition, not data (Parquet would keep it)
            part = part.copy(deep=False)  # a persisted partition keeps its note
            del part.attrs[FILE_ROWS]
        ext = OUTPUT_TYPES[self.fmt]
        source = _map_source(inputs or ())
        # Parquet: the columns keep the types they have in the partition's Parquet inputs (where they fit).
        types = input_types(inputs or ()) if self.fmt == "parquet" else None
        if self.partition_on:
            return self._write_partitioned(part, index, partition_file(index, ext), source, types)
        if not self.column:
            name = partition_file(index, ext)
            return [(name, self._write(part, index, 0, name, source, types), "")]
        nameless = int(part[self.column].isna().sum())
        if nameless:  # they would match no name: an empty "nan" file, and the rows lost
            raise DataLayoutError(
                f"{nameless} row(s) have no file name in column {self.column!r} (null), so write_to_filename "
                "cannot place them",
                hint=f"fill {self.column!r} for those rows, or write without write_to_filename",
            )
        present = list(part[self.column].unique())  # first-seen order
        _refuse_hidden_outputs(part[self.column], present, self.column, self.fmt)
        rows_of = {name: part[self.column] == name for name in present}  # boolean selection keeps row order
        # An input none of whose rows is left gets no file, as in NeMo: an empty one breaks directory readers.
        texts = {name: file_name_text(name, self.column) for name in present}
        _refuse_shared_outputs(list(texts.values()), self.fmt)  # before any write
        by_name = {os.path.basename(p): p for p in inputs or ()}
        names = []
        for file_name in present:
            rows = part[rows_of[file_name]]
            if not self.keep_filename_column:
                rows = rows.drop(columns=[self.column])
            text = texts[file_name]
            name = output_name(text, self.fmt)
            read_from = by_name.get(text, source)
            own_types = input_types([read_from]) if types is not None and text in by_name else types
            names.append((name, self._write(rows, index, len(names), name, read_from, own_types), text))
        return names

    def _write_partitioned(
        self, part: pd.DataFrame, index: int, base: str, source: str | None, types: dict | None
    ) -> list[tuple[str, str, str]]:
        names = []
        # observed=True: a categorical column (a read of value directories gives one) writes the values its
        # rows have, not an empty file for each of its other categories (pandas 2's default).
        for value, rows in part.groupby(self.partition_on, dropna=False, sort=False, observed=True):
            directory = value_dir(self.partition_on, value)
            if self.fmt == "parquet":  # the hive layout: the value lives in the directory name
                rows = rows.drop(columns=[self.partition_on])
            name = f"{directory}/{base}"
            names.append((name, self._write(rows, index, len(names), name, source, types), ""))
        return names

    def _write(
        self,
        rows: pd.DataFrame,
        index: int,
        position: int,
        name: str,
        source: str | None,
        types: dict | None = None,
    ) -> str:
        """Write output `name` (or its part, with a token); returns the name written. `types`: Parquet's
        column types to keep (see `write_frame`)."""
        written = part_name(self.token, index, position, name) if self.token else name
        path = os.path.join(self.output_path, written)
        if self.fmt == "pickle":
            data = rows.reset_index(drop=True)
            write_atomically(path, lambda f: pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL))
            return written
        try:
            write_frame(rows, path, self.fmt, source, types)
        except DataLayoutError as exc:  # it names the part written (hidden) or the input: name the output
            raise _naming_output(exc, source or path, os.path.join(self.output_path, name), source) from exc
        return written


def _map_source(inputs: tuple[str, ...]) -> str | None:
    """The input file whose Map column types a partition read from `inputs` is written with: the first
    with any (a partition is usually one file)."""
    return next((path for path in dict.fromkeys(inputs) if map_columns(path)), None)


def _naming_output(exc: DataLayoutError, named: str, output: str, source: str | None) -> DataLayoutError:
    """`exc` (a column that cannot be written, its message beginning `named: `) naming `output` instead,
    and the input the rows were read from where known."""
    message = str(exc).split("\nHINT: ")[0]
    message = message.removeprefix(f"{named}: ")
    read_from = f" (rows read from {source})" if source else ""
    return DataLayoutError(f"{output}{read_from}: {message}", hint=exc.hint)


def _to_pandas(part: Any) -> pd.DataFrame:
    return (
        part.to_pandas() if hasattr(part, "to_pandas") else part
    )  # cudf: the writers are pandas/pyarrow based
