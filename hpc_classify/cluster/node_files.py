"""Small helpers of the per-node launcher (slurm_node.py): signals ignored or held back for a block, and the
JSON/log files the nodes of one job share through the job directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
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


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except OSError:
        return "(no log)"
