"""NeMo Curator 0.7.1's `separate_by_metadata` and `write_dataframe_by_meta`: a dataset's rows written under
`output_dir/<value>/`, one directory per value of a metadata column (a classifier's label: each domain to its
own folder), and the number of rows of each value.

As NeMo's: in each value's directory one file per value of the file name column, named `Path(name).stem` and
the format's suffix (see `output_names`), without the file name column, and without the metadata column with
`remove_metadata`; `include_values` keeps only those values, else `exclude_values` leaves those out (an empty
list: no filter); the counts are those of the values written, merged across partitions by `merge_counts`; a
categorical column's unused categories count 0 and get an empty directory (NeMo's `value_counts`).
A directory of JSON Lines files to JSON Lines goes line by line (`metadata_files`).

Where NeMo loses rows or fails unclearly, ours differs (docs/nemo-differences.md): a file name in several
partitions is one file of all their rows (NeMo: the last partition's overwrite the others); null values are
an error unless `include_values` is given (NeMo drops those rows); a value is its directory's name as `str`
gives it (NeMo: a TypeError for a number), and a value that cannot name one directory (`""`, `.`, `..`, a `/`)
is an error (NeMo writes into `output_dir` itself, its parent or elsewhere). A Dask DataFrame is written when
`separate_by_metadata` is called (NeMo: when its result is computed); the result is a Delayed of the counts.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Sequence
from typing import Any

import dask
import dask.dataframe as dd

from hpc_classify.datasets.assembly import remove_parts
from hpc_classify.datasets.metadata_files import separate_jsonl_files, value_directory
from hpc_classify.datasets.reading import read_data
from hpc_classify.datasets.writing import PartitionWriter, finish_file_name_write
from hpc_classify.errors import ArgumentTypeError, ConfigError, DataLayoutError
from hpc_classify.io.nemo_file_helpers import merge_counts
from hpc_classify.io.nemo_files import expand_outdir_and_mkdir, get_all_files_paths_under
from hpc_classify.io.output_clashes import refuse_output_clashes

logger = logging.getLogger(__name__)

META_OUTPUT_TYPES = ("jsonl", "parquet", "pickle")
JSON_TYPES = ("json", "jsonl")


def separate_by_metadata(
    input_data: dd.DataFrame | str,
    output_dir: str,
    metadata_field: str,
    remove_metadata: bool = False,
    output_type: str = "jsonl",
    input_type: str = "jsonl",
    include_values: list[str] | None = None,
    exclude_values: list[str] | None = None,
    filename_col: str = "file_name",
) -> Any:
    """Write the rows of `input_data` (a Dask DataFrame or DocumentDataset with a `filename_col`, or a
    directory of `input_type` files) under `output_dir/<value of metadata_field>/`; returns a Delayed of
    {value: rows written}. See the module docstring."""
    if include_values is not None and exclude_values is not None:  # NeMo prints this and returns None
        raise ConfigError(
            "include_values and exclude_values are mutually exclusive", hint="give one of them, or neither"
        )
    if output_dir is None:
        raise ConfigError(
            "separate_by_metadata needs an output_dir", hint="give the directory to write under"
        )
    output_dir = expand_outdir_and_mkdir(output_dir or ".")  # NeMo's "": the working directory
    if isinstance(input_data, (str, os.PathLike)):
        input_dir = os.fspath(input_data)
        logger.info("reading %s files from %s", input_type, input_dir)
        if input_type in JSON_TYPES and output_type in JSON_TYPES:
            counts = separate_jsonl_files(
                input_dir,
                output_dir,
                metadata_field,
                remove_metadata,
                input_type,
                include_values,
                exclude_values,
            )
            return dask.delayed(functools.reduce)(merge_counts, [counts])
        input_data = read_data(
            get_all_files_paths_under(input_dir),
            file_type=input_type,
            backend="pandas",
            add_filename=filename_col,
        )
    frame = getattr(input_data, "df", input_data)
    if not isinstance(frame, dd.DataFrame):
        raise ArgumentTypeError(
            f"input_data must be a directory, a Dask DataFrame or a DocumentDataset, not {type(input_data).__name__}",
            hint="for a pandas frame, DocumentDataset.from_pandas(frame) first",
        )
    spec = _MetaSplit(
        output_dir, metadata_field, remove_metadata, output_type, include_values, exclude_values, filename_col
    )
    _check_columns(spec, frame.columns)
    split = dask.delayed(spec, pure=False)
    tasks = [split(part, index) for index, part in enumerate(frame.to_delayed())]
    try:
        results = dask.compute(*tasks)
    except BaseException:
        remove_parts(output_dir, spec.token)
        raise
    spec.finish([written for _, written in results])
    return dask.delayed(functools.reduce)(merge_counts, [counts for counts, _ in results])


def write_dataframe_by_meta(
    df: Any,
    output_dir: str,
    metadata_field: str,
    remove_metadata: bool = False,
    output_type: str = "jsonl",
    include_values: list[str] | None = None,
    exclude_values: list[str] | None = None,
    filename_col: str = "file_name",
) -> dict:
    """One pandas (or cuDF) frame's rows written under `output_dir/<value>/` (see the module docstring);
    returns {value: rows written}."""
    spec = _MetaSplit(
        output_dir, metadata_field, remove_metadata, output_type, include_values, exclude_values, filename_col
    )
    _check_columns(spec, df.columns)
    try:
        counts, written = spec(df, 0)
    except BaseException:
        remove_parts(spec.output_dir, spec.token)
        raise
    spec.finish([written])
    return counts


class _MetaSplit:
    """Writes one partition's rows under their values' directories (parts of the write `token`, see
    `assembly`); `finish` joins every partition's parts. Picklable."""

    def __init__(
        self,
        output_dir: str,
        field: str,
        remove_metadata: bool,
        output_type: str,
        include_values: Sequence[Any] | None,
        exclude_values: Sequence[Any] | None,
        filename_col: str,
    ):
        if output_type not in META_OUTPUT_TYPES:
            raise ConfigError(
                f"output_type must be one of {', '.join(META_OUTPUT_TYPES)}, not {output_type!r}",
                hint="json is written as jsonl" if output_type == "json" else None,
            )
        self.output_dir = os.fspath(output_dir)
        self.field = field
        self.remove_metadata = remove_metadata
        self.output_type = output_type
        self.include_values = include_values
        self.exclude_values = exclude_values
        self.filename_col = filename_col
        self.token = secrets.token_hex(4)

    def __call__(self, part: Any, index: int) -> tuple[dict, list[tuple[str, list]]]:
        part = part.to_pandas() if hasattr(part, "to_pandas") else part
        values = part[self.field]
        nulls = int(values.isna().sum())
        if nulls and not self.include_values:  # NeMo: value_counts leaves them out, and so loses them
            raise DataLayoutError(
                f"{nulls} row(s) have no value in column {self.field!r} (null): no directory to write them to",
                hint=f"fill them (df[{self.field!r}].fillna('unknown')), drop them, or pass include_values",
            )
        # A categorical column's unused categories count 0 and get an empty folder, as NeMo's value_counts.
        counts = values.value_counts(sort=True).to_dict()
        if self.include_values:
            counts = {k: v for k, v in counts.items() if k in self.include_values}
        elif self.exclude_values:
            counts = {k: v for k, v in counts.items() if k not in self.exclude_values}
        directories = {value: value_directory(value, self.field) for value in counts}  # all checked first
        written = []
        for value, directory in directories.items():
            if not counts[value]:
                os.makedirs(os.path.join(self.output_dir, directory), exist_ok=True)
                continue
            rows = part[(values == value).fillna(False).to_numpy(dtype=bool)]  # null: not this value
            if self.remove_metadata:
                rows = rows.drop(columns=[self.field])
            writer = PartitionWriter(
                os.path.join(self.output_dir, directory),
                self.output_type,
                self.filename_col,
                False,
                None,
                self.token,
            )
            written.append((directory, writer(rows, index)))
        return counts, written

    def finish(self, partitions: list[list[tuple[str, list]]]) -> None:
        """Each value directory's files from its parts, in partition order. Two file names of one output in a
        directory are refused before any is finished."""
        by_directory: dict[str, list] = {}
        for written in partitions:
            for directory, entries in written:
                by_directory.setdefault(directory, []).extend(entries)
        try:
            for entries in by_directory.values():
                refuse_output_clashes(
                    ((source, name) for name, _, source in entries),
                    hint="give the rows distinct file names (without their suffixes)",
                )
            for directory, entries in by_directory.items():
                path = os.path.join(self.output_dir, directory)
                finish_file_name_write(path, entries, self.output_type, self.token)
        except BaseException:
            remove_parts(self.output_dir, self.token)
            raise


def _check_columns(spec: _MetaSplit, columns: Any) -> None:
    """NeMo: a KeyError or AssertionError when the write runs; here before anything is written."""
    for column, what in ((spec.field, "metadata_field"), (spec.filename_col, "filename_col")):
        if column not in columns:
            raise ConfigError(
                f"{what}={column!r} is not a column (columns: {', '.join(map(str, columns))})",
                hint="read the data with add_filename=True for a file name column"
                if what == "filename_col"
                else None,
            )
    if spec.remove_metadata and spec.field == spec.filename_col:
        raise ConfigError(
            f"remove_metadata would drop {spec.field!r}, the file name column",
            hint="keep the metadata column, or name the files by another column (filename_col=)",
        )
