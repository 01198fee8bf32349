"""One output file per input file name, whatever the partitions: parts written per partition, then joined.

With `write_to_filename`, a file name can be in several partitions (a file read in pieces with `blocksize`,
a repartitioned dataset). Each partition writes its rows for a name to a hidden part file; once every
partition has written, each name's parts are joined in partition order (so rows keep their order) into the
final file, atomically, and the parts removed. A name in one partition only: its part is simply renamed.
Parquet writes without `write_to_filename` go through parts too, so that every file gets one schema.
Part names are temp names (`hpc_classify.io.writers.is_temp_file`) ending with the output's own name, so
compression by suffix applies to them too, and a crash leaves nothing under a final name.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import BinaryIO

import pandas as pd

from hpc_classify.io.formats import output_format
from hpc_classify.io.writers import TEMP_MARKER, write_atomically

PART_MARK = f"{TEMP_MARKER}part."


def part_name(token: str, index: int, position: int, name: str) -> str:
    """The hidden part of output `name` (in its directory) written by partition `index` (its `position`-th
    file) of the write `token`."""
    directory, base = os.path.split(name)
    return os.path.join(directory, f".{token}-{index:06d}-{position}{PART_MARK}{base}")


def finish_outputs(output_path: str, written: Sequence[tuple[str, str]], fmt: str) -> list[str]:
    """Turn (final name, part name) pairs, in partition order, into the final files; returns their names.
    Parquet outputs all get one schema (parts written apart can differ: a column all null in one, text in
    another), so that the directory reads as one dataset."""
    parts_of: dict[str, list[str]] = {}
    for name, part in written:
        parts_of.setdefault(name, []).append(os.path.join(output_path, part))
    document_format = None if fmt == "pickle" else output_format(fmt)
    schema = None
    if fmt == "parquet":
        schema = document_format.common_schema([p for parts in parts_of.values() for p in parts])
    for name, parts in parts_of.items():
        final = os.path.join(output_path, name)
        if len(parts) == 1 and (schema is None or document_format.has_schema(parts[0], schema)):
            os.replace(parts[0], final)
            continue
        if fmt == "pickle":
            write_atomically(final, lambda f, parts=parts: _join_pickles(parts, f))
        elif schema is not None:
            write_atomically(final, lambda f, parts=parts: document_format.assemble(parts, f, schema))
        else:
            write_atomically(final, lambda f, parts=parts: document_format.assemble(parts, f))
        for part in parts:
            os.remove(part)
    return list(parts_of)


def remove_parts(output_path: str, token: str) -> None:
    """Remove the parts of the write `token` after a failure. Best effort: a partition still being written
    when another failed may add its part afterwards (a hidden temp file, never a final name)."""
    prefix = f".{token}-"
    for directory, _, entries in os.walk(output_path):
        for entry in entries:
            if entry.startswith(prefix) and PART_MARK in entry:
                os.remove(os.path.join(directory, entry))


def _join_pickles(parts: list[str], out: BinaryIO) -> None:
    frame = pd.concat([pd.read_pickle(p) for p in parts], ignore_index=True)
    pickle.dump(frame, out, protocol=pickle.HIGHEST_PROTOCOL)
