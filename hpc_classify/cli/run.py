"""`hpc-classify run`: classify a sharded corpus into an output directory, resumably.

One or several classifiers (`--classifier`, repeatable: a built-in name or package.module:ClassName) run
in one pass over each file. Settings come from flags and/or a YAML `--config` file whose keys are the
long flag names, plus a `classifiers:` list of per-classifier arguments; flags override the file.
"""

from __future__ import annotations

import argparse
from typing import Any

from hpc_classify.cli.engine_flags import add_engine_flags, shared_flags_text
from hpc_classify.cli.flag_typos import unrecognized_arguments
from hpc_classify.config import BAD_ROW_POLICIES, CHANGED_INPUT_POLICIES, OUTPUT_FORMATS, PROTOCOLS

EXIT_CODES_HELP = """exit codes:
  0  every file done
  1  some files failed after their retries (listed in OUTPUT/_failures.ndjson); the others are done
  2  usage/config error, output directory refused (other run's fingerprint, locked), inputs changed
     since they were classified (see --on-changed-input), or no cluster
  3  interrupted by SIGTERM, SIGINT, SIGUSR1 or SIGUSR2, no worker left for --worker-wait seconds, the
     Dask scheduler lost, or files left neither done nor failed (named in the log and in
     _summary.json's stop_reason); rerun the same command to resume
  4  the output file system refused a write (full, quota, read-only); fix it, then rerun to resume
  5  stopped (as 3) before this run finished any file or piece; rerun to resume (batch scripts
     do not requeue it: a time limit too short for start-up, or workers that die at every start,
     would stop every restart alike)
"""


# Replaced by the registry's names when help is shown: importing the registry (about 1 s) is only paid then.
BUILTIN_CLASSIFIERS = "<built-in classifiers>"


class _RunHelpFormatter(argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text and BUILTIN_CLASSIFIERS in text:
            from hpc_classify.classifiers.registry import CLASSIFIERS

            text = text.replace(BUILTIN_CLASSIFIERS, ", ".join(CLASSIFIERS))
        return text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="classify a corpus (resumable: rerun the same command to continue)",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=_RunHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(handler=handle)


def parse_run_argv(argv: list[str]) -> argparse.Namespace:
    """`hpc-classify run`'s options given after `--` to `node` or `submit` (exits with run's usage on errors)."""
    parser = argparse.ArgumentParser(
        prog="hpc-classify run",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=_RunHelpFormatter,
    )
    _add_arguments(parser)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(unrecognized_arguments(parser, unknown))
    return args


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    # Every default is None so that a flag the user did not give leaves the YAML value (or the dataclass default).
    io = parser.add_argument_group("input and output")
    io.add_argument("--config", metavar="YAML", help="YAML file of settings (keys = long flag names)")
    io.add_argument("--input", action="append", metavar="DIR|FILE|GLOB", help="input corpus (repeatable)")
    io.add_argument(
        "--input-list",
        action="append",
        metavar="FILE",
        help="a file naming inputs, one DIR|FILE|GLOB per line (blank lines and # comments skipped); relative "
        "paths are read from the list file's directory, not the current one; repeatable, adds to --input",
    )
    io.add_argument("--output", metavar="DIR", help="output directory (outputs, markers, summary)")
    io.add_argument("--output-format", choices=OUTPUT_FORMATS, help="jsonl (default) or parquet")
    io.add_argument(
        "--on-bad-row", choices=BAD_ROW_POLICIES, help="error (default): the file fails; skip: quarantine"
    )
    io.add_argument(
        "--keep-columns",
        nargs="+",
        metavar="COL",
        help="write only these input columns plus the predictions (never the text unless listed); "
        "adds a 0-based row_number column to join on, unless --key-column names one",
    )
    io.add_argument(
        "--key-column", metavar="COL", help="with --keep-columns: the input column that identifies rows"
    )
    io.add_argument(
        "--on-changed-input",
        choices=CHANGED_INPUT_POLICIES,
        help="an input changed since it was classified: error (default: exit 2 naming the files) or redo "
        "(classify it again, replacing its output)",
    )
    io.add_argument(
        "--verify-inputs",
        action="store_const",
        const=True,
        help="compare done inputs with their markers by content hash (reads them all) instead of size and mtime",
    )
    io.add_argument(
        "--overwrite",
        action="store_const",
        const=True,
        help="if --output holds another run's files (other model/settings), discard its markers and redo every "
        "file; if it holds files of no run, write into it anyway; with the same settings this is a plain resume",
    )

    clf = parser.add_argument_group(
        "classifier",
        "--model ... --max-tokens need exactly one classifier (several: use the YAML 'classifiers' list); "
        f"--text-field, {shared_flags_text()} apply to every classifier",
    )
    clf.add_argument(
        "--classifier",
        action="append",
        metavar="NAME|module:Class",
        help=f"a built-in ({BUILTIN_CLASSIFIERS}; default domain), or an importable "
        "DistributedDataClassifier subclass as package.module:ClassName; repeat to run several in one pass",
    )
    clf.add_argument("--model", help="hub id or local checkpoint directory (default: the classifier's model)")
    clf.add_argument("--revision", help="hub revision (branch, tag or commit)")
    clf.add_argument("--filter-by", nargs="+", metavar="LABEL", help="write only rows with these labels")
    clf.add_argument("--text-field", help="column holding the documents (default: text)")
    clf.add_argument("--pred-column", help="name of the prediction column")
    clf.add_argument("--prob-column", help="also write per-label probabilities into this column")
    add_engine_flags(clf)

    run = parser.add_argument_group("execution")
    run.add_argument("--max-retries", type=int, metavar="N", help="retries of a failing file (default 2)")
    run.add_argument(
        "--tasks-per-worker",
        type=int,
        metavar="N",
        help="tasks (a file, or a group of small files) in flight per worker thread (default 2)",
    )
    run.add_argument(
        "--group-bytes",
        type=int,
        metavar="BYTES",
        help="files smaller than this go to a worker together, up to this many bytes per task, and share "
        "full batches; outputs and markers stay per file (default 8388608 = 8 MiB; 0: one file per task)",
    )
    run.add_argument(
        "--piece-bytes",
        type=int,
        metavar="BYTES",
        help="files larger than this are cut into pieces of about this size, shared by all workers and "
        "checkpointed each (default by device: 4194304 = 4 MiB on CPU, 268435456 = 256 MiB on GPUs; "
        "0: whole files)",
    )
    run.add_argument(
        "--progress-interval", type=float, metavar="SECONDS", help="log progress every (default 30)"
    )
    run.add_argument(
        "--stop-grace",
        type=float,
        metavar="SECONDS",
        help="after SIGTERM or SIGINT (also one after the warning), let the files in flight finish for this "
        "long (default 20; in a Slurm job cut to what KillWait leaves, with a warning at the start)",
    )
    run.add_argument(
        "--warning-grace",
        type=float,
        metavar="SECONDS",
        help="after the time-limit warning (USR1 of slurm/classify.sbatch, USR2 of submit), let the files in "
        "flight finish for this long; below the warning's lead (default: the lead less 60 s, 240 for the 300 s "
        "lead; the lead from HPC_CLASSIFY_WARNING_LEAD, which classify.sbatch exports, else 300)",
    )
    run.add_argument(
        "--worker-wait",
        type=float,
        metavar="SECONDS",
        help="no worker at all for this long: stop, exit 3 (resumable); also how long a scheduler to join, and "
        "the first worker, are waited for before exit 2 (default 300; 0 waits forever)",
    )
    run.add_argument(
        "--dask-report",
        action="store_const",
        const=True,
        help="also write Dask's performance report of the classifying (task stream, worker profiles) as "
        "OUT/_dask-report.html, linked from OUT/_report.html",
    )

    cluster = parser.add_argument_group("cluster")
    cluster.add_argument(
        "--cluster", choices=("local", "jobqueue"), help="start a local (default) or jobqueue cluster"
    )
    cluster.add_argument("--scheduler-file", metavar="PATH", help="join the scheduler of this scheduler file")
    cluster.add_argument("--scheduler-address", metavar="ADDR", help="join the scheduler at this address")
    cluster.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="tcp (default) or ucxx for a cluster the run starts; a joined scheduler speaks its own (must match)",
    )
    cluster.add_argument(
        "--workers", type=int, metavar="N", help="local workers (default: 1 on CPU, 1 per GPU)"
    )
    cluster.add_argument(
        "--max-workers",
        type=int,
        metavar="N",
        help="--cluster jobqueue: adapt between --workers and N worker jobs as the queue allows",
    )
    cluster.add_argument(
        "--threads-per-worker", type=int, metavar="N", help="task threads per worker (default 1)"
    )


def handle(args: argparse.Namespace) -> int:
    from hpc_classify.api import classify
    from hpc_classify.cli.run_config import config_from_args

    result = classify(config_from_args(args))
    print(describe_result(result))
    return result.exit_code


def describe_result(result: Any) -> str:
    """The one-line outcome the CLI prints (run, node)."""
    s = result.summary
    return (
        f"{s['files_processed']} file(s) processed, {s['files_skipped']} already done, {s['files_failed']} failed, "
        f"{s['files_remaining']} remaining; {s['documents_in']} documents in, {s['documents_out']} out; "
        f"exit code {result.exit_code} ({s['exit_meaning']}); summary: {result.summary_path}"
    )
