"""The names of the report's files in a run's output directory."""

REPORT_HTML = "_report.html"
REPORT_JSON = "_report.json"
DASK_REPORT_HTML = "_dask-report.html"  # `run --dask-report`: Dask's performance_report, linked from the page
