"""`hpc-classify status --output DIR [--json]`: done / remaining / failed files, documents, labels, nodes,
computed from the output directory alone (works while a run is going on, from any machine)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="progress of a run, from its output directory")
    parser.add_argument("--output", required=True, metavar="DIR", help="the run's --output directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--verify-inputs",
        action="store_true",
        help="compare done inputs with their markers by content hash (reads them) instead of size and mtime",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hpc_classify.driver.status import compute_status
    from hpc_classify.driver.status_text import format_status

    status = compute_status(args.output, verify_inputs=args.verify_inputs)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0
