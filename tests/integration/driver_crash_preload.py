"""TEST-ONLY Dask worker preload: makes a worker process die in the middle of one file.

Loaded with DASK_DISTRIBUTED__WORKER__PRELOAD='["<this file>"]' by test_driver_failures.py; production code
has no hook. It wraps the completion-marker write of `hpc_classify.driver.task`, so the worker dies after the
file's output was written but before its marker (the worst moment: an output without a marker).

HPC_CLASSIFY_TEST_CRASH_FILE: base name of the input file to crash on.
HPC_CLASSIFY_TEST_CRASH_FLAG: a path; with mode "once" the first crash creates it, later attempts pass.
HPC_CLASSIFY_TEST_CRASH_MODE: "once" (default) or "always".
"""

from __future__ import annotations

import os

from hpc_classify.driver import task

# Dask may import a preload more than once per process: wrap the original function only once.
_real_write_marker = getattr(task.write_marker, "__wrapped_original__", task.write_marker)


def _crashing_write_marker(path, marker, **kwargs):
    if os.path.basename(marker.input_path) == os.environ.get("HPC_CLASSIFY_TEST_CRASH_FILE"):
        if os.environ.get("HPC_CLASSIFY_TEST_CRASH_MODE", "once") == "always":
            os._exit(17)
        try:
            os.close(
                os.open(os.environ["HPC_CLASSIFY_TEST_CRASH_FLAG"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            )
        except FileExistsError:
            pass  # crashed once already: this attempt succeeds
        else:
            os._exit(17)
    _real_write_marker(path, marker, **kwargs)


_crashing_write_marker.__wrapped_original__ = _real_write_marker
task.write_marker = _crashing_write_marker
