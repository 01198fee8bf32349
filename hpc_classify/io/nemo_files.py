"""NeMo Curator 0.7.1's file helpers for resuming by output files: `get_remaining_files`, `get_batched_files`
and `expand_outdir_and_mkdir`, with NeMo's signatures, order and rules (NeMo's inference scripts import them).

What counts as done is an output file whose name is an input's (its extension swapped when the types differ):
the files our writers make are written to a temp file and renamed, so an output file that exists is complete;
the temp files of a write that was stopped are not outputs and count for nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from hpc_classify.errors import ConfigError
from hpc_classify.io.discovery import dotted_extensions
from hpc_classify.io.writers import is_temp_file
from hpc_classify.whole_numbers import is_whole_number


def expand_outdir_and_mkdir(outdir: str | os.PathLike) -> str:
    """`outdir` as an absolute path (`~` expanded), made with its parents if missing."""
    outdir = os.path.abspath(os.path.expanduser(os.fspath(outdir)))
    os.makedirs(outdir, exist_ok=True)
    return outdir


def get_remaining_files(
    input_file_path: str,
    output_file_path: str,
    input_file_type: str,
    output_file_type: str | None = None,
    num_files: int = -1,
) -> list[str]:
    """The files directly in `input_file_path` ending with `input_file_type` whose name is not in
    `output_file_path` (made if missing), sorted: those still to process. An output named as an input with
    `output_file_type` instead of `input_file_type` (`a.parquet` for `a.jsonl`) counts as that input done.

    `num_files` > 0: at most `num_files` minus the number of outputs already there (a cap on the total);
    -1 (or 0): all of them. `input_file_type="pickle"`: `[input_file_path]`, as NeMo's.
    Outputs are complete when they exist (see the module docstring), so, unlike NeMo's, no partial file is
    taken for a done one."""
    if not is_whole_number(num_files, -1):
        raise ConfigError(f"num_files must be a whole number >= -1 (-1 or 0: all files), not {num_files!r}")
    if input_file_type == "pickle":
        return [input_file_path]
    if not os.path.exists(output_file_path):
        expand_outdir_and_mkdir(output_file_path)
    with os.scandir(output_file_path) as entries:
        written = {e.name for e in entries if not is_temp_file(e.name)}
    done = _as_input_names(written, output_file_type, input_file_type)
    with os.scandir(input_file_path) as entries:
        names = [e.name for e in entries if e.name not in done and e.name.endswith(input_file_type)]
    remaining = sorted(os.path.join(input_file_path, name) for name in names)
    if num_files > 0:
        return remaining[: max(num_files - len(written), 0)]
    return remaining


def get_batched_files(
    input_file_path: str, output_file_path: str, input_file_type: str, batch_size: int = 64
) -> Iterator[list[str]]:
    """`get_remaining_files(input_file_path, output_file_path, input_file_type)` in lists of `batch_size`,
    listed when the first batch is asked for (a generator, as NeMo's)."""
    if not is_whole_number(batch_size, 1):
        raise ConfigError(f"batch_size must be a whole number of files >= 1, not {batch_size!r}")

    def batches() -> Iterator[list[str]]:
        files = get_remaining_files(input_file_path, output_file_path, input_file_type)
        for start in range(0, len(files), batch_size):
            yield files[start : start + batch_size]

    return batches()


def _as_input_names(names: set[str], output_type: str | None, input_type: str | None) -> set[str]:
    """Output names with the output extension swapped for the input's (unchanged when either is None)."""
    if output_type is None or input_type is None:
        return names
    old, new = dotted_extensions([output_type, input_type])
    if old == new:
        return names
    return {os.path.splitext(n)[0] + new if n.endswith(old) else n for n in names}
