"""Logging configuration: called by the CLI only (never at import time)."""

from __future__ import annotations

import logging
import os
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LEVEL_ENV = "HPC_CLASSIFY_LOG_LEVEL"
# Libraries whose INFO chatter configure_logging turns down to WARNING (unless DEBUG was asked for).
QUIETED_LOGGERS = ("distributed", "urllib3", "filelock", "asyncio")


def requested_level(level: str | None = None) -> str:
    """The level asked for (`--log-level`, else $HPC_CLASSIFY_LOG_LEVEL, else INFO), in any case; a
    ValueError naming the choices for anything else."""
    name = (level or os.environ.get(LEVEL_ENV) or "INFO").upper()
    if name not in LEVELS:
        source = "--log-level" if level else LEVEL_ENV
        raise ValueError(f"{source} {name.lower()!r} is not a logging level: use one of {', '.join(LEVELS)}")
    return name


def configure_logging(level: str | None = None) -> None:
    level = requested_level(level)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    # Dask logs every worker start/stop at INFO: at our INFO level keep only its warnings (the driver logs
    # the dashboard, workers and progress itself); --log-level DEBUG shows everything.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for noisy in QUIETED_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # distributed sets its loggers' levels from Dask's config when it is imported (later, lazily):
        # say it there too. Local workers inherit this config; Slurm workers log to their own files.
        import dask

        dask.config.set({"logging.distributed": "warning"})
