"""Which files (or pieces of files) form each partition of a dataset read from files.

`files_per_partition=N` takes N consecutive files; `blocksize` packs consecutive files up to that many bytes
on disk, and, where `split` allows (the pandas backend, as NeMo), cuts a file larger than `blocksize` into
pieces of about that size, one partition each (`hpc_classify.io.pieces` decides how a file is cut: plain
JSONL at line starts, Parquet by row groups and row ranges; compressed JSONL cannot be cut up front and
stays whole). An explicit value beats the other's default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dask.utils import parse_bytes

from hpc_classify.errors import ConfigError, InputFileError, MissingInputFileError
from hpc_classify.io.pieces import Piece, is_streamed, plan_pieces
from hpc_classify.whole_numbers import is_whole_number


class DefaultStr(str):
    """A default the caller left in place, told apart from the same value passed on purpose."""


class DefaultInt(int):
    """See DefaultStr."""


DEFAULT_BLOCKSIZE = DefaultStr("1gb")
DEFAULT_FILES_PER_PARTITION = DefaultInt(1)


class SourceFiles(list):
    """The paths of the files behind each partition (a list of tuples), and the column add_filename filled
    with their base names (None without): they describe the output only when written by that column."""

    def __init__(self, groups: list[tuple[str, ...]], column: str | None):
        super().__init__(groups)
        self.column = column


@dataclass(frozen=True)
class FilePart:
    """A whole file (piece None) or one piece of it: what a partition reads, in order."""

    path: str
    piece: Piece | None = None


def partition_groups(
    paths: list[str], files_per_partition: int | None, blocksize: str | int | None, *, split: bool = False
) -> list[tuple[FilePart, ...]]:
    """The parts of each partition: N files at a time, or packed up to `blocksize` bytes (and, with `split`,
    a larger file cut into pieces of about `blocksize`); an explicit value beats a default."""
    if packs_by_size(files_per_partition, blocksize):
        return _pack_by_size(paths, _parse_blocksize(blocksize), split)
    if files_per_partition is None:
        return [(FilePart(path),) for path in paths]
    if not is_whole_number(files_per_partition, 1):
        raise ConfigError(f"files_per_partition must be an integer >= 1, not {files_per_partition!r}")
    step = int(files_per_partition)
    return [tuple(map(FilePart, paths[i : i + step])) for i in range(0, len(paths), step)]


def packs_by_size(files_per_partition: int | None, blocksize: str | int | None) -> bool:
    """Whether `blocksize` forms the partitions (else `files_per_partition`, or one file each)."""
    explicit_fpp = files_per_partition is not None and not isinstance(files_per_partition, DefaultInt)
    explicit_bs = blocksize is not None and not isinstance(blocksize, DefaultStr)
    if explicit_fpp and explicit_bs:
        raise ConfigError(
            f"blocksize={blocksize!r} and files_per_partition={files_per_partition!r} cannot both be set",
            hint="give one: files_per_partition=N reads N files per partition, blocksize packs files up to a size",
        )
    return blocksize is not None and not (files_per_partition is not None and explicit_fpp)


def _parse_blocksize(blocksize: str | int) -> int:
    try:
        limit = parse_bytes(blocksize)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"blocksize {blocksize!r} is not a size ({exc})", hint='e.g. "256MB" or "1gb"'
        ) from exc
    if limit <= 0:
        raise ConfigError(f"blocksize must be positive, not {blocksize!r}")
    return limit


def _pack_by_size(paths: list[str], limit: int, split: bool) -> list[tuple[FilePart, ...]]:
    groups: list[tuple[FilePart, ...]] = []
    current: list[FilePart] = []
    size = 0
    for path in paths:
        try:
            file_size = os.path.getsize(path)
        except FileNotFoundError as exc:
            raise MissingInputFileError(path, hint="check the input path") from exc
        except OSError as exc:
            raise InputFileError(
                path, f"cannot stat the file ({exc.strerror})", hint="check the input path"
            ) from exc
        if current and size + file_size > limit:
            groups.append(tuple(current))
            current, size = [], 0
        if split and file_size > limit and not is_streamed(path):
            groups.extend((FilePart(path, piece),) for piece in plan_pieces(path, file_size, limit))
            continue
        current.append(FilePart(path))
        size += file_size
    if current:
        groups.append(tuple(current))
    return groups
