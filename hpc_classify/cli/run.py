"""`hpc-classify run`: classify a sharded corpus into an output directory, resumably.

Settings come from flags and/or a YAML `--config` file whose keys are the long flag names (dashes or
underscores); flags given on the command line override the file. Unknown keys are an error.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from hpc_classify.config import (
    BAD_ROW_POLICIES,
    DEVICES,
    OUTPUT_FORMATS,
    PROTOCOLS,
    ClassifierSettings,
    RunConfig,
)
from hpc_classify.errors import ConfigError

EXIT_CODES_HELP = """exit codes:
  0  every file done
  1  some files failed after their retries (listed in OUTPUT/failures.jsonl); the others are done
  2  usage/config error, output directory refused (other run's fingerprint, locked), or no cluster
  3  interrupted by SIGTERM, SIGINT or SIGUSR1; rerun the same command to resume
"""

CLASSIFIER_KEYS = tuple(f.name for f in dataclasses.fields(ClassifierSettings))
RUN_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("classifier", "inputs"))
# Keys a YAML config may hold: the long flag names, as dests. "inputs" is accepted as an alias of "input".
EXTRA_KEYS = ("input", "stop_grace")
CONFIG_KEYS = frozenset(CLASSIFIER_KEYS + RUN_KEYS + EXTRA_KEYS)
_LIST_KEYS = ("input", "filter_by")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="classify a corpus (resumable: rerun the same command to continue)",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(handler=handle)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    # Every default is None so that a flag the user did not give leaves the YAML value (or the dataclass default).
    io = parser.add_argument_group("input and output")
    io.add_argument("--config", metavar="YAML", help="YAML file of settings (keys = long flag names)")
    io.add_argument("--input", action="append", metavar="DIR|FILE|GLOB", help="input corpus (repeatable)")
    io.add_argument("--output", metavar="DIR", help="output directory (outputs, markers, summary)")
    io.add_argument("--output-format", choices=OUTPUT_FORMATS, help="jsonl (default) or parquet")
    io.add_argument(
        "--on-bad-row", choices=BAD_ROW_POLICIES, help="error (default): the file fails; skip: quarantine"
    )
    io.add_argument(
        "--overwrite",
        action="store_const",
        const=True,
        help="if --output holds another run's files (other model/settings), discard its markers and redo every "
        "file; with the same settings this is a plain resume",
    )

    clf = parser.add_argument_group("classifier")
    clf.add_argument("--classifier", help="domain (default), quality or multilingual-domain")
    clf.add_argument("--model", help="hub id or local checkpoint directory (default: the classifier's model)")
    clf.add_argument("--revision", help="hub revision (branch, tag or commit)")
    clf.add_argument("--filter-by", nargs="+", metavar="LABEL", help="write only rows with these labels")
    clf.add_argument("--text-field", help="column holding the documents (default: text)")
    clf.add_argument("--pred-column", help="name of the prediction column")
    clf.add_argument("--prob-column", help="also write per-label probabilities into this column")
    clf.add_argument("--device", choices=DEVICES, help="auto (default), cpu or cuda")
    clf.add_argument("--no-autocast", dest="autocast", action="store_const", const=False, help="exact fp32")
    for name in ("max-chars", "max-tokens", "batch-size", "token-budget"):
        clf.add_argument(f"--{name}", type=int, metavar="N")

    run = parser.add_argument_group("execution")
    run.add_argument("--max-retries", type=int, metavar="N", help="retries of a failing file (default 2)")
    run.add_argument(
        "--tasks-per-worker", type=int, metavar="N", help="files in flight per worker (default 2)"
    )
    run.add_argument(
        "--progress-interval", type=float, metavar="SECONDS", help="log progress every (default 30)"
    )
    run.add_argument(
        "--stop-grace", type=float, metavar="SECONDS", help="after a signal, wait this long (20)"
    )

    cluster = parser.add_argument_group("cluster")
    cluster.add_argument(
        "--cluster", choices=("local", "jobqueue"), help="start a local (default) or jobqueue cluster"
    )
    cluster.add_argument("--scheduler-file", metavar="PATH", help="join the scheduler of this scheduler file")
    cluster.add_argument("--scheduler-address", metavar="ADDR", help="join the scheduler at this address")
    cluster.add_argument("--protocol", choices=PROTOCOLS, help="tcp (default) or ucxx")
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
    from hpc_classify.driver.run import DEFAULT_STOP_GRACE, run_classification

    settings = merge_settings(load_yaml_config(args.config) if args.config else {}, vars(args))
    stop_grace = settings.pop("stop_grace", None)
    config = build_run_config(settings)
    result = run_classification(
        config, stop_grace=DEFAULT_STOP_GRACE if stop_grace is None else float(stop_grace)
    )
    s = result.summary
    print(
        f"{s['files_processed']} file(s) processed, {s['files_skipped']} already done, {s['files_failed']} failed, "
        f"{s['files_remaining']} remaining; {s['documents_in']} documents in, {s['documents_out']} out; "
        f"exit code {result.exit_code} ({s['exit_meaning']}); summary: {result.summary_path}"
    )
    return result.exit_code


def load_yaml_config(path: str) -> dict[str, Any]:
    """Read a YAML mapping of settings; keys normalised to flag dests; unknown keys -> ConfigError."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must hold a mapping of settings, not a {type(data).__name__}")
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = "input" if name == "inputs" else name
        if name not in CONFIG_KEYS:
            raise ConfigError(
                f"unknown key {key!r} in --config {path}",
                hint=f"valid keys: {', '.join(sorted(CONFIG_KEYS))}",
            )
        if name in _LIST_KEYS and isinstance(value, str):
            value = [value]
        settings[name] = value
    return settings


def merge_settings(from_file: dict[str, Any], from_flags: dict[str, Any]) -> dict[str, Any]:
    """YAML values, overridden by every flag that was given (flags left at None do not override)."""
    merged = dict(from_file)
    merged.update({k: v for k, v in from_flags.items() if k in CONFIG_KEYS and v is not None})
    return merged


def build_run_config(settings: dict[str, Any]) -> RunConfig:
    """A validated RunConfig from merged settings (missing keys take the dataclass defaults)."""
    classifier_values = {k: settings[k] for k in CLASSIFIER_KEYS if k in settings}
    run_values = {k: settings[k] for k in RUN_KEYS if k in settings}
    try:
        classifier = ClassifierSettings(**classifier_values)
        return RunConfig(inputs=tuple(settings.get("input") or ()), classifier=classifier, **run_values)
    except TypeError as exc:  # a YAML value of the wrong kind reaching a dataclass
        raise ConfigError(f"invalid setting: {exc}") from exc
