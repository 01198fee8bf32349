"""`hpc-classify report --output DIR`: write `DIR/_report.html` (labels, drift, throughput, timeline,
failures, provenance; opens offline) and `DIR/_report.json`, from the run's bookkeeping alone. Every run
writes them at its end too; this command redraws them, e.g. while a run is still going."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="write an HTML report of a run into its output directory")
    parser.add_argument("--output", required=True, metavar="DIR", help="the run's --output directory")
    parser.add_argument(
        "--to",
        metavar="DIR",
        help="write the report into DIR instead of the output directory (one you cannot write to)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hpc_classify.errors import OutputWriteError
    from hpc_classify.report import write_report

    try:
        paths = write_report(args.output, args.to)
    except OutputWriteError as error:  # its hint is a run's ("rerun: it resumes"): a report has another way
        raise OutputWriteError(
            error.path,
            error.reason,
            errno=error.errno,
            hint="choose a --to directory you can write to"
            if args.to
            else "pass --to DIR to write the report elsewhere (the output directory is only read)",
        ) from None
    print(f"report: {paths.html}\nnumbers: {paths.json}")
    return 0
