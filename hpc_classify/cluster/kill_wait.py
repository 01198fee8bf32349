"""Slurm's KillWait: the seconds between the SIGTERM that ends a job's tasks (scancel, the time limit, the end of a
preemption's grace time) and their SIGKILL. Everything a stop does after a SIGTERM fits in it
(stop_request.StopDeadline).

Read once, when the stop request is made, from slurm.conf: the job's SLURM_* environment does not carry it, and
`scontrol show config` would be a call to slurmctld at every job's start. SLURM_CONF names the file (slurmd sets it
for a job's steps to its cached copy in a configless cluster), else /etc/slurm/slurm.conf. A file without KillWait
means Slurm's default, 30 s; one that cannot be read gives that default too.

`Include FILE` lines are followed as Slurm's parser follows them (src/common/parse_config.c, slurm.conf(5) "INCLUDE
MODIFIERS"): a line that starts with the word Include (any case), blanks, then one file name; a relative name is
taken from slurm.conf's directory, at any depth (Slurm 23.02 and later: get_extra_conf_path), else, where no such
file is, from the directory of the file that includes it (Slurm before 23.02: the two differ only for an Include
inside an included file of another directory); `%c` stands for the ClusterName set before the line
(lowercased); the included file's settings count where the line stands, so the last KillWait read wins. A name is
one file, not a glob (Slurm does not expand one). A file that cannot be read is skipped with a log line naming it:
slurmctld would not have started with it missing, so it is one this node does not see, and the files read decide.
Includes deeper than MAX_INCLUDE_DEPTH (Slurm sets no bound: a file that includes itself) are skipped likewise.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path

from hpc_classify.cluster.slurm_env import slurm_conf_path, slurm_job_id

logger = logging.getLogger(__name__)

DEFAULT_KILL_WAIT_S = 30.0  # Slurm's default
# slurm.conf's KEY=VALUE as Slurm's parser takes it (src/common/parse_config.c): blanks around "=", a quoted value.
_KEY_VALUE = re.compile(r'([\w.]+)\s*=\s*(?:"([^"]*)"|(\S+))')
_INCLUDE = re.compile(r"include\s+(\S+)", re.IGNORECASE)  # at the line's start, as Slurm matches it
MAX_INCLUDE_DEPTH = 16


def read_kill_wait(path: str | Path) -> float | None:
    """KillWait as the slurm.conf at `path` sets it, its Includes followed (Slurm's default where none sets it);
    None if `path` itself is unreadable."""
    text = _read(Path(path))
    if text is None:
        return None
    seconds = DEFAULT_KILL_WAIT_S
    for found in _kill_waits(Path(path), text, _Walk(Path(path).parent), 0):
        seconds = found  # the last one counts, as for Slurm
    return seconds


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


class _Walk:
    """What the reading of slurm.conf and its includes carries from file to file."""

    def __init__(self, conf_dir: Path) -> None:
        self.conf_dir = conf_dir  # relative Include names are taken from here first
        self.cluster_name: str | None = None  # the last ClusterName read, for `%c`


def _kill_waits(path: Path, text: str, walk: _Walk, depth: int) -> Iterator[float]:
    """The valid KillWait values of `text` (the file at `path`) and of the files it includes, in Slurm's order."""
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        include = _INCLUDE.match(line)
        if include:
            yield from _included(path, include.group(1), walk, depth)
            continue
        # Several KEY=VALUE may share a line; keys ignore case; `KillWait = 10` and `KillWait="10"` are Slurm's too.
        for key, quoted, bare in _KEY_VALUE.findall(line):
            if key.lower() == "clustername":
                walk.cluster_name = quoted or bare
            if key.lower() == "killwait":
                try:
                    found = float(quoted or bare)
                except ValueError:
                    continue
                if math.isfinite(found) and found >= 0:
                    yield found


def _included(path: Path, name: str, walk: _Walk, depth: int) -> Iterator[float]:
    if "%c" in name:
        if walk.cluster_name is None:
            logger.info("%s: Include %s before any ClusterName: skipped, as Slurm cannot read it", path, name)
            return
        name = name.replace("%c", walk.cluster_name.lower())
    target = walk.conf_dir / name  # an absolute name stays itself
    if not target.exists() and (path.parent / name).exists():
        target = path.parent / name  # Slurm before 23.02
    if depth >= MAX_INCLUDE_DEPTH:
        logger.info(
            "%s: Include %s is %d files deep: skipped in looking for KillWait", path, target, depth + 1
        )
        return
    text = _read(target)
    if text is None:
        logger.info("%s: cannot read its Include %s: KillWait taken from the files read", path, target)
        return
    yield from _kill_waits(target, text, walk, depth + 1)


def kill_wait_here() -> float | None:
    """KillWait for a stop of this process: None outside a Slurm job (no SIGKILL follows a stop signal there)."""
    if slurm_job_id() is None:
        return None
    path = slurm_conf_path()
    seconds = read_kill_wait(path)
    if seconds is None:
        logger.info("could not read KillWait in %s: taking Slurm's default, %g s", path, DEFAULT_KILL_WAIT_S)
        return DEFAULT_KILL_WAIT_S
    logger.debug("KillWait %g s (%s)", seconds, path)
    return seconds
