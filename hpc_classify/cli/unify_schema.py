"""`hpc-classify unify-schema --output DIR`: bring a directory's Parquet outputs to one schema and write
`DIR/_common_metadata` (driver/output_schema.py), as a complete run does at its end: for a directory written
by an older version, a run finished in several partial invocations, or one whose end left more to rewrite than
it does itself. Takes the directory's lock, so it refuses while a run writes there. `--threads` files are
rewritten at once. A stop signal (Ctrl-C, SIGTERM, the time-limit warning) lets the rewrites in flight finish
and starts no other: every file is whole, old or new, and a rerun finishes. Exit 0 when the outputs share one
schema, 1 when a column has no common type or an output could not be read, nor its marker, or a Parquet file
has no marker (named; no file changed for a clash), 3 when stopped (or the lock was taken over: its renames
are refused)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from hpc_classify.cli.arg_types import positive_int
from hpc_classify.stop_request import STOP_SIGNALS

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "unify-schema", help="give the Parquet outputs of a run one schema (and write _common_metadata)"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="the run's --output directory")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=min(8, os.cpu_count() or 1),
        metavar="N",
        help="files rewritten at once (default: the cores, at most 8; a parallel file system gives several "
        "streams more bandwidth than one)",
    )
    parser.set_defaults(handler=handle)


class StopOnSignals:
    """While active (in the main thread), the first stop signal sets `signal_name`: asked before each rewrite
    starts. A later one changes nothing: the rewrites in flight end on their own, each file whole."""

    def __init__(self) -> None:
        self.signals = STOP_SIGNALS
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signal_name is not None

    def lose_lock(self, name: str) -> None:
        """The lock was taken over (the heartbeat thread says so, as `name`): no rewrite starts, none renames."""
        self.signal_name = name

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is None:
            self.signal_name = name
            logger.warning("%s received: finishing the rewrites in flight, starting no other", name)
        else:
            logger.warning(
                "%s received: still finishing the rewrites in flight (each file stays whole)", name
            )

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


def handle(args: argparse.Namespace) -> int:
    from hpc_classify.driver.lock import LOCK_LOST, RunLock
    from hpc_classify.driver.output_schema import UNREADABLE_NAMED, unify_output_schemas
    from hpc_classify.driver.run_owner import stored_fingerprint
    from hpc_classify.driver.schema_outputs import ownership_check
    from hpc_classify.errors import OutputDirectoryError
    from hpc_classify.exit_codes import FILES_FAILED, INTERRUPTED

    output_dir = os.path.abspath(args.output)
    if not os.path.isdir(output_dir):
        raise OutputDirectoryError(f"--output {output_dir} is not a directory", hint="give a run's --output")
    stop = StopOnSignals()
    try:
        lock = RunLock(output_dir, on_lost=lambda: stop.lose_lock(LOCK_LOST))
        lock.acquire()
    except OutputDirectoryError as error:
        raise OutputDirectoryError(
            f"not unifying the schema of {output_dir}: {error.args[0].splitlines()[0]}",
            hint="rerun when that run has ended (a complete Parquet run unifies its outputs itself)",
        ) from None
    try:
        # Fenced as a run's writes are: the lock and the run that owns the directory, as when the lock was taken.
        owned = ownership_check(
            output_dir, stored_fingerprint(output_dir), lambda: stop.signal_name == LOCK_LOST
        )
        with stop:
            try:
                outcome = unify_output_schemas(output_dir, stopped=stop, owned=owned, threads=args.threads)
            except OutputDirectoryError:  # a rename refused: the directory is another run's now
                if stop.signal_name != LOCK_LOST:
                    raise
                print(
                    f"stopped by {LOCK_LOST}: another run took {output_dir} over; every file is whole; "
                    "that run brings its outputs to one schema when it completes"
                )
                return INTERRUPTED
    finally:
        lock.release()
    for clash in outcome.clashes:
        print(f"no common type: {clash.describe()}")
    for relpath, why in list(outcome.unreadable.items())[:UNREADABLE_NAMED]:
        print(f"unreadable: {relpath}: {why}")
    if len(outcome.unreadable) > UNREADABLE_NAMED:
        print(f"... and {len(outcome.unreadable) - UNREADABLE_NAMED} more unreadable")
    if outcome.stopped:
        print(
            f"stopped by {stop.signal_name} {outcome.stop_progress()}, every file whole; no _common_metadata "
            f"written; rerun `hpc-classify unify-schema --output {output_dir}` to finish"
        )
        return INTERRUPTED
    if outcome.clashes or outcome.unreadable:
        print(
            f"{outcome.files} Parquet output(s), {outcome.rewritten} rewritten (never for a clash); "
            "no _common_metadata written"
        )
        return FILES_FAILED
    print(
        f"{outcome.files} Parquet output(s) share one schema ({outcome.rewritten} rewritten); "
        f"{outcome.common_metadata or 'no _common_metadata (no output)'}"
    )
    return 0
