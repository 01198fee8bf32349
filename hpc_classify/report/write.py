"""Write `_report.json` and `_report.html` into a run's output directory (both atomically: a browser or
script reading the previous report never sees half of the new one)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from hpc_classify.errors import OutputWriteError
from hpc_classify.io.markers import MarkerFiles
from hpc_classify.io.writers import write_atomically, write_json_atomically
from hpc_classify.report.files import REPORT_HTML, REPORT_JSON
from hpc_classify.report.gather import collect_report

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportPaths:
    html: str
    json: str


def write_report(
    output_dir: str,
    to_dir: str | None = None,
    *,
    relist_inputs: bool = True,
    markers: MarkerFiles | None = None,
) -> ReportPaths:
    """Collect the run's numbers from `output_dir` and write the page and its JSON beside the outputs, or
    into `to_dir` (an output directory one may read but not write); `markers`: as `collect_report`'s."""
    from hpc_classify.report.render import render_page  # Bokeh: only when a page is drawn

    report = collect_report(output_dir, relist_inputs=relist_inputs, markers=markers)
    page = render_page(report).encode("utf-8")
    into = to_dir if to_dir is not None else output_dir
    if to_dir is not None:
        try:
            os.makedirs(to_dir, exist_ok=True)
        except OSError as exc:
            raise OutputWriteError(to_dir, exc.strerror or str(exc), errno=exc.errno) from None
    paths = ReportPaths(os.path.join(into, REPORT_HTML), os.path.join(into, REPORT_JSON))
    write_json_atomically(paths.json, report)
    write_atomically(paths.html, lambda f: f.write(page))
    logger.info("report: %s (numbers in %s)", paths.html, paths.json)
    return paths
