"""A script that starts a local cluster at import time, outside `if __name__ == "__main__":`.

Dask starts local worker processes with "spawn", and a spawned process first imports the parent's main
script (as `__mp_main__`). Unguarded, that import starts a cluster again inside the worker process: its
nanny cannot start a process there, and it waits for ever, and so does the parent waiting for it. Here the
worker process's copy refuses at once (so it exits), and the parent, seeing its worker fail, names the
cause. Standard library only.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
from types import FrameType

from hpc_classify.errors import ConfigError

GUARD = 'if __name__ == "__main__":'


def refuse_start_while_importing_main() -> None:
    """In a process that is still importing its parent's main module (multiprocessing's bootstrapping
    phase, the state in which multiprocessing itself refuses to start a process), starting a cluster or a
    run is the script running again in a worker process: refused. Elsewhere, nothing."""
    # `_inheriting` is what multiprocessing checks for its own refusal (spawn._check_not_importing_main);
    # parent_process() is still None at that point (it is set once the main module is imported).
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        frame = _module_frame("__mp_main__")
        raise unguarded_error(frame.f_code.co_filename if frame else None, frame.f_lineno if frame else None)


def refuse_unguarded_main(exc: BaseException) -> None:
    """After a local cluster failed to start (`exc`): when the main script's own top-level code, outside a
    `__name__` check, is what is starting it, its worker processes ran that code again and failed; say so
    (ConfigError, chained to `exc`) instead of the cluster's generic error. Otherwise, nothing."""
    frame = _module_frame("__main__")
    if frame is None or _guarded(frame.f_code.co_filename, frame.f_lineno):
        return
    raise unguarded_error(frame.f_code.co_filename, frame.f_lineno) from exc


def unguarded_error(script: str | None, line: int | None) -> ConfigError:
    where = f"{script} (line {line})" if script else "the main script"
    return ConfigError(
        f"{where} starts a local Dask cluster when it is imported, outside `{GUARD}`: each Dask worker "
        "process imports the script again and would start another cluster",
        hint=f"put the code that starts the cluster or the run (get_client, run, ...) under `{GUARD}`",
    )


def _module_frame(module_name: str) -> FrameType | None:
    """The frame of the main script's top-level code (run in a module named `module_name`), when it is on
    the call stack. In the parent, only a script that worker processes import again: the file that is
    `__main__` (a `-c` command, a notebook cell or an interactive session is not imported again)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == module_name:
            break
        frame = frame.f_back
    if frame is None or module_name != "__main__":
        return frame
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    same = main_file and os.path.realpath(main_file) == os.path.realpath(frame.f_code.co_filename)
    return frame if same else None


def _guarded(script: str, line: int) -> bool:
    """Whether `line` of `script` lies inside an `if` that tests `__name__` (any form of the guard); True
    when the source cannot be read or parsed, so that only a script known to be unguarded is named."""
    try:
        with open(script, encoding="utf-8") as source:
            tree = ast.parse(source.read(), script)
    except (OSError, SyntaxError, ValueError):
        return True
    return any(
        isinstance(node, ast.If)
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        and any(isinstance(name, ast.Name) and name.id == "__name__" for name in ast.walk(node.test))
        for node in ast.walk(tree)
    )
