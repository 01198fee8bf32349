"""Find the document files of a corpus, deterministically, and name their outputs.

What a listing passes over (hidden and "_" names, `lost+found`, a run's failures.jsonl) and how it says so:
`skipped_names.py`. `lost+found` matters: only root may list it, so a corpus on a volume of its own would
otherwise be refused as unlistable.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.directory_walk import walk_relpaths
from hpc_classify.io.formats import (  # noqa: F401  (document_suffix, output_relpath: this module's API)
    SUPPORTED_SUFFIXES,
    document_suffix,
    output_relpath,
)
from hpc_classify.io.skipped_names import (
    first_names,
    is_bookkeeping,
    is_hidden,
    is_run_failures,
    is_run_failures_file,
    say_run_failures,
)

logger = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")


def is_glob(spec: str) -> bool:
    """Whether `spec` has glob characters (an existing path is still taken literally first)."""
    return bool(_GLOB_CHARS & set(spec))


@dataclass(frozen=True, order=True)
class InputFile:
    """An input document file: absolute path, and the relative path its output and marker take."""

    path: str
    relpath: str


def expand_inputs(
    specs: Sequence[str],
    earlier_relpaths: Mapping[str, str] | None = None,
    *,
    stats: dict[str, os.stat_result] | None = None,
) -> list[InputFile]:
    """Expand directories (recursively), files and globs into sorted, de-duplicated InputFiles.

    A directory's files get relpaths relative to it; a file or glob match gets its base name. Links to
    directories are followed, each directory read once: a link loop, or a directory reached by two paths
    (two links to it, a link to a directory also inside), is an InputFileError naming the paths.
    Raises InputFileError for a missing path, a glob/directory with no document files, or one file reached by
    two paths (links, hard links), and ConfigError when two different inputs would write to the same output
    relpath.

    A file under two specs (`d` and `d/sub`) is one input, under the longer relpath (`sub/x.jsonl`) whatever
    the specs' order, unless `earlier_relpaths` (path -> relpath, the stored plan's) gave it the other one:
    a resumed run must not rename an output it already wrote.

    `stats`, when given, receives each input's `os.stat` by path (taken to compare inodes): the planner's
    sizes and mtimes without a second stat per file.
    """
    if isinstance(specs, str):
        specs = [specs]
    by_path: dict[str, InputFile] = {}
    earlier = earlier_relpaths or {}
    for spec in specs:
        for item in _expand_one(spec):
            known = by_path.setdefault(item.path, item)
            if item.relpath != known.relpath and (
                earlier.get(item.path) == item.relpath
                or (earlier.get(item.path) != known.relpath and len(item.relpath) > len(known.relpath))
            ):
                by_path[item.path] = item
    inputs = sorted(by_path.values())
    _refuse_names_not_utf8(inputs)
    _refuse_files_reached_twice(inputs, {} if stats is None else stats)
    _check_unique_relpaths(inputs)
    return inputs


def absolute_spec(spec: str, base: str | None = None, *, exists: bool | None = None) -> str:
    """An --input spec that names the same inputs from any working directory: joined to `base` (None: the
    cwd; an absolute spec stays itself), no normalising (a glob's `..` stays the glob's), but an existing
    path, which discovery takes literally even with glob characters (`corp[1]`), made absolute as a path.
    `exists`: whether the joined spec is an existing path, where the caller knows (None: looked up)."""
    joined = os.path.join(os.getcwd() if base is None else base, spec)
    if exists is None:
        exists = os.path.exists(joined)
    return os.path.abspath(joined) if exists else joined


def _expand_one(spec: str) -> list[InputFile]:
    if os.path.isdir(spec):
        root = os.path.abspath(spec)
        found, others, hidden = [], [], []
        for rel in walk_relpaths(root, recurse=True, skipped=hidden):
            if document_suffix(rel) is None:
                others.append(rel)
            else:
                found.append(InputFile(os.path.join(root, rel), rel.replace(os.sep, "/")))
        if not found:
            raise InputFileError(spec, "directory holds no document files", hint=_suffix_hint())
        if others:  # said, never silent: a corpus of .ndjson or .txt files would be left out whole
            logger.warning(
                "%s: %d file(s) without a document suffix left out (%s); %s",
                spec,
                len(others),
                first_names(others),
                _suffix_hint(),
            )
        _say_hidden(spec, hidden)
        return found
    if os.path.exists(spec):
        if document_suffix(spec) is None:
            raise InputFileError(spec, "not a supported document file", hint=_suffix_hint())
        path = os.path.abspath(spec)
        return [InputFile(path, os.path.basename(path))]
    if is_glob(spec):
        matches = [m for m in glob.glob(spec, recursive=True) if _is_document_match(spec, m)]
        say_run_failures(spec, [m for m in matches if is_run_failures_file(m)], logger)
        matches = [m for m in matches if not is_run_failures_file(m)]
        if not matches:
            raise InputFileError(spec, "pattern matches no document files", hint=_suffix_hint())
        return [InputFile(os.path.abspath(m), os.path.basename(m)) for m in matches]
    raise InputFileError(spec, "no such file or directory", hint="check the --input path (and quote globs)")


def _say_hidden(spec: str, hidden: list[str]) -> None:
    """Hidden and "_" files with a document suffix, and such directories, are never read: said, with their
    count, as files of other suffixes are (a corpus of `_part-0001.jsonl` shards was left out unseen)."""
    say_run_failures(spec, hidden, logger)
    meant = [
        rel
        for rel in hidden
        if not is_bookkeeping(rel)
        and not is_run_failures(rel)
        and (rel.endswith(os.sep) or document_suffix(rel))
    ]
    if meant:
        logger.warning(
            "%s: %d hidden or '_'-prefixed name(s) left out (%s): names starting with '.' or '_' are never "
            "read from a directory; rename them, or give such a file as an input by its own path",
            spec,
            len(meant),
            first_names(meant),
        )


def _is_document_match(pattern: str, match: str) -> bool:
    """A glob match that is a document file not inside hidden/bookkeeping dirs below the fixed prefix."""
    if not os.path.isfile(match) or document_suffix(match) is None:
        return False
    fixed = os.path.dirname(pattern[: min(pattern.find(c) for c in _GLOB_CHARS if c in pattern)])
    below = os.path.relpath(match, fixed or ".")
    return not any(is_hidden(part) for part in below.split(os.sep))


def _refuse_names_not_utf8(inputs: list[InputFile]) -> None:
    """A path with bytes that are not UTF-8 (a Latin-1 `café.jsonl`) cannot be written into the plan, the
    markers or the failure log (JSON): refused before the run, named, rather than a traceback from the plan."""
    for item in inputs:
        try:
            item.path.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(item.path).decode("utf-8", errors="backslashreplace")
            raise InputFileError(
                shown,
                "this input's name is not valid UTF-8: the run's plan and completion markers cannot record it",
                hint="rename it to UTF-8 (e.g. `convmv -f latin1 -t utf8 --notest FILE`), or move it out of the "
                "inputs",
            ) from None


def _refuse_files_reached_twice(inputs: list[InputFile], stats: dict[str, os.stat_result]) -> None:
    """One file under two paths (a link to a file beside it, a hard link, a file given once by a linked
    path): its documents would be classified and written twice, under two outputs. Each stat is kept in
    `stats` by path."""
    seen: dict[tuple[int, int], str] = {}
    for item in inputs:
        try:
            stat = os.stat(item.path)
        except OSError as error:
            raise InputFileError(
                item.path, f"cannot read this input file's status ({error.strerror})"
            ) from error
        stats[item.path] = stat
        first = seen.setdefault((stat.st_dev, stat.st_ino), item.path)
        if first != item.path:
            links = [p for p in (first, item.path) if os.path.islink(p)]
            plural = "s" if len(links) > 1 else ""
            how = (
                f"the symbolic link{plural} {', '.join(links)}"
                if links
                else "a hard link or a linked directory on the way"
            )
            raise InputFileError(
                item.path,
                f"the same file as {first}, reached again through {how}: its documents would be classified "
                "and written twice",
                hint="keep one path to each file among the inputs: remove the extra link, or give as inputs "
                "only the paths you mean to classify",
            )


def _check_unique_relpaths(inputs: list[InputFile]) -> None:
    seen: dict[str, str] = {}
    for item in inputs:
        other = seen.setdefault(item.relpath, item.path)
        if other != item.path:
            raise ConfigError(
                f"inputs {other} and {item.path} would both write output {item.relpath!r}",
                hint="pass their common parent directory instead of the files or globs, or rename one",
            )


def _suffix_hint() -> str:
    return f"supported files end with {', '.join(SUPPORTED_SUFFIXES)}"
