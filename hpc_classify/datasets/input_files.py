"""Which files a `read_data` call reads: the paths given, a directory's files (recursively, hidden ones
skipped), all of the one file type asked for."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from hpc_classify.errors import ArgumentTypeError, ConfigError, DataLayoutError
from hpc_classify.io.formats import known_format
from hpc_classify.io.nemo_files import get_all_files_paths_under

PICKLE_SUFFIXES = (".pkl", ".pickle")
FILE_TYPES = ("jsonl", "parquet", "pickle")


def file_type_of(path: str) -> str:
    lower = path.lower()
    document_format = known_format(lower)
    if document_format is not None:
        return document_format.name
    if lower.endswith(PICKLE_SUFFIXES):
        return "pickle"
    return os.path.splitext(lower)[1] or os.path.basename(path)


def list_input_files(input_files: str | Sequence[str], kind: str) -> list[str]:
    """Files in order; a directory's files (recursively, hidden ones skipped) must all be of `kind`."""
    input_files = _given_paths(input_files)
    paths: list[str] = []
    for item in input_files:
        if os.path.isdir(item):
            found = get_all_files_paths_under(item)
            _check_one_type(found, kind, f"directory {item}", listed=True)
            paths.extend(found)
        else:
            paths.append(item)  # a missing file raises InputFileError when read (the first one: right here)
    if not paths:
        raise ConfigError(f"no input files in {list(input_files)}", hint="check the path")
    _check_one_type(paths, kind, "the input files", listed=False)
    return paths


def _given_paths(input_files: object) -> list[str]:
    """A path, or an iterable of paths, as a list; anything else (a number, None) is refused by name, as NeMo
    does ("File input must be a string or list"), rather than failing on some later use of it."""
    if isinstance(input_files, str | os.PathLike):
        input_files = [input_files]
    if isinstance(input_files, Iterable) and not isinstance(input_files, bytes | Mapping):
        items = list(input_files)
        if all(isinstance(item, str | os.PathLike) for item in items):
            return [os.fspath(item) for item in items]
    raise ArgumentTypeError(
        f"File input must be a string or list (of paths), not {input_files!r:.200}",
        hint="pass a file or directory path, or a list of them",
    )


def _check_one_type(paths: list[str], kind: str, where: str, *, listed: bool) -> None:
    types = Counter(file_type_of(p) for p in paths)
    # Named files of one unknown suffix are read as `kind` (NeMo reads any suffix); listed ones must match.
    if not types or types.keys() == {kind}:
        return
    if not listed and len(types) == 1 and next(iter(types)) not in FILE_TYPES:
        return
    found = ", ".join(f"{n} {t}" for t, n in sorted(types.items()))
    example = next(p for p in paths if file_type_of(p) != kind)
    raise DataLayoutError(
        f"{where} holds files of several types or not {kind} ({found}, e.g. {example}): read_{kind} reads {kind} only",
        hint=f'select them with get_all_files_paths_under(dir, keep_extensions="{_extension(kind)}"), '
        "or keep each type in its own directory",
    )


def _extension(kind: str) -> str:
    return {"pickle": "pkl"}.get(kind, kind)
