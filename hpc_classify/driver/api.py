"""`hpc_classify.run(...)`: the resumable driver from Python, with classifier objects as they are.

    from hpc_classify import DomainClassifier, QualityClassifier, run

    result = run([DomainClassifier(filter_by=["News"]), QualityClassifier()], "/data/corpus", "/data/out")
    result.exit_code, result.summary["documents_out"]

Same resumability, markers, fingerprint, lock, signals and exit codes as `hpc-classify run`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from hpc_classify.config import DEFAULT_GROUP_BYTES, RunConfig
from hpc_classify.driver.run import RunResult, run_classification
from hpc_classify.errors import ConfigError


def run(
    classifiers: Any | Sequence[Any],
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    cluster: Any | None = None,
    protocol: str = "tcp",
    output_format: str = "jsonl",
    on_bad_row: str = "error",
    keep_columns: Sequence[str] | None = None,
    key_column: str | None = None,
    overwrite: bool = False,
    max_retries: int = 2,
    tasks_per_worker: int = 2,
    group_bytes: int = DEFAULT_GROUP_BYTES,
    piece_bytes: int | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    progress_interval: float = 30.0,
    stop_grace: float = 20.0,
) -> RunResult:
    """Classify `inputs` (a directory, file or glob, or a list of them) into `output` with `classifiers`
    (one DistributedDataClassifier or a list: one pass over each file) and return a RunResult
    (`.exit_code`, `.summary` = the `_summary.json` dict).

    `cluster`: None starts a local cluster (`workers`, `threads_per_worker`, `protocol`) and stops it at
    the end; a `distributed.Client` is used as it is (and left open); a string or path is a Dask
    scheduler file to join.
    """
    client = None
    scheduler_file = None
    if isinstance(cluster, str | os.PathLike):
        scheduler_file = os.fspath(cluster)
    elif cluster is not None:
        if not hasattr(cluster, "submit") or not hasattr(cluster, "nthreads"):
            raise ConfigError(
                f"cluster must be None, a distributed.Client or a scheduler file, not {type(cluster).__name__}",
                hint="for a LocalCluster or SLURMCluster object, pass distributed.Client(cluster)",
            )
        client = cluster
    config = RunConfig(  # normalises a single path, PathLike inputs and one classifier itself
        inputs=inputs,
        output=output,
        classifiers=classifiers,
        output_format=output_format,
        on_bad_row=on_bad_row,
        keep_columns=keep_columns,
        key_column=key_column,
        overwrite=overwrite,
        max_retries=max_retries,
        tasks_per_worker=tasks_per_worker,
        group_bytes=group_bytes,
        piece_bytes=piece_bytes,
        progress_interval=progress_interval,
        stop_grace=stop_grace,
        scheduler_file=scheduler_file,
        protocol=protocol,
        workers=workers,
        threads_per_worker=threads_per_worker,
    )
    return run_classification(config, client=client)
