"""The names a corpus listing passes over, and the warnings that say so.

Hidden files and names starting with "_" are never listed: they are our own bookkeeping (`_markers/`,
`_summary.json`, `_failures.ndjson`, `.x.tmp-…` temp files) or other tools' (`.DS_Store`, `_SUCCESS`). So is
`lost+found`, fsck's directory at the root of a file system. The failure log of an older version, `failures.jsonl`,
is passed over only where `_markers/` beside it says the directory is a run's output directory.

Every bookkeeping name of a run starts with "_" and ends in no document suffix (io/formats.py), so the output
directory reads as a dataset: `OUT/*.jsonl` globs, pyarrow/pandas/dask readers of `OUT` see only outputs. Both listings (`discovery.expand_inputs` and NeMo's
`nemo_files.get_all_files_paths_under`) decide by these functions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from hpc_classify.io.markers import MARKERS_DIRNAME
from hpc_classify.io.writers import is_temp_file

# What a run of ours leaves beside its outputs (the driver, report and cluster layers name these; a test
# holds them equal) and other tools' markers: skipped without a word. Other hidden or "_" names are said.
BOOKKEEPING_NAMES = frozenset(
    {"_markers", "_pieces", "_jobs", "_lock", "_plan.json", "_run.json", "_summary.json", "_failures.ndjson"}
    | {"_report.html", "_report.json", "_SUCCESS", "_metadata", "_common_metadata", ".DS_Store"}
)
# A run's bad rows beside an output, `_<output name>.quarantine` (driver/task.py writes them; JSON Lines, but
# no document suffix: `OUT/*.jsonl` must not match them). Older versions wrote `_<output name>.quarantine.jsonl`.
QUARANTINE_SUFFIX = ".quarantine"
LEGACY_QUARANTINE_SUFFIX = ".quarantine.jsonl"
QUARANTINE_SUFFIXES = (QUARANTINE_SUFFIX, LEGACY_QUARANTINE_SUFFIX)
# A run's failed files (driver/failures.py): JSON Lines, named out of every `*.jsonl` glob.
FAILURES_FILE = "_failures.ndjson"
# The failure log of older versions, beside `_markers/`: still read (status, report) and removed by a run.
# A listing skips it, with a warning, only where `_markers/` says the directory is a run's output directory.
RUN_FAILURES_FILE = "failures.jsonl"
_SHOWN = 3  # names a listing's warning shows


def first_names(names: Sequence[str]) -> str:
    """`names`, the first few of them: what a listing's warning shows."""
    return ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")


def is_hidden(name: str) -> bool:
    """A name no listing reads: hidden, "_"-prefixed, or fsck's lost+found."""
    return name.startswith((".", "_")) or name == "lost+found"


def is_bookkeeping(relpath: str) -> bool:
    """A skipped name nobody means to list: ours (markers, summary, quarantines, temp files) or other
    tools' (`_SUCCESS`, `.DS_Store`); `relpath` may end with os.sep (a directory)."""
    name = os.path.basename(relpath.rstrip(os.sep))
    return name in BOOKKEEPING_NAMES or name.endswith(QUARANTINE_SUFFIXES) or is_temp_file(name)


def is_run_failures(relpath: str) -> bool:
    """A name `walk_relpaths` skipped as an older run's failures.jsonl (elsewhere, that name is listed)."""
    return os.path.basename(relpath) == RUN_FAILURES_FILE


def say_run_failures(where: str, skipped: Sequence[str], log: logging.Logger, nemo: bool = False) -> None:
    """The warning for the run failures lists a listing of `where` skipped (among its `skipped` names)."""
    found = [rel for rel in skipped if is_run_failures(rel)]
    if found:
        log.warning(
            "%s: %d run failures list(s) left out (%s): the %s an hpc_classify run writes beside its "
            "_markers/ directory, not documents%s; to read one as documents, give it by its own path",
            where,
            len(found),
            first_names(found),
            RUN_FAILURES_FILE,
            " (NeMo would list them)" if nemo else "",
        )


def is_run_failures_file(path: str) -> bool:
    """`path` is a run's failures.jsonl: that name, beside a `_markers/` directory."""
    return is_run_failures(path) and os.path.isdir(os.path.join(os.path.dirname(path), MARKERS_DIRNAME))
