"""`RunConfig`: one driver run, typed and validated. It holds the classifier objects themselves (settings
only, small, picklable): the CLI and YAML build it once, Python's `hpc_classify.run` takes it directly,
and `submit`/`node` carry it as this object, never as a command line to parse again."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpc_classify.errors import ConfigError
from hpc_classify.whole_numbers import is_integer, is_seconds, plain_number, seconds_rule

DEVICES = ("auto", "cpu", "cuda")
BAD_ROW_POLICIES = ("error", "skip")
CHANGED_INPUT_POLICIES = ("error", "redo")
ROW_NUMBER_COLUMN = "row_number"
OUTPUT_FORMATS = ("jsonl", "parquet")
PROTOCOLS = ("tcp", "ucxx")
DEFAULT_PROTOCOL = "tcp"
# Seconds without any worker that stop a run (--worker-wait); local workers must start within it too.
DEFAULT_WORKER_WAIT = 300.0
# The settings in seconds, and whether 0 is allowed (a grace of 0; worker_wait 0: no limit).
SECONDS_SETTINGS = (
    ("progress_interval", False),
    ("stop_grace", True),
    ("warning_grace", True),
    ("worker_wait", True),
)
# The clusters a run starts itself; on Slurm the launcher (slurm/classify.sbatch, `hpc-classify submit`)
# starts the cluster and the run joins it by its scheduler file.
CLUSTER_KINDS = ("local", "jobqueue")
# Settings of the workers a run starts itself: they do not apply when it joins a running scheduler.
WORKER_SETTINGS = ("workers", "max_workers", "threads_per_worker")
# What the backbone's matrix products run in: auto = bf16 where the hardware has it natively (fp16 on older
# GPUs), else fp32; fp16 = NeMo Curator's torch.autocast("cuda") on any GPU (GPU only); int8 = dynamically
# quantized Linear layers (CPU only). See hpc_classify.engine.precision.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
# torch.compile of the model ("auto", True, False; --compile auto|on|off): decided here for the classifiers'
# options and the engine alike (check_compile, compile_from_text). See hpc_classify.engine.compiled.

# About 4,000 documents of 2 kB: enough for full batches on any device, small enough that a killed task
# loses little and a stop's grace period is not spent on one long task.
DEFAULT_GROUP_BYTES = 8 * 1024 * 1024


def check_precision(precision: str, autocast: bool = True) -> None:
    """ConfigError unless `precision` is one of PRECISIONS and agrees with `autocast` (False: exact fp32)."""
    if precision not in PRECISIONS:
        raise ConfigError(
            f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}",
            hint="auto picks bf16 where the hardware has it natively and fp32 elsewhere",
        )
    if not autocast and precision not in ("auto", "fp32"):
        raise ConfigError(
            f"autocast=False (--no-autocast) means exact fp32, but precision={precision!r} was also given",
            hint="give one of them: --precision fp32 (same as --no-autocast) or --precision "
            f"{precision} without --no-autocast",
        )


def check_compile(compile: object, precision: str = "auto") -> None:
    """ConfigError unless `compile` is "auto", True or False, and can take effect in `precision`.

    auto = compiled where measured faster (so far nowhere: eager; HPC_CLASSIFY_COMPILE=on makes auto compile),
    True, False (the eager path). A speed setting: outputs stay within the precision's tolerance, so it is not
    in the fingerprint."""
    if not (compile == "auto" or isinstance(compile, bool)):
        raise ConfigError(
            f"compile must be auto, true or false, not {compile!r}",
            hint="auto: compiled where measured faster (HPC_CLASSIFY_COMPILE=on|off sets it); false: eager",
        )
    if compile is True and precision == "int8":
        raise ConfigError(
            "compile=True with precision int8: the dynamically quantized Linear layers are not compiled",
            hint="use compile auto/false with int8, or precision bf16/fp32 with compile",
        )


def compile_from_text(text: str) -> bool | str:
    """--compile auto|on|off as the `compile` setting ("auto", True, False)."""
    choices = {"auto": "auto", "on": True, "true": True, "off": False, "false": False}
    if text.lower() not in choices:
        raise ValueError(f"invalid choice: {text!r} (choose from auto, on, off)")
    return choices[text.lower()]


@dataclass(frozen=True)
class RunConfig:
    """One `hpc-classify run`: inputs, output, the classifiers, policies and the cluster to use.

    `classifiers` are DistributedDataClassifier objects (one, or a sequence: all run in one pass over
    each file). `keep_columns` limits the written input columns (the prediction columns are always
    written); unless `key_column` names one of them, a 0-based `row_number` column is added to join on."""

    inputs: tuple[str, ...]
    output: str
    classifiers: tuple[Any, ...]
    output_format: str = "jsonl"
    on_bad_row: str = "error"
    keep_columns: tuple[str, ...] | None = None
    key_column: str | None = None
    max_retries: int = 2
    overwrite: bool = False
    tasks_per_worker: int = 2  # tasks in flight per task thread of each worker (dispatch.Dispatcher.capacity)
    # Files smaller than this go to a worker together, up to this many bytes per task, and share the
    # engine's batches (driver/grouping.py); 0: one file per task.
    group_bytes: int = DEFAULT_GROUP_BYTES
    # Files larger than this are cut into pieces of about this size, classified by any worker and
    # checkpointed each (driver/pieces.py); None: by device (4 MiB on CPU, 256 MiB on GPUs); 0: whole files.
    piece_bytes: int | None = None
    progress_interval: float = 30.0
    stop_grace: float = 20.0  # after TERM/INT; in a Slurm job cut to fit KillWait (stop_request.StopDeadline)
    # After the time-limit warning (USR1, USR2), which comes minutes before the limit. None: the warning's lead
    # less a margin (warning_grace.resolve_warning_grace): 240 s for the default lead of 300 s.
    warning_grace: float | None = None
    on_changed_input: str = "error"  # an input changed after its marker: "error" (exit 2) or "redo"
    verify_inputs: bool = False  # compare done inputs by content hash rather than size and mtime
    worker_wait: float = DEFAULT_WORKER_WAIT  # no worker for this long -> stop, exit 3 (0: wait forever)
    dask_report: bool = (
        False  # also Dask's performance_report of the classifying as <output>/_dask-report.html
    )
    cluster: str = "local"
    scheduler_file: str | None = None
    scheduler_address: str | None = None
    # None: tcp for a cluster the run starts; a scheduler it joins decides by its address (a given
    # protocol must then match it: connect.py).
    protocol: str | None = None
    workers: int | None = None
    max_workers: int | None = None  # jobqueue: adapt between workers and this
    threads_per_worker: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.inputs, Mapping):  # its keys would be taken silently
            raise ConfigError(
                f"inputs must be paths, not {self.inputs!r}", hint="give a file, directory or glob"
            )
        inputs = (self.inputs,) if isinstance(self.inputs, str | os.PathLike) else self.inputs
        for name, values in (("inputs", inputs), ("output", (self.output,))):
            bad = [v for v in values if v is not None and not isinstance(v, str | os.PathLike)]
            if bad:
                raise ConfigError(
                    f"{name} must be paths, not {bad[0]!r}", hint="give a file, directory or glob"
                )
        object.__setattr__(self, "inputs", tuple(os.fspath(i) for i in inputs))
        object.__setattr__(self, "output", os.fspath(self.output) if self.output else self.output)
        classifiers = self.classifiers
        if not isinstance(classifiers, list | tuple):
            classifiers = (classifiers,)
        object.__setattr__(self, "classifiers", tuple(classifiers))
        if not self.classifiers:
            raise ConfigError("no classifier given", hint="pass --classifier NAME|module:Class (repeatable)")
        self._check_columns()
        if not self.inputs:
            raise ConfigError("no --input given", hint="pass --input DIR|FILE|GLOB (repeatable)")
        if not self.output:
            raise ConfigError("no --output given", hint="pass --output DIR")
        _check_choice("output_format", self.output_format, OUTPUT_FORMATS)
        _check_choice("on_bad_row", self.on_bad_row, BAD_ROW_POLICIES)
        if self.protocol is not None:
            _check_choice("protocol", self.protocol, PROTOCOLS)
        _check_choice("on_changed_input", self.on_changed_input, CHANGED_INPUT_POLICIES)
        self._check_number_types()
        self._check_cluster()
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, not {self.max_retries}")
        if self.max_workers is not None and self.max_workers < (self.workers or 1):
            raise ConfigError(
                f"max_workers ({self.max_workers}) must be at least workers ({self.workers or 1})",
                hint="--max-workers is the upper bound of the elastic jobqueue cluster",
            )
        if self.tasks_per_worker < 1:
            raise ConfigError(f"tasks_per_worker must be >= 1, not {self.tasks_per_worker}")
        if self.group_bytes < 0:
            raise ConfigError(
                f"group_bytes must be >= 0, not {self.group_bytes}", hint="0 sends one file per task"
            )
        if self.piece_bytes is not None and self.piece_bytes < 0:
            raise ConfigError(
                f"piece_bytes must be >= 0, not {self.piece_bytes}", hint="0 classifies every file whole"
            )

    def _check_number_types(self) -> None:
        # A YAML value such as `max_retries: many`, `max_retries:` (null) or `overwrite: 'false'` must fail
        # here by name, not later in a comparison or, worse, as a truthy string that discards a run.
        for name, optional in (
            ("max_retries", False),
            ("tasks_per_worker", False),
            ("group_bytes", False),
            ("piece_bytes", True),
            ("workers", True),
            ("max_workers", True),
            ("threads_per_worker", True),
        ):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if not is_integer(value):
                raise ConfigError(f"{name} must be an integer, not {value!r}")
            # A computed count (numpy's int64) is taken, as a plain int: the configuration is written as JSON.
            object.__setattr__(self, name, int(value))
        for name in ("workers", "max_workers", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, not {value}", hint="leave it unset for the default")
        for name, allow_zero in SECONDS_SETTINGS:
            value = getattr(self, name)
            if value is None and name == "warning_grace":
                continue
            if not is_seconds(value, allow_zero=allow_zero):
                no_limit = " (0: no limit)" if name == "worker_wait" else ""
                raise ConfigError(
                    f"{name} must be {seconds_rule(allow_zero=allow_zero)}{no_limit}, not {value!r}"
                )
            # numpy's (a computed wait) as Python's, for the JSON: np.float64 is a float, so no isinstance.
            if type(value) not in (int, float):
                object.__setattr__(self, name, plain_number(value))
        for name in ("overwrite", "verify_inputs", "dask_report"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(
                    f"{name} must be true or false, not {value!r}",
                    hint="in a YAML config write it unquoted: `overwrite: true`",
                )

    def _check_cluster(self) -> None:
        """How the run reaches its workers; a setting that would not apply on that path is refused."""
        if self.cluster not in CLUSTER_KINDS:
            raise ConfigError(
                f"cluster must be one of {', '.join(CLUSTER_KINDS)}, not {self.cluster!r}",
                hint="on Slurm, submit slurm/classify.sbatch or use `hpc-classify submit`: they start the "
                "cluster across the allocation and run the driver on it",
            )
        if self.scheduler_file and self.scheduler_address:
            raise ConfigError("scheduler_file and scheduler_address both given: join one scheduler")
        joined = self.scheduler_file or self.scheduler_address
        if joined:
            started = [n for n in WORKER_SETTINGS if getattr(self, n) is not None]
            started += ["cluster"] if self.cluster != "local" else []
            if started:
                raise ConfigError(
                    f"{', '.join(started)} given with a scheduler to join ({joined}): they apply only to "
                    "a cluster the run starts itself",
                    hint="set the workers where that scheduler's workers are started, or drop the scheduler",
                )
        if self.max_workers is not None and self.cluster != "jobqueue":
            raise ConfigError(
                f"max_workers applies only to cluster jobqueue (an elastic cluster), not {self.cluster!r}",
                hint="use --workers for the local cluster's size, or --cluster jobqueue",
            )

    def _check_columns(self) -> None:
        keep = self.keep_columns
        if keep is not None:
            keep = (keep,) if isinstance(keep, str) else (() if isinstance(keep, Mapping) else tuple(keep))
            if not keep or not all(isinstance(c, str) and c for c in keep):
                raise ConfigError(f"keep_columns must be a list of column names, not {self.keep_columns!r}")
            object.__setattr__(self, "keep_columns", keep)
        if keep is not None and self.key_column is None and ROW_NUMBER_COLUMN in keep:
            # Both would be written under one name: the input's or ours would be lost (pandas refused it).
            raise ConfigError(
                f"--keep-columns {ROW_NUMBER_COLUMN}: a lean output already has a {ROW_NUMBER_COLUMN!r} column, "
                "which the run adds to join it back to its input (each row's 0-based position in its file)",
                hint=f"if the inputs' {ROW_NUMBER_COLUMN!r} identifies their rows, join on it instead: "
                f"--key-column {ROW_NUMBER_COLUMN} (key_column in a YAML config or run()), and no column is "
                f"added; else leave {ROW_NUMBER_COLUMN!r} out of --keep-columns, or rename it in the inputs",
            )
        if self.key_column is not None:
            if keep is None:
                raise ConfigError("key_column is only meaningful with keep_columns")
            if self.key_column not in keep:
                object.__setattr__(self, "keep_columns", (*keep, self.key_column))

    @property
    def cluster_protocol(self) -> str:
        """The protocol of a cluster the run (or the Slurm launcher) starts itself."""
        return self.protocol or DEFAULT_PROTOCOL

    @property
    def device(self) -> str:
        """The device the cluster's workers are for: cuda if any classifier asks for it, else auto/cpu."""
        devices = {getattr(c, "device", "auto") for c in self.classifiers}
        return "cuda" if "cuda" in devices else ("auto" if "auto" in devices else "cpu")

    @property
    def row_number_column(self) -> str | None:
        """The join column added to lean outputs (keep_columns without a key_column), else None."""
        return ROW_NUMBER_COLUMN if self.keep_columns is not None and self.key_column is None else None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def stable_hash(data: Any) -> str:
    """A short, stable hash of JSON-serialisable data (keys sorted)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
