"""NeMo Curator 0.7.1's file helpers, with NeMo's signatures, order and rules: listing a directory
(`get_all_files_paths_under`, `filter_files_by_extension`: the run's own listing is discovery.expand_inputs),
and resuming by output files (`get_remaining_files`, `get_batched_files`, `expand_outdir_and_mkdir`; NeMo's
inference scripts import them).

What counts as done is an output file whose name is an input's (its extension swapped when the types differ):
the files our writers make are written to a temp file and renamed, so an output file that exists is complete;
the temp files of a write that was stopped are not outputs and count for nothing.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence

from hpc_classify.errors import ConfigError, MissingInputFileError, NotADirectoryInputError
from hpc_classify.io.directory_walk import walk_relpaths
from hpc_classify.io.skipped_names import (  # noqa: F401  (BOOKKEEPING_NAMES, QUARANTINE_SUFFIX: this module's API)
    BOOKKEEPING_NAMES,
    QUARANTINE_SUFFIX,
    first_names,
    is_bookkeeping,
    is_run_failures,
    say_run_failures,
)
from hpc_classify.io.writers import is_temp_file
from hpc_classify.whole_numbers import is_whole_number

logger = logging.getLogger(__name__)

_ROOT_HINT = "pass the directory that holds the corpus files"


def get_all_files_paths_under(
    root: str,
    recurse_subdirectories: bool = True,
    followlinks: bool = False,
    keep_extensions: str | Sequence[str] | None = None,
) -> list[str]:
    """All files under `root` (sorted), optionally only those ending with one of `keep_extensions`
    (NeMo Curator's signature; `followlinks` enters linked directories: a link loop, or a directory reached
    twice, is then an InputFileError naming the paths, where NeMo lists the files again under each path).

    `keep_extensions` as NeMo's `filter_files_by_extension`: with or without the dot, case-sensitive, several
    parts allowed ("jsonl.gz"). Hidden and "_"-prefixed files and directories are skipped (NeMo lists them):
    a warning gives their count and first names; so is a run's failures.jsonl beside its `_markers/`.

    A `root` that is not a directory (missing, or a file) lists nothing, as NeMo's `os.walk` does, with a
    warning; without recursion it is a FileNotFoundError or NotADirectoryError, as NeMo's `os.scandir`.
    """
    if not os.path.isdir(root):
        return _no_directory(root, recurse_subdirectories)
    if keep_extensions is not None and not isinstance(keep_extensions, str):
        keep_extensions = list(keep_extensions)  # read twice below: an iterator would be spent on the first
    skipped: list[str] = []
    paths = sorted(
        os.path.join(root, rel) for rel in walk_relpaths(root, recurse_subdirectories, followlinks, skipped)
    )
    say_run_failures(root, [rel for rel in skipped if _worth_saying(rel, keep_extensions)], logger, nemo=True)
    unexpected = [rel for rel in skipped if _worth_saying(rel, keep_extensions) and not is_run_failures(rel)]
    if unexpected:
        logger.warning(
            "%s: %d hidden or '_'-prefixed name(s) skipped, not listed (%s); NeMo would list them",
            root,
            len(unexpected),
            first_names(unexpected),
        )
    return paths if keep_extensions is None else filter_files_by_extension(paths, keep_extensions)


def _no_directory(root: str, recurse_subdirectories: bool) -> list[str]:
    """NeMo's answer for a root that is no directory: `os.walk` lists nothing, `os.scandir` (no recursion)
    raises. The empty list is said: a mistyped path would otherwise look like an empty corpus."""
    missing = not os.path.exists(root)
    what = "no such directory" if missing else "not a directory"
    if not recurse_subdirectories:
        error = MissingInputFileError if missing else NotADirectoryInputError
        raise error(root, what, hint=_ROOT_HINT)
    logger.warning("%s: %s: no files listed (as NeMo's os.walk); %s", root, what, _ROOT_HINT)
    return []


def _worth_saying(relpath: str, keep_extensions: str | Sequence[str] | None) -> bool:
    """A skipped name a user may have meant to list: not bookkeeping (ours, temp files, other tools'), and,
    with `keep_extensions`, a file they would keep (a directory may hold such files)."""
    if is_bookkeeping(relpath):
        return False
    if keep_extensions is None or relpath.endswith(os.sep):
        return True
    return os.path.basename(relpath).endswith(dotted_extensions(keep_extensions))


def dotted_extensions(extensions: str | Sequence[str]) -> tuple[str, ...]:
    """Extensions with their dot ("jsonl" and ".jsonl" alike), as NeMo's file helpers take them."""
    listed = [extensions] if isinstance(extensions, str) else extensions
    return tuple(e if e.startswith(".") else "." + e for e in listed)


def filter_files_by_extension(files_list: Sequence[str], keep_extensions: str | Sequence[str]) -> list[str]:
    """The files of `files_list` (in order) whose names end with one of `keep_extensions` ("jsonl" or
    ".jsonl"; case-sensitive, as NeMo's); a warning when any is left out, as NeMo's."""
    suffixes = dotted_extensions(keep_extensions)
    kept = [f for f in files_list if f.endswith(suffixes)]
    if len(kept) != len(files_list):
        warnings.warn(
            f"Skipped {len(files_list) - len(kept)} of {len(files_list)} file(s) not ending with "
            f"{' or '.join(suffixes)} (case-sensitive)",
            stacklevel=2,
        )
    return kept


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
