"""`separate_by_metadata` of a directory of JSON Lines files to JSON Lines, line by line, as NeMo Curator
0.7.1 does it: each `.<input_type>` file under the directory (subdirectories included) is written to
`output_dir/<value>/<its path under the directory>`, each line as `json.dumps` gives its object.

Unlike NeMo's (`write_record`, docs/nemo-differences.md): `remove_metadata` drops the field (NeMo keeps it on
this path); a line that is not a JSON object, or lacks the field or has it null (unless `include_values` is
given: then such a line is simply not included), is an error naming the file and line (NeMo drops the line
silently); a value names its directory as `str` gives it (NeMo: a TypeError for a number); each output is
written whole, atomically, replacing an earlier one (NeMo appends, so a second run doubles the rows). One
task per file, run on the active Dask client if there is one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import dask

from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.nemo_file_helpers import merge_counts
from hpc_classify.io.nemo_files import get_all_files_paths_under
from hpc_classify.io.rows import parse_line
from hpc_classify.io.writers import write_atomically


def value_directory(value: Any, field: str) -> str:
    """The directory of a metadata value: `str(value)` (NeMo's `os.path.join(output_dir, value)`, which
    takes only strings). One that would not be one directory under `output_dir` is a ConfigError."""
    text = str(value)
    if text in ("", ".", "..") or "/" in text or "\0" in text:
        raise ConfigError(
            f"the value {text!r} of {field!r} cannot name a directory under output_dir",
            hint=f"replace such values in {field!r} before separating (a `/` would write elsewhere)",
        )
    return text


def separate_jsonl_files(
    input_dir: str,
    output_dir: str,
    field: str,
    remove_metadata: bool,
    input_type: str,
    include_values: Sequence[Any] | None,
    exclude_values: Sequence[Any] | None,
) -> dict:
    """Write each file's lines under their values' directories; returns {value: lines written}."""
    root = os.path.abspath(input_dir)
    paths = [p for p in get_all_files_paths_under(input_dir) if p.endswith(f".{input_type}")]
    task = dask.delayed(_separate_file, pure=False)
    options = (output_dir, field, remove_metadata, include_values, exclude_values)
    counts: dict = {}
    for file_counts in dask.compute(
        *[task(p, os.path.relpath(os.path.abspath(p), root), *options) for p in paths]
    ):
        merge_counts(counts, file_counts)
    return counts


def _separate_file(
    path: str,
    relpath: str,
    output_dir: str,
    field: str,
    remove_metadata: bool,
    include_values: Sequence[Any] | None,
    exclude_values: Sequence[Any] | None,
) -> dict:
    lines_of: dict[str, list[str]] = {}
    counts: dict = {}
    for lineno, record in _records(path):
        value = record.get(field)
        if value is None:
            if include_values:
                continue  # not among the values asked for
            raise InputFileError(
                path,
                f"no value in field {field!r} ({'null' if field in record else 'missing'}): no directory to write it to",
                line=lineno,
                hint=f"give every line a {field!r}, or pass include_values to keep only some values",
            )
        if isinstance(value, (list, dict)):
            raise InputFileError(
                path,
                f"field {field!r} holds a {type(value).__name__}, not a value to name a directory",
                line=lineno,
            )
        if (exclude_values and value in exclude_values) or (include_values and value not in include_values):
            continue
        directory = value_directory(value, field)
        if remove_metadata:
            del record[field]
        lines_of.setdefault(directory, []).append(json.dumps(record) + "\n")
        counts[value] = counts.get(value, 0) + 1
    rel_dir, name = os.path.split(relpath)
    for directory, lines in lines_of.items():
        data = "".join(lines).encode("utf-8")
        write_atomically(
            os.path.join(output_dir, directory, rel_dir, name), lambda f, data=data: f.write(data)
        )
    return counts


def _records(path: str):
    """(line number, JSON object) of each line that is not blank; a byte order mark opening the file is set
    aside. Anything else is an InputFileError naming the line (NeMo drops it)."""
    lineno = 0
    try:
        with open(path, encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, 1):  # noqa: B007 (named in the decoding error below)
                if not line.strip():
                    continue
                # The readers' judgement of a row (too deep or too long an integer included: bare
                # RecursionError/ValueError before).
                record, problem = parse_line(line.encode("utf-8"))
                if problem is not None:
                    raise InputFileError(path, problem, line=lineno)
                yield lineno, record
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not UTF-8 text ({exc.reason})", line=lineno + 1) from None
