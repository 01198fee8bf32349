"""The report's part in a run (driver/run.RunHooks): Dask's performance report around the classifying when
`dask_report` is set, and the run report after the summary. A report that cannot be written never fails
the run."""

from __future__ import annotations

import contextlib
import logging
import os
from contextlib import AbstractContextManager
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver.run import RunHooks
from hpc_classify.io.markers import MarkerFiles
from hpc_classify.report.files import DASK_REPORT_HTML
from hpc_classify.report.write import write_report

logger = logging.getLogger(__name__)


def dask_performance_report(config: RunConfig, output_dir: str) -> AbstractContextManager[Any]:
    """Dask's performance_report around the classifying with `dask_report`, else nothing."""
    if not config.dask_report:
        return contextlib.nullcontext()
    from distributed import performance_report

    # mode="inline": Bokeh's scripts inside the file (the default loads them from a CDN: offline nodes).
    return _UnlessSchedulerLost(
        performance_report(filename=os.path.join(output_dir, DASK_REPORT_HTML), mode="inline")
    )


class _UnlessSchedulerLost:
    """Dask's performance report, whose end never fails the run: the scheduler holds its data, and when the
    scheduler is lost its end would wait out the client's reconnect timeout, then raise (no summary)."""

    def __init__(self, report: Any):
        self.report = report

    def __enter__(self) -> _UnlessSchedulerLost:
        self.report.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        from distributed import get_client

        try:
            status = get_client().status
            if status != "running":
                logger.warning("no Dask performance report: the client lost its scheduler (%s)", status)
                return False
            self.report.__exit__(*exc_info)
        except Exception as exc:  # noqa: BLE001 - any failure of the report is only a warning
            logger.warning(
                "the Dask performance report could not be written (%s: %s)", type(exc).__name__, exc
            )
        return False  # an error of the classifying itself goes on up


def write_report_quietly(
    output_dir: str, stopped_by: str | None = None, markers: MarkerFiles | None = None
) -> None:
    """The run's HTML report and its numbers, or a warning saying how to retry; none after a stop signal,
    whether it interrupted the run or every file finished within its grace (`hpc-classify report` writes it).
    `markers`: every marker, read already by the run's end (None: the report reads them)."""
    if stopped_by is not None:
        # The report reads every marker (100,000 files: 10-30 s warm, more cold on a parallel file system): a
        # job warned of its time limit, preempted or cancelled has seconds left, for its summary and requeue.
        logger.info(
            "no run report after %s (the job's last seconds are not for reading every marker): "
            "`hpc-classify report --output %s` writes it later, as does the next run",
            stopped_by,
            output_dir,
        )
        return
    try:
        # The run listed its inputs when it started (a walk of a million files on a parallel file system
        # takes minutes): its report counts over that plan.
        write_report(output_dir, relist_inputs=False, markers=markers)
    except Exception as exc:  # noqa: BLE001 - any bug or missing library in the report is only a warning
        logger.warning(
            "the run report could not be written (%s: %s); the run itself is unaffected. "
            "Retry with `hpc-classify report --output %s`",
            type(exc).__name__,
            exc,
            output_dir,
        )


REPORT_HOOKS = RunHooks(around_classifying=dask_performance_report, after_summary=write_report_quietly)
