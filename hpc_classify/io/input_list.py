"""`--input-list FILE`: a manifest of inputs, one `--input` spec (file, directory or glob) per line.

Blank lines and lines starting with `#` are skipped, surrounding whitespace is stripped, a leading `~` or
`~user` is expanded (as the shell does for `--input ~/x`), and a relative
path is read from the list file's own directory (a list written on a login node names the same inputs from
any working directory). Each entry becomes the absolute spec `--input` would store for it in the plan
(io/discovery.absolute_spec), so a list and the equivalent `--input` flags give the same plan, the same
output names and the same resume.

Every entry is checked here, so that a stale line is named by list file and line number (and refused on
the login node by `submit`) rather than by its path alone once the run has started.
"""

from __future__ import annotations

import glob
import os

from hpc_classify.errors import InputFileError
from hpc_classify.io.discovery import absolute_spec, is_glob

_NO_STDIN_HINT = (
    "write the list to a file and pass its path: a requeued or resumed job reads its inputs again, "
    "and standard input is gone by then"
)


def read_input_list(path: str, *, check_entries: bool = True) -> list[str]:
    """The absolute input specs that the list file `path` names, in its order. InputFileError (exit 2)
    naming `path` (and the line, where one is at fault) for an unreadable or empty list, a line that is
    not UTF-8, or an entry that names nothing. `check_entries=False` looks nothing up: a job's other
    nodes read the list for the run's settings and never its inputs (100 nodes each stat'ing a 100,000-line
    list would be ten million metadata requests, and a glob briefly matching nothing there would fail a
    node that never reads the files)."""
    if path == "-":
        raise InputFileError(
            path, "an input list is read from a file, not from standard input", hint=_NO_STDIN_HINT
        )
    try:
        with open(path, "rb") as f:
            # A byte-order mark (a list saved by a Windows editor) is no part of the first entry's name.
            raw_lines = f.read().removeprefix(b"\xef\xbb\xbf").splitlines()
    except OSError as error:
        raise InputFileError(
            path,
            f"cannot read this input list ({error.strerror or error})",
            hint="check the --input-list path (a relative one is taken from the current directory)",
        ) from error
    base = os.path.dirname(os.path.abspath(path))
    specs = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            entry = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InputFileError(
                path, "this line is not valid UTF-8", line=number, hint="write the list as UTF-8"
            ) from None
        if entry and not entry.startswith("#"):
            specs.append(_spec_of(entry, base, path, number, check_entries))
    if not specs:
        raise InputFileError(
            path,
            "this input list names no input (only blank lines and # comments)",
            hint="check the step that wrote it; list one file, directory or glob per line",
        )
    return specs


def _spec_of(entry: str, base: str, path: str, number: int, check: bool) -> str:
    # `~/x`, `~user/x`: what the shell does for a flag, nothing did for a list.
    entry = os.path.expanduser(entry)
    spec = os.path.join(base, entry)  # an absolute entry stays itself
    entry_is_glob = is_glob(entry)
    if not check:  # looks nothing up: what the check returns for an entry that exists
        return absolute_spec(entry, base, exists=not entry_is_glob)
    # Taken literally where it exists, as discovery does, even with glob characters (`corp[1]`).
    exists = os.path.exists(spec)
    if exists or (entry_is_glob and next(glob.iglob(spec, recursive=True), None) is not None):
        return absolute_spec(entry, base, exists=exists)
    what = "pattern matches nothing" if entry_is_glob else "no such file or directory"
    where = "" if os.path.isabs(entry) else f" (relative paths are read from the list's directory, {base})"
    raise InputFileError(
        path,
        f"{entry}: {what}{' at ' + spec if spec != entry else ''}",
        line=number,
        hint=f"correct or delete this line of the list{where}, then rerun",
    )
