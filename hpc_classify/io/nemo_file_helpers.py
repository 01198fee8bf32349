"""NeMo Curator 0.7.1's small helpers of `nemo_curator.utils.file_utils`, with its signatures and results:
`NEMO_CURATOR_HOME`, `mkdir`, `remove_path_extension`, `merge_counts`, `write_record` and
`parse_str_of_num_bytes` (which refuses the sizes NeMo misreads: see its docstring).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from hpc_classify.errors import ArgumentTypeError, ConfigError, InputFileError
from hpc_classify.io.rows import TOO_DEEP, nests_too_deep

NEMO_CURATOR_HOME = os.environ.get(
    "NEMO_CURATOR_HOME", os.path.join(os.path.expanduser("~"), ".nemo_curator")
)

SIZE_UNITS = "kmg"  # NeMo's: a power of 1024 each; "b" (or any other last character, in NeMo) is bytes
_SIZE_HINT = "write a number and a unit: K, M or G (powers of 1024), or B for bytes, e.g. '100M' or '512B'"


def mkdir(d: str | os.PathLike) -> None:
    """`d` and its parents made, if missing (NeMo's: `pathlib.Path(d).mkdir(parents=True, exist_ok=True)`)."""
    pathlib.Path(d).mkdir(parents=True, exist_ok=True)


def remove_path_extension(path: str | os.PathLike) -> str:
    """`path` without its last suffix, joined to its parent as NeMo's is (`a.jsonl` -> `./a`,
    `/d/a.tar.gz` -> `/d/a.tar`)."""
    p = pathlib.Path(path)
    return os.path.join(p.parent, p.stem)


def merge_counts(first: dict, second: dict) -> dict:
    """`second`'s counts added into `first` (changed in place, as NeMo's), which is returned."""
    for key, count in second.items():
        first[key] = first.get(key, 0) + count
    return first


def write_record(
    input_dir: str,
    file_name: str,
    line: str,
    field: str,
    output_dir: str,
    include_values: list[str] | None = None,
    exclude_values: list[str] | None = None,
) -> Any:
    """NeMo's: append the JSON `line` to `output_dir/<its field's value>/<file_name's path under input_dir>`
    and return the value; None (nothing written) for a line that is not JSON, lacks `field`, or whose value
    `include_values`/`exclude_values` leave out. The line is written as `json.dumps` gives it.
    `separate_by_metadata` does not use it here: it refuses such lines rather than drop them.

    A line nested more than `rows.MAX_JSON_DEPTH` levels is the readers' InputFileError, naming `file_name`
    (NeMo: a bare RecursionError from json, at a depth that depends on the caller's stack, or the row
    written, which the readers then refuse)."""
    try:
        record = json.loads(line)
    except RecursionError:
        raise _too_deep(file_name, line) from None
    except ValueError:  # not JSON (JSONDecodeError), or an integer past Python's digits: NeMo's None
        return None
    if isinstance(record, dict | list) and nests_too_deep(record):
        raise _too_deep(file_name, line)
    try:
        category = record[field]
        if (exclude_values and category in exclude_values) or (
            include_values and category not in include_values
        ):
            return None
        rel_path, base = os.path.split(os.path.relpath(file_name, start=os.path.abspath(input_dir)))
        directory = os.path.join(output_dir, category, rel_path)
        os.makedirs(directory, exist_ok=True)
        with open(f"{directory}/{base}", "a") as f:
            f.write(json.dumps(record) + "\n")
        return category
    except (KeyError, ValueError):
        return None


def _too_deep(file_name: str, line: str | bytes) -> InputFileError:
    start = line[:60] if isinstance(line, str) else line[:60].decode("utf-8", "replace")
    return InputFileError(
        file_name,
        f"{TOO_DEEP}: the line starting {start!r}",
        hint="flatten or remove that row (separate_by_metadata names its line number)",
    )


def parse_str_of_num_bytes(s: str, return_str: bool = False) -> str | int:
    """A size such as "100M" in bytes (`return_str`: `s` itself, once checked), as NeMo's: a number and a
    unit K, M or G (any case, powers of 1024: "1.5k" is 1536), or B for bytes.

    NeMo reads any last character as the unit and drops it, so "100" is 10 bytes and "10T" 10 bytes; those
    are a ValueError here, naming the size. An empty or non-finite size is a ValueError too, a non-string a
    TypeError (NeMo: IndexError, OverflowError, TypeError from inside)."""
    if not isinstance(s, str):
        raise ArgumentTypeError(f"a size must be a string such as '100M', not {s!r}", hint=_SIZE_HINT)
    unit = s[-1:].lower()
    if unit not in ("k", "m", "g", "b"):
        raise ConfigError(f"Invalid size: {s!r} has no unit", hint=_SIZE_HINT)
    try:
        size = float(s[:-1]) * 1024 ** (SIZE_UNITS.find(unit) + 1)
        number = int(size)
    except (ValueError, OverflowError):
        raise ConfigError(f"Invalid size: {s!r}", hint=_SIZE_HINT) from None
    return s if return_str else number
