"""A jobqueue worker job's Dask lifetime: each worker retires by itself a margin before its Slurm walltime,
the margins staggered between jobs, so that Slurm's kill never counts the files in flight as suspects of a
worker's death (`allowed-failures`) and the keeper (worker_jobs.py) submits its successor in time. Exported by
the job script, which `dask worker` and `dask cuda worker` both read."""

from __future__ import annotations

import re
from typing import Any

from hpc_classify.errors import ConfigError

_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def slurm_time_seconds(text: str) -> int | None:
    """Seconds of a Slurm time limit ("minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
    "days-hours:minutes", "days-hours:minutes:seconds"); None for no limit ("", "UNLIMITED", "INFINITE")."""
    text = str(text).strip()
    if text.upper() in ("", "UNLIMITED", "INFINITE", "-1"):
        return None
    match = _TIME.fullmatch(text)
    if not match:
        raise ConfigError(
            f"jobqueue.slurm.walltime {text!r} is not a Slurm time",
            hint="give minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, as sbatch --time takes",
        )
    days, first, second, third = match.groups()
    if days is not None:  # days-hours[:minutes[:seconds]]
        parts = [int(first), int(second or 0), int(third or 0)]
        return int(days) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    if third is not None:  # hours:minutes:seconds
        return int(first) * 3600 + int(second) * 60 + int(third)
    return int(first) * 60 + int(second or 0)  # minutes[:seconds]


def lifetime_environment(walltime: Any, site_args: list[str]) -> dict[str, str]:
    """Dask's worker lifetime settings, as environment variables of the job script (`dask cuda worker` has no
    `--lifetime` flag; both read Dask's config): retire a margin before the job's `walltime`, a tenth of it (at
    least 30 s, at most 5 min), with a stagger of a twentieth (at most 2 min) taken off too. None where the
    site sets a lifetime (its worker arguments or Dask config), or there is no walltime."""
    import dask

    if dask.config.get("distributed.worker.lifetime.duration", default=None) is not None or any(
        arg == "--lifetime" or arg.startswith("--lifetime=") for arg in site_args
    ):
        return {}
    seconds = None if walltime is None else slurm_time_seconds(walltime)
    if seconds is None:
        return {}
    margin = min(300, max(30, seconds // 10))
    stagger = min(120, seconds // 20)
    lifetime = seconds - margin - stagger
    if lifetime < 20:
        raise ConfigError(
            f"jobqueue.slurm.walltime {walltime!r} leaves a worker job no time to work: it retires {margin} s "
            "before the walltime",
            hint="give the worker jobs a walltime of 2 minutes or more",
        )
    return {
        "DASK_DISTRIBUTED__WORKER__LIFETIME__DURATION": f"{lifetime}s",
        "DASK_DISTRIBUTED__WORKER__LIFETIME__STAGGER": f"{stagger}s",
    }
