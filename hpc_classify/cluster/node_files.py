"""Small helpers of the per-node launcher (slurm_node.py): signals ignored or held back for a block, and the
JSON/log files the nodes of one job share through the job directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG_TAIL_LINES = 20


@contextlib.contextmanager
def signals_ignored(signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_held(signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    """Block `signals` in this thread for the block: a process started meanwhile begins with them blocked
    (never delivered: as good as ignored, whatever it installs), while for us one that arrives meanwhile is
    only delayed: another thread takes it for our handler, or it is delivered when the block ends. Ignoring
    them around the start instead (SIG_IGN) would lose a warning that comes in those milliseconds."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's JSON object, or None while it is missing or still being written."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# Signals that end a job's tasks (a requeue or scancel sends SIGTERM, Ctrl-C SIGINT).
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def ending_signals_deferred() -> Iterator[None]:
    """Let the block finish before SIGTERM/SIGINT ends the process (their default action, or Python's
    KeyboardInterrupt), then end it as they would have. A requeue signals every task of the job, also one
    between writing a temp file and renaming it: that left `.x.tmp-<pid>` behind and the record unwritten.
    Signals with a handler of our own (StopRequest: it only takes note) are left alone, as is every signal
    outside the main thread (only it can set handlers; Python runs handlers there anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    deferred = {
        sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
        for sig in ENDING_SIGNALS
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler)
    }
    try:
        yield
    finally:
        for sig, previous in deferred.items():
            signal.signal(sig, previous)
        for signum in dict.fromkeys(received):
            os.kill(os.getpid(), signum)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `path` atomically (temp file, fsync, then rename), also when a job-ending signal comes meanwhile;
    a write that fails leaves no temp file. Not io/writers.write_json_atomically: that one turns a full or
    read-only file system into OutputWriteError (the output's exit 4, no OSError, which the node entry's
    callers catch for its shared job files) and brings pandas into the launcher's start."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with ending_signals_deferred():
        try:
            with open(tmp, "w", encoding="utf-8") as file:
                file.write(json.dumps(data))
                file.flush()
                os.fsync(file.fileno())  # on disk before the rename: the other nodes read it after a crash
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except OSError:
        return "(no log)"
