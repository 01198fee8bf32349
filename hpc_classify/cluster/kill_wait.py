"""Slurm's KillWait: the seconds between the SIGTERM that ends a job's tasks (scancel, the time limit, the end of a
preemption's grace time) and their SIGKILL. Everything a stop does after a SIGTERM fits in it
(stop_request.StopDeadline).

Read once, when the stop request is made, from slurm.conf: the job's SLURM_* environment does not carry it, and
`scontrol show config` would be a call to slurmctld at every job's start. SLURM_CONF names the file (slurmd sets it
for a job's steps to its cached copy in a configless cluster), else /etc/slurm/slurm.conf. A file without KillWait
means Slurm's default, 30 s; one that cannot be read (or sets it in an `Include`d file) gives that default too.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

from hpc_classify.cluster.slurm_env import slurm_conf_path, slurm_job_id

logger = logging.getLogger(__name__)

DEFAULT_KILL_WAIT_S = 30.0  # Slurm's default
# slurm.conf's KEY=VALUE as Slurm's parser takes it (src/common/parse_config.c): blanks around "=", a quoted value.
_KEY_VALUE = re.compile(r'([\w.]+)\s*=\s*(?:"([^"]*)"|(\S+))')


def read_kill_wait(path: str | Path) -> float | None:
    """KillWait as the slurm.conf at `path` sets it (Slurm's default where it does not); None if unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    seconds = DEFAULT_KILL_WAIT_S
    for line in text.splitlines():
        # Several KEY=VALUE may share a line; keys ignore case; `KillWait = 10` and `KillWait="10"` are Slurm's too.
        for key, quoted, bare in _KEY_VALUE.findall(line.split("#", 1)[0]):
            if key.lower() == "killwait":
                try:
                    found = float(quoted or bare)
                except ValueError:
                    continue
                if math.isfinite(found) and found >= 0:
                    seconds = found  # the last one counts, as for Slurm
    return seconds


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
