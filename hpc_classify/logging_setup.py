"""Logging configuration: called by the CLI only (never at import time)."""

from __future__ import annotations

import logging
import os
import sys


def configure_logging(level: str | int | None = None) -> None:
    level = level or os.environ.get("HPC_CLASSIFY_LOG_LEVEL", "INFO")
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    for noisy in ("distributed.utils_perf", "distributed.shuffle", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
