"""Parquet files of one dataset brought to one schema: footers read, unified, the files that differ rewritten.

Files written apart each take the column types of their own rows (a field null in all of one file's rows is
typed null there, `1` and `1.5` give int64 and double, a key only in later files is a column only there), and
readers of the directory then fail to merge them or keep the first file's columns. `plan_schema` reads the
footers only (no data) and unifies them as the assembly of a file's pieces does
(`parquet_format.unify_schemas`); `conform_file` rewrites one file to the unified schema, streamed a row group
at a time, atomically (a kill leaves the old file or the new one, both whole). A column of no common type
(text in one file, int64 in another) is a `Clash`: nothing is rewritten. pyarrow is imported when used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.errors import DataLayoutError
from hpc_classify.io.parquet_format import ParquetFormat, unify_schemas
from hpc_classify.io.threaded_map import METADATA_THREADS, map_in_threads
from hpc_classify.io.writers import write_atomically

COMMON_METADATA = "_common_metadata"  # pyarrow's (and dask's) name for a dataset's schema, without rows
FILES_NAMED = 3  # files named per type of a clashing column


@dataclass(frozen=True)
class Clash:
    """A column whose types in different files have no common type that holds each value exactly."""

    column: str
    files_by_type: dict[str, list[str]]  # type -> up to FILES_NAMED of the files holding it
    reason: str = ""

    def describe(self) -> str:
        kinds = "; ".join(f"{kind} in {', '.join(files)}" for kind, files in self.files_by_type.items())
        return f"column {self.column!r}: {kinds}" + (f" ({self.reason})" if self.reason else "")

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "types": self.files_by_type, "reason": self.reason}


@dataclass
class SchemaPlan:
    """What the footers say: the unified schema (None on a clash), the files whose schema differs from it."""

    schema: Any = None
    to_rewrite: list[str] = field(default_factory=list)
    clashes: list[Clash] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why its footer could not be read
    stopped: bool = False  # a stop came before every footer was read: nothing else is planned
    read: int = 0  # footers read (all of them unless `stopped`)


def plan_schema(
    paths: Sequence[str], threads: int = METADATA_THREADS, stopped: Callable[[], bool] | None = None
) -> SchemaPlan:
    """Read each file's footer (`threads` at a time) and unify them; an unreadable footer is named and the file
    left out. The unified columns follow the first readable path's order, whatever order the reads end in.
    `stopped()`: asked as footers are taken; once true, no other is read and the plan is only `stopped`."""
    plan = SchemaPlan()
    schemas: dict[str, Any] = {}
    read = 0
    # strict=False: fewer results than paths after a stop
    for path, (schema, why) in zip(
        paths, map_in_threads(_read_schema, paths, threads, stopped), strict=False
    ):
        read += 1
        if schema is None:
            plan.unreadable[path] = why
        else:
            schemas[path] = schema
    plan.read = read
    if read < len(paths):
        return SchemaPlan(stopped=True, read=read)
    if not schemas:
        return plan
    first = next(iter(schemas.values()))
    # Unified over the distinct schemas only: 100,000 files of a corpus have a handful.
    distinct = list(dict.fromkeys(s.remove_metadata() for s in schemas.values()))
    try:
        plan.schema = unify_schemas([first, *distinct[1:]])
    except DataLayoutError:
        plan.clashes = type_clashes(schemas)
        return plan
    plan.to_rewrite = [p for p, s in schemas.items() if not s.equals(plan.schema, check_metadata=False)]
    return plan


def _read_schema(path: str) -> tuple[Any, str]:
    """(the footer's schema, "") or (None, why it could not be read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path), ""
    except (pa.ArrowException, OSError) as exc:
        return None, str(exc)


def type_clashes(schemas: dict[str, Any]) -> list[Clash]:
    """The columns of `schemas` (path -> schema) whose types have no common type, each naming its files."""
    import pyarrow as pa

    by_column: dict[str, dict[Any, list[str]]] = {}
    for path, schema in schemas.items():
        for f in schema:
            by_column.setdefault(f.name, {}).setdefault(f.type, []).append(path)
    clashes = []
    for name, files_by_type in by_column.items():
        try:
            pa.unify_schemas([pa.schema([(name, t)]) for t in files_by_type], promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
            named = {str(t): files[:FILES_NAMED] for t, files in files_by_type.items()}
            clashes.append(Clash(name, named, str(exc).splitlines()[0]))
    return clashes


def conform_file(
    path: str, schema: Any, before_rename: Callable[[], None] | None = None
) -> tuple[Clash | None, int]:
    """Rewrite `path` atomically with `schema`'s columns, order and types: (None, the bytes written, which the
    caller records without a stat of its own). A value the unified type cannot hold exactly (an int64 above
    2**53 where the column is double elsewhere) leaves the file as it is: (the Clash naming it, 0).
    `before_rename`: as `write_atomically`'s (the writer still owns the directory)."""
    written = []

    def write(out: Any) -> None:
        ParquetFormat().assemble([path], out, schema, source=path)
        written.append(out.tell())  # the whole file: the writer has closed, the file object stays open

    try:
        write_atomically(path, write, before_rename=before_rename)
    except DataLayoutError as exc:
        name, own = _lossy_column(path, schema)
        target = str(schema.field(name).type) if name else "the unified type"
        reason = f"values of {os.path.basename(path)} do not fit {target} exactly"
        clash = Clash(name or "?", {own: [path]} if name else {}, f"{reason}: {exc.args[0].splitlines()[0]}")
        return clash, 0
    return None, written[0]


def write_common_metadata(
    directory: str, schema: Any, before_rename: Callable[[], None] | None = None
) -> str:
    """`directory/_common_metadata`, the dataset's schema as pyarrow and dask read it, written atomically."""
    import pyarrow.parquet as pq

    path = os.path.join(directory, COMMON_METADATA)
    write_atomically(path, lambda out: pq.write_metadata(schema, out), before_rename=before_rename)
    return path


def remove_common_metadata(directory: str) -> bool:
    """Remove `directory/_common_metadata` (it no longer describes files about to change); whether it was there."""
    try:
        os.remove(os.path.join(directory, COMMON_METADATA))
    except FileNotFoundError:
        return False
    return True


def _lossy_column(path: str, schema: Any) -> tuple[str, str]:
    """(name, type in `path`) of the first column whose values do not all cast to `schema`'s type (("", "")
    if none is found)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, pre_buffer=False) as parquet:
        own = parquet.schema_arrow
        for name in own.names:
            if name not in schema.names or own.field(name).type == schema.field(name).type:
                continue
            for group in range(parquet.metadata.num_row_groups):
                try:
                    parquet.read_row_group(group, columns=[name]).column(0).cast(schema.field(name).type)
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    return name, str(own.field(name).type)
    return "", ""
