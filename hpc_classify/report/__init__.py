"""The run report: `<output>/_report.html` (one offline page with Bokeh charts) and `<output>/_report.json`
(its numbers), from the output directory's bookkeeping alone. `gather` collects, `render` draws."""

from hpc_classify.report.files import DASK_REPORT_HTML, REPORT_HTML, REPORT_JSON
from hpc_classify.report.write import write_report

__all__ = ["DASK_REPORT_HTML", "REPORT_HTML", "REPORT_JSON", "write_report"]
