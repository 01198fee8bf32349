"""The time-limit warning's two numbers: its lead (how long before the time limit Slurm signals the job) and
the grace the files in flight get after it (the lead less a margin for the summary, the report and the requeue).
One place decides them for every way a run starts: the batch script exports its lead, `hpc-classify submit`
knows its own, `--warning-grace` may set the grace but never at or past the lead."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hpc_classify.errors import ConfigError
from hpc_classify.whole_numbers import is_seconds

if TYPE_CHECKING:
    from hpc_classify.config import RunConfig

# The time-limit warning: slurm/classify.sbatch asks Slurm for USR1 this long before the time limit
# (`--signal=B:USR1@300`) and exports the lead as HPC_CLASSIFY_WARNING_LEAD; `hpc-classify submit` knows its own
# (USR2, 300 s, or `--sbatch signal=USR2@SECONDS`) and sets the grace itself.
WARNING_LEAD_ENV = "HPC_CLASSIFY_WARNING_LEAD"
DEFAULT_WARNING_LEAD_S = 300
# Kept of the lead for what follows the files in flight: cancelling the rest, closing the cluster, the summary
# and the report, the requeue.
WARNING_MARGIN_S = 60


def warning_grace_for_lead(lead: float) -> float:
    """The grace of the files in flight after a warning `lead` s before the time limit: the lead less
    WARNING_MARGIN_S (less half the lead, for a lead shorter than twice the margin)."""
    return lead - min(WARNING_MARGIN_S, lead / 2)


def check_warning_grace(grace: float, lead: float, where: str) -> None:
    """ConfigError unless `grace` ends before the time limit that a warning `lead` s before it announces."""
    if grace >= lead:
        raise ConfigError(
            f"warning_grace (--warning-grace) {grace:g} s is not below the time-limit warning's lead of {lead:g} s "
            f"({where}): the job would reach its time limit still waiting for the files in flight, and be killed "
            "before it wrote its summary and requeued itself",
            hint=f"give --warning-grace {warning_grace_for_lead(lead):g} or less (the lead less time for the "
            "summary and the requeue), or leave it out: it then follows the lead",
        )


def warning_lead_from(environ: Mapping[str, str]) -> float | None:
    """The warning's lead that the batch script exported (HPC_CLASSIFY_WARNING_LEAD), None if not set."""
    text = environ.get(WARNING_LEAD_ENV, "").strip()
    if not text:
        return None
    try:
        lead = float(text)
    except ValueError:
        lead = math.nan
    if not is_seconds(lead, allow_zero=False):
        raise ConfigError(
            f"{WARNING_LEAD_ENV}={text!r} is not a number of seconds > 0",
            hint="set it to the seconds of the batch script's --signal=B:USR1@SECONDS (300 in "
            "slurm/classify.sbatch), or unset it",
        )
    return lead


def resolve_warning_grace(config: RunConfig, environ: Mapping[str, str] | None = None) -> float:
    """The seconds the files in flight get after the time-limit warning, by precedence: `config.warning_grace`
    (--warning-grace, YAML, or what `hpc-classify submit` set from its lead), checked to be below the lead where
    HPC_CLASSIFY_WARNING_LEAD gives it; else that lead less the margin (warning_grace_for_lead); else the
    default lead's (300 s: 240 s)."""
    lead = warning_lead_from(os.environ if environ is None else environ)
    if config.warning_grace is not None:
        if lead is not None:
            check_warning_grace(config.warning_grace, lead, f"{WARNING_LEAD_ENV}={lead:g}")
        return float(config.warning_grace)
    return warning_grace_for_lead(DEFAULT_WARNING_LEAD_S if lead is None else lead)


def with_warning_lead(config: RunConfig, lead: float, where: str) -> RunConfig:
    """`config` for a job warned `lead` s before its time limit (`where` says by what): a warning grace given
    is checked to be below the lead, and none given becomes the lead less the margin."""
    if config.warning_grace is not None:
        check_warning_grace(config.warning_grace, lead, where)
        return config
    return dataclasses.replace(config, warning_grace=warning_grace_for_lead(lead))
