"""`hpc-classify` entry point: one small module per subcommand, each exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from hpc_classify._version import __version__
from hpc_classify.cli.flag_typos import unrecognized_arguments
from hpc_classify.errors import HpcClassifyError
from hpc_classify.stop_request import WARNING_SIGNALS

# Each module defines `register(subparsers)`, which adds its parser and sets `handler=fn(args) -> int`.
SUBCOMMAND_MODULES = (
    "run",
    "status",
    "report",
    "unify_schema",
    "demo",
    "bench",
    "fetch_models",
    "node",
    "submit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpc-classify",
        description="Label large sharded text corpora with pre-trained transformer classifiers on Dask/Slurm.",
    )
    parser.add_argument("--version", action="version", version=f"hpc-classify {__version__}")
    parser.add_argument(
        "--log-level", default=None, help="logging level (default INFO, or $HPC_CLASSIFY_LOG_LEVEL)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"hpc_classify.cli.{name}").register(subparsers)
    for subparser in subparsers.choices.values():
        # An unknown flag is reported with the subcommand's usage, not the top-level one (see main).
        subparser.set_defaults(subparser=subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command's exit code. A reader that closes the pipe early (`status | head`) ends the output
    quietly: the command's own exit code if it finished, else 141 (128 + SIGPIPE, as a shell reports)."""
    code = None
    try:
        try:
            code = _run_command(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # Python's advice: point stdout at devnull, so that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return code if code is not None else 141
    return code


def _run_command(argv: list[str] | None) -> int:
    # srun starts `hpc-classify node` on every node, and the job's warning (USR1/USR2) can come at once:
    # its default action would kill the task while the parser's imports run (most of a second). Held
    # (blocked: delayed, not lost) until we know the command; `node` releases them once its own handlers
    # are in place, any other command at once (a warning then has its default action, as before).
    mask_before = signal.pthread_sigmask(signal.SIG_BLOCK, WARNING_SIGNALS)
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if args.command != "node":
            signal.pthread_sigmask(signal.SIG_SETMASK, mask_before)
        return _run_parsed(parser, args, unknown)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask_before)


def _run_parsed(parser: argparse.ArgumentParser, args: argparse.Namespace, unknown: list[str]) -> int:
    if unknown:
        subparser = getattr(args, "subparser", None) or parser
        subparser.error(unrecognized_arguments(subparser, unknown))
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    from hpc_classify.exit_codes import STOPPED_BEFORE_PROGRESS
    from hpc_classify.logging_setup import configure_logging, requested_level

    try:
        level = requested_level(args.log_level)
    except ValueError as error:
        parser.error(str(error))  # exit 2: a usage error, before anything runs
    configure_logging(level)
    try:
        return int(args.handler(args) or 0)
    except HpcClassifyError as error:
        print(f"hpc-classify {args.command}: error: {error.one_line()}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # Ctrl-C before a run took over the signals (checking inputs, loading)
        print(f"hpc-classify {args.command}: interrupted before any file was started", file=sys.stderr)
        return STOPPED_BEFORE_PROGRESS


if __name__ == "__main__":
    sys.exit(main())
