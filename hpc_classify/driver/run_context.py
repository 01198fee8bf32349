"""`RunContext`: what the steps of one locked run share, built once the output directory agrees with the run
(driver/run.py) and handed to the classifying and the dispatcher, instead of six arguments passed on through each."""

from __future__ import annotations

from dataclasses import dataclass

from hpc_classify.config import RunConfig
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.summary import RunStats
from hpc_classify.stop_request import StopRequest


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """Frozen: the run's parts are fixed once it starts (`stats` and `failures` are updated in place).
    Keyword-only: `output_dir` and `fingerprint` are both strings, easily swapped by position."""

    config: RunConfig
    output_dir: str  # absolute, locked by this run
    fingerprint: str  # the run fingerprint, checked or stored in output_dir
    stats: RunStats
    failures: FailureLog
    stop: StopRequest
