"""Whether this user can use the Hugging Face cache, and sharing what `fetch-models` puts into it.

A site's cache is filled by one user on a login node and read by every user's jobs on the compute nodes.
huggingface_hub writes what it downloads under the process's umask (folders by mkdir, a blob with the mode
of a probe file made beside it) and its tree listings (`trees/<commit>.json`) by mkstemp: mode 0600, whatever
the umask. Fetched under `umask 077`, a model is its fetcher's alone, and another user's offline resolution
finds no snapshot at all (`os.path.exists` is False for a folder one may not enter): "not in the cache, run
fetch-models" then sent that user to fetch what is there. Here: the path this user cannot read (or write),
said as such with its remedy; a full disk, said as such; and, after fetching, the fetched `models--*` folders
opened to whoever the cache's own folder is open to.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_COMMIT = re.compile(r"[0-9a-f]{40}")
_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
_GROUP = stat.S_IRGRP | stat.S_IXGRP
_OTHER = stat.S_IROTH | stat.S_IXOTH
_READ = stat.S_IRGRP | stat.S_IROTH  # of a file: read only (`chmod +rX` adds no execute bit to a file)


@dataclass(frozen=True)
class CacheProblem:
    """A local reason why the cache cannot serve a model: `reason` in one line, `hint` what to do."""

    reason: str
    hint: str


def repo_cache_dir(cache: str | os.PathLike[str], repo_id: str) -> Path:
    """The cache's folder of the model `repo_id` (`models--org--name`)."""
    return Path(cache) / f"models--{repo_id.replace('/', '--')}"


def user_name(uid: int | None = None) -> str:
    """The login name of `uid` (default: this process's), or `uid N` without one."""
    import pwd

    uid = os.geteuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def cache_problem(
    cache: str | os.PathLike[str], repo_id: str, revision: str | None, error: BaseException | None
) -> CacheProblem | None:
    """Why `repo_id` at `revision` could not be had from, or fetched into, `cache` if the reason is local:
    a full disk (in `error`'s chain), a path that an offline resolution reads and this user may not, or a
    path `error` was refused (a folder not writable). None when the hub or a missing file is to blame."""
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, OSError) and cause.errno in _FULL_DISK:
            return _full_disk(Path(cache), cause)
    repo = repo_cache_dir(cache, repo_id)
    unreadable = unreadable_path(cache, repo_id, revision)
    if unreadable is not None:
        return not_readable(unreadable, repo)
    for cause in causes:
        if isinstance(cause, PermissionError):
            return _refused(Path(cache), cause)
    return None


def unreadable_path(cache: str | os.PathLike[str], repo_id: str, revision: str | None) -> Path | None:
    """The first path that an offline resolution of `repo_id` at `revision` reads and this user may not: a
    folder on the way, its `refs/` file, the snapshot folder or a file in it (then its blob). None when all
    can be read, or when something is missing: that is no permission problem."""
    repo = repo_cache_dir(cache, repo_id)
    try:
        os.stat(repo)
        commit = revision if revision and _COMMIT.fullmatch(revision) else _ref(repo, revision or "main")
        snapshots = repo / "snapshots"
        for name in [commit] if commit else sorted(os.listdir(snapshots)):
            with os.scandir(snapshots / name) as entries:
                for entry in entries:
                    try:
                        open(entry.path, "rb").close()  # opened, not read: a blob may be 13 GB
                    except (FileNotFoundError, IsADirectoryError):
                        continue  # missing, or a subfolder: no permission problem
    except PermissionError as error:
        return blocked_path(error.filename or repo)
    except OSError:
        return None
    return None


def blocked_path(path: str | os.PathLike[str]) -> Path:
    """What keeps this user from `path` (through its symlinks): the first folder from the top that it may
    not enter, else `path` itself (a file it may not read, a folder it may not list)."""
    real = Path(os.path.realpath(path))
    for folder in reversed(real.parents):
        if not os.access(folder, os.X_OK):
            return folder
    return real


def not_readable(path: Path, repo: Path) -> CacheProblem:
    """`path` (in or above the model folder `repo`) is not readable by this user: say so, and who fixes it."""
    if path == repo or repo in path.parents:
        fix = f"`chmod -R a+rX {repo}`"
    else:
        fix = f"`chmod a+rx {path}`, then `chmod -R a+rX` on the models--* folders below it if need be"
    return CacheProblem(
        f"Hugging Face cache not readable by user {user_name()}: {path}",
        f"{path} is {_owner(path)}: its owner or an administrator must make the cache readable, e.g. {fix} "
        "(g+rX instead of a+rX to share it with the owner's group only). Models fetched under a private umask "
        "(077) are readable by whoever fetched them only; fetching them again does not change that. "
        "Or use a cache of your own: HF_HOME=DIR, filled by `hpc-classify fetch-models`",
    )


def _refused(cache: Path, error: PermissionError) -> CacheProblem:
    target = Path(error.filename) if error.filename else cache
    folder = next((p for p in (target, *target.parents) if os.path.lexists(p)), target)
    if os.access(folder, os.W_OK):  # not a folder it cannot write: name the path itself
        reason = f"permission denied to user {user_name()}: {target}"
    else:
        reason = f"Hugging Face cache not writable by user {user_name()}: {folder}"
    return CacheProblem(
        reason,
        f"{folder} is {_owner(folder)}: a local file permission problem, not the hub. Fetch as the user who "
        f"owns the cache, have it made group-writable for a shared cache (`chmod -R g+w {cache}` with a "
        "common group), or use a cache you can write: `--cache DIR` (compute nodes then read it with "
        "HF_HUB_CACHE=DIR)",
    )


def _full_disk(cache: Path, error: OSError) -> CacheProblem:
    what = "over its quota" if error.errno == errno.EDQUOT else "full"
    return CacheProblem(
        f"the disk holding the Hugging Face cache {cache} is {what} ({os.strerror(error.errno)})",
        f"free space there (`df -h {cache}`; your quota), then run the same command again (the files "
        "downloaded completely are kept); or use a cache on a filesystem with room: `--cache DIR` (compute "
        "nodes then read it with HF_HUB_CACHE=DIR)",
    )


def _owner(path: Path) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return "not readable"
    return f"owned by {user_name(info.st_uid)} (mode {stat.S_IMODE(info.st_mode):04o})"


def _ref(repo: Path, revision: str) -> str | None:
    try:
        return (repo / "refs" / revision).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    seen: list[BaseException] = []
    while error is not None and not any(error is s for s in seen):
        seen.append(error)
        yield error
        error = error.__cause__ or error.__context__


# -- sharing what fetch-models fetched ----------------------------------------------------------
def shared_bits(folder: str | os.PathLike[str]) -> int:
    """The read and search bits a folder grants its group (g+rx) and others (o+rx), from its search bit."""
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return 0
    return (_GROUP if mode & stat.S_IXGRP else 0) | (_OTHER if mode & stat.S_IXOTH else 0)


def make_cache_dir(cache: Path) -> None:
    """`cache` with its missing parents, each made as open as the nearest folder that was there (an HF_HOME
    made world-readable by env/install.sh, then `hub/` made here under umask 077, would hide every model)."""
    made = []
    folder = Path(cache)
    while not os.path.lexists(folder) and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
    Path(cache).mkdir(parents=True, exist_ok=True)
    bits = shared_bits(folder)
    for new in reversed(made):
        _add_bits(new, bits, [])


def share_like_cache(cache: Path, repo_ids: Iterable[str]) -> list[Path]:
    """Open the `models--*` folders of `repo_ids` in `cache` to whoever may enter `cache` itself (`chmod -R
    g+rX` and/or `o+rX`, tree listings included). Returns the paths this user may not change."""
    bits = shared_bits(cache)
    failed: list[Path] = []
    if not bits:
        return failed  # a private cache stays private
    for repo_id in dict.fromkeys(repo_ids):
        for folder, _, files in os.walk(repo_cache_dir(cache, repo_id)):
            _add_bits(Path(folder), bits, failed)
            for name in files:
                _add_bits(Path(folder, name), bits & _READ, failed)
    return failed


def _add_bits(path: Path, bits: int, failed: list[Path]) -> None:
    try:
        info = os.lstat(path)
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & bits != bits:  # a symlink's mode is not its own
            os.chmod(path, stat.S_IMODE(info.st_mode) | bits)
    except OSError:
        failed.append(path)


def whom(bits: int) -> str:
    """Who `bits` (of `shared_bits`) open a path to, in words."""
    return " and ".join(w for w, b in (("its group", _GROUP), ("other users", _OTHER)) if bits & b)


def current_umask() -> int:
    """This process's umask (from /proc, else set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_warning(cache: Path) -> str | None:
    """A warning when the umask hides what is written into `cache` from those its folder is open to."""
    bits, mask = shared_bits(cache), current_umask()
    hidden = bits & mask
    if not hidden:
        return None
    return (
        f"umask {mask:04o} makes files written into {cache} unreadable by {whom(hidden)}, to whom the "
        f"cache is open: fetch-models opens what it fetched to them, but what anything else writes there "
        "(huggingface_hub downloads of a job with HF_HUB_OFFLINE=0) stays private; run `umask 022` (027: "
        "the group only) before writing into a shared cache"
    )
