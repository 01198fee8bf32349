"""`hpc-classify unify-schema --output DIR`: bring a directory's Parquet outputs to one schema and write
`DIR/_common_metadata` (driver/output_schema.py), as a complete run does at its end: for a directory written
by an older version, or a run finished in several partial invocations. Takes the directory's lock, so it
refuses while a run writes there. Exit 0 when the outputs share one schema, 1 when a column has no common
type or an output could not be read (named; no file changed for a clash)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "unify-schema", help="give the Parquet outputs of a run one schema (and write _common_metadata)"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="the run's --output directory")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import os

    from hpc_classify.driver.lock import RunLock
    from hpc_classify.driver.output_schema import UNREADABLE_NAMED, unify_output_schemas
    from hpc_classify.errors import OutputDirectoryError
    from hpc_classify.exit_codes import FILES_FAILED

    output_dir = os.path.abspath(args.output)
    if not os.path.isdir(output_dir):
        raise OutputDirectoryError(f"--output {output_dir} is not a directory", hint="give a run's --output")
    try:
        lock = RunLock(output_dir)
        lock.acquire()
    except OutputDirectoryError as error:
        raise OutputDirectoryError(
            f"not unifying the schema of {output_dir}: {error.args[0].splitlines()[0]}",
            hint="rerun when that run has ended (a complete Parquet run unifies its outputs itself)",
        ) from None
    try:
        outcome = unify_output_schemas(output_dir)
    finally:
        lock.release()
    if outcome.clashes or outcome.unreadable:
        for clash in outcome.clashes:
            print(f"no common type: {clash.describe()}")
        for relpath, why in list(outcome.unreadable.items())[:UNREADABLE_NAMED]:
            print(f"unreadable: {relpath}: {why}")
        if len(outcome.unreadable) > UNREADABLE_NAMED:
            print(f"... and {len(outcome.unreadable) - UNREADABLE_NAMED} more unreadable")
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
