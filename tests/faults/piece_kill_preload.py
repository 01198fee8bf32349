"""TEST-ONLY Dask worker preload: kill -9 the whole run (driver and workers: the test starts it in its own
process group) at a chosen point of a file in pieces, as a node crash would; or only the worker, as an
out-of-memory kill would. Production code has no hook.

HPC_CLASSIFY_TEST_KILL_RUN_AT=piece    a piece's output is written, its marker not yet (the 3rd piece)
HPC_CLASSIFY_TEST_KILL_RUN_AT=assembly half of the file's output is written under its temp name
HPC_CLASSIFY_TEST_KILL_RUN_AT=worker-after-assembly   the worker, once the file is assembled and marked and
                                       its pieces removed, before the task's result reaches the driver
HPC_CLASSIFY_TEST_KILL_RUN_AT=worker-removing-pieces  the worker, once the file is assembled and marked,
                                       with half of its piece files removed
"""

from __future__ import annotations

import os
import shutil
import signal

from hpc_classify.driver import piece_files, task
from hpc_classify.io.jsonl_format import JsonlFormat

_where = os.environ.get("HPC_CLASSIFY_TEST_KILL_RUN_AT")
# Dask may run a preload file more than once in one namespace: wrap the originals, never a wrapper.
_real_write_marker = getattr(task.write_marker, "__wrapped_original__", task.write_marker)
_real_assemble = getattr(JsonlFormat.assemble, "__wrapped_original__", JsonlFormat.assemble)
_real_remove_pieces = getattr(piece_files.remove_pieces, "__wrapped_original__", piece_files.remove_pieces)
_real_rmtree = getattr(shutil.rmtree, "__wrapped_original__", shutil.rmtree)


def _kill_run() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _first_kill_of_the_run() -> bool:
    """Whether no worker of this run was killed yet (HPC_CLASSIFY_TEST_KILL_ONCE: a file, made at the kill):
    the task runs again in new worker processes, which must not die as well."""
    flag = os.environ["HPC_CLASSIFY_TEST_KILL_ONCE"]
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


if _where == "piece":
    _pieces_marked = []

    def _write_marker(path, marker, **kwargs):
        if "_pieces" in path:
            _pieces_marked.append(path)
            if len(_pieces_marked) == 3:
                _kill_run()
        return _real_write_marker(path, marker, **kwargs)

    _write_marker.__wrapped_original__ = _real_write_marker
    task.write_marker = _write_marker

if _where == "assembly":

    def _assemble(self, paths, out, **kwargs):
        _real_assemble(self, paths[: len(paths) // 2], out, **kwargs)
        out.flush()
        _kill_run()

    _assemble.__wrapped_original__ = _real_assemble
    JsonlFormat.assemble = _assemble

if _where == "worker-after-assembly":

    def _remove_pieces(output_dir, relpath):
        _real_remove_pieces(output_dir, relpath)
        if _first_kill_of_the_run():
            os.kill(os.getpid(), signal.SIGKILL)

    _remove_pieces.__wrapped_original__ = _real_remove_pieces
    piece_files.remove_pieces = _remove_pieces

if _where == "worker-removing-pieces":

    def _rmtree(path, *args, **kwargs):
        if "_pieces" not in str(path) or not _first_kill_of_the_run():
            return _real_rmtree(path, *args, **kwargs)
        names = sorted(os.listdir(path))
        for name in names[: len(names) // 2]:  # piece outputs and markers, in name order
            os.remove(os.path.join(path, name))
        os.kill(os.getpid(), signal.SIGKILL)

    _rmtree.__wrapped_original__ = _real_rmtree
    shutil.rmtree = _rmtree
