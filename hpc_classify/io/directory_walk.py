"""Walk an input directory in a stable order, refusing what would lose or repeat files.

A directory that cannot be listed, and a directory reached a second time (a link loop, two links or a bind
mount to one directory), stop the walk with an InputFileError naming the path: os.walk alone skips the
first and repeats the second.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from hpc_classify.errors import InputFileError
from hpc_classify.io.markers import MARKERS_DIRNAME
from hpc_classify.io.skipped_names import RUN_FAILURES_FILE, is_hidden

_LOOP_HINT = (
    "remove or retarget the link: it points at a directory that holds it, so the files under it would be "
    "listed again and again under ever longer paths"
)


def walk_relpaths(
    root: str, recurse: bool, followlinks: bool = True, skipped: list[str] | None = None
) -> Iterator[str]:
    """Relative paths (with os.sep) of the non-hidden files under `root`, in a stable order; `skipped` (when
    given) collects the relative paths of the hidden files and directories left out.

    A directory that cannot be listed stops the walk with an InputFileError: skipping it would leave its
    files out of the run unseen (os.walk alone ignores it). So does a directory reached a second time (by
    its identity, st_dev and st_ino), which only links followed (or bind mounts) can do: a link loop would
    list every file under ever longer paths, and two ways to one directory would list its files twice."""
    seen: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unlistable, followlinks=followlinks):
        _visit_once(seen, root, dirpath)
        rel_dir = os.path.relpath(dirpath, root)
        # In a run's output directory (it holds _markers/), its failures.jsonl is no shard.
        ours = {RUN_FAILURES_FILE} if MARKERS_DIRNAME in dirnames else set()
        # Pruning in place stops os.walk from entering hidden dirs; sorting makes the walk deterministic.
        if skipped is not None:
            hidden = sorted(
                [d + os.sep for d in (dirnames if recurse else []) if is_hidden(d)]
                + [f for f in filenames if is_hidden(f) or f in ours]
            )
            skipped.extend(n if rel_dir == "." else os.path.join(rel_dir, n) for n in hidden)
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d)) if recurse else []
        if followlinks:
            _refuse_link_loops(dirpath, dirnames)
        for name in sorted(filenames):
            if not is_hidden(name) and name not in ours:
                yield name if rel_dir == "." else os.path.join(rel_dir, name)


def _unlistable(error: OSError) -> None:
    """os.walk's onerror: a directory it cannot list (no permission; EIO or ESTALE on NFS/Lustre)."""
    where = error.filename or "a directory"
    reason = error.strerror or str(error)
    code = f"{errno.errorcode[error.errno]}: " if error.errno in errno.errorcode else ""
    raise InputFileError(
        where,
        f"cannot list this input directory ({code}{reason}): its files would be left out",
        hint="make it readable (permissions, ACLs) or remount the file system if it is stale or failing, "
        "then rerun; or give only the directories you mean to read as inputs",
    ) from error


def _refuse_link_loops(dirpath: str, dirnames: list[str]) -> None:
    """A link to a directory that holds it (`..`, `/`) is a loop: named before anything under it is walked."""
    here = None
    for name in dirnames:
        link = os.path.join(dirpath, name)
        if not os.path.islink(link):
            continue
        here = here or os.path.realpath(dirpath)
        target = os.path.realpath(link)
        if _walk_comes_back(target, here):
            raise InputFileError(
                link,
                f"a directory loop: this symbolic link leads to {target}, which holds it",
                hint=_LOOP_HINT,
            )


def _walk_comes_back(target: str, here: str) -> bool:
    """Whether walking `target` reaches `here` again: it holds `here`, and no hidden directory (never
    entered) lies on the way down."""
    if here == target:
        return True
    if not here.startswith(target.rstrip(os.sep) + os.sep):
        return False
    return not any(is_hidden(part) for part in os.path.relpath(here, target).split(os.sep))


def _visit_once(seen: dict[tuple[int, int], str], root: str, dirpath: str) -> None:
    try:
        stat = os.stat(dirpath)
    except OSError as error:
        _unlistable(error)
    first = seen.setdefault((stat.st_dev, stat.st_ino), dirpath)
    if first == dirpath:
        return
    links = list(
        dict.fromkeys(p for p in _paths_below(root, first) + _paths_below(root, dirpath) if os.path.islink(p))
    )
    plural = "s" if len(links) > 1 else ""
    through = f"the symbolic link{plural} {', '.join(links)}" if links else "no link (a bind mount?)"
    if dirpath.startswith(first + os.sep):
        raise InputFileError(
            dirpath,
            f"a directory loop: this is {first} again, reached through {through}",
            hint=_LOOP_HINT,
        )
    raise InputFileError(
        dirpath,
        f"the same directory as {first}, reached again through {through}: its files would be "
        "classified and written twice",
        hint="keep one way to it under the input: remove one of the links, or give as inputs only "
        "directories that do not reach it twice",
    )


def _paths_below(root: str, path: str) -> list[str]:
    """`path` and its parents below `root` (root excluded): where a link on the way to `path` can be."""
    parts = os.path.relpath(path, root).split(os.sep)
    return [os.path.join(root, *parts[:n]) for n in range(1, len(parts) + 1)] if parts != ["."] else []
