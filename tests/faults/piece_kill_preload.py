"""TEST-ONLY Dask worker preload: kill -9 the whole run (driver and workers: the test starts it in its own
process group) at a chosen point of a file in pieces, as a node crash would. Production code has no hook.

HPC_CLASSIFY_TEST_KILL_RUN_AT=piece    a piece's output is written, its marker not yet (the 3rd piece)
HPC_CLASSIFY_TEST_KILL_RUN_AT=assembly half of the file's output is written under its temp name
"""

from __future__ import annotations

import os
import signal

from hpc_classify.driver import task
from hpc_classify.io.jsonl_format import JsonlFormat

_where = os.environ.get("HPC_CLASSIFY_TEST_KILL_RUN_AT")
# Dask may run a preload file more than once in one namespace: wrap the originals, never a wrapper.
_real_write_marker = getattr(task.write_marker, "__wrapped_original__", task.write_marker)
_real_assemble = getattr(JsonlFormat.assemble, "__wrapped_original__", JsonlFormat.assemble)


def _kill_run() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


if _where == "piece":
    _pieces_marked = []

    def _write_marker(path, marker):
        if "_pieces" in path:
            _pieces_marked.append(path)
            if len(_pieces_marked) == 3:
                _kill_run()
        return _real_write_marker(path, marker)

    _write_marker.__wrapped_original__ = _real_write_marker
    task.write_marker = _write_marker

if _where == "assembly":

    def _assemble(self, paths, out):
        _real_assemble(self, paths[: len(paths) // 2], out)
        out.flush()
        _kill_run()

    _assemble.__wrapped_original__ = _real_assemble
    JsonlFormat.assemble = _assemble
