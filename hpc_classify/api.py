"""A run as users start it: `hpc_classify.run(...)` from Python, and `classify(config)` for the CLI's
commands: the resumable driver plus the run report (driver/run.py never imports the report layer).

    from hpc_classify import DomainClassifier, QualityClassifier, run

    if __name__ == "__main__":  # the local cluster's workers import this script again
        result = run([DomainClassifier(filter_by=["News"]), QualityClassifier()], "/data/corpus", "/data/out")
        result.exit_code, result.summary["documents_out"]

Same resumability, markers, fingerprint, lock, signals and exit codes as `hpc-classify run`. Its settings
are RunConfig's fields, by the same names, defaults and meanings (its signature is built from them).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Sequence
from typing import Any

from hpc_classify.config import CLUSTER_KINDS, WORKER_SETTINGS, RunConfig
from hpc_classify.driver.run import RunResult, run_classification
from hpc_classify.errors import ConfigError
from hpc_classify.report.run_hooks import REPORT_HOOKS
from hpc_classify.stop_request import StopRequest

_POSITIONAL = ("classifiers", "inputs", "output")


def classify(config: RunConfig, *, client: Any | None = None, stop: StopRequest | None = None) -> RunResult:
    """`run_classification(config)` that ends with the run report (and, with `dask_report`, Dask's).
    `stop`: an entered StopRequest that the caller holds (see run_classification)."""
    return run_classification(config, client=client, hooks=REPORT_HOOKS, stop=stop)


_SETTINGS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in _POSITIONAL)


def run(
    classifiers: Any | Sequence[Any],
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    client: Any | None = None,
    **settings: Any,
) -> RunResult:
    """Classify `inputs` (a directory, file or glob, or a list of them) into `output` with `classifiers`
    (one DistributedDataClassifier or a list: one pass over each file) and return a RunResult
    (`.exit_code`, `.summary` = the `_summary.json` dict).

    Every other keyword is a field of `hpc_classify.config.RunConfig` (e.g. `on_bad_row`, `workers`,
    `cluster="local"|"jobqueue"`, `scheduler_file`, `worker_wait`): the same name, default, meaning and
    validation as the CLI's flag. `client`: a `distributed.Client` to use as it is (left open) instead of
    a cluster the run starts or joins.

    `cluster` also takes, as it did before `client=` existed, a Client (the same as `client=`) or the path
    of a scheduler file (the same as `scheduler_file=`).
    """
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise ConfigError(
            f"run() got unknown setting(s): {', '.join(unknown)}",
            hint=f"its settings are RunConfig's fields: {', '.join(_SETTINGS)}",
        )
    client = _client_given_as_cluster(settings, client)
    if client is not None:
        if not hasattr(client, "submit") or not hasattr(client, "nthreads"):
            raise ConfigError(
                f"client must be a distributed.Client, not {type(client).__name__}",
                hint="for a LocalCluster or SLURMCluster object, pass distributed.Client(cluster)",
            )
        ignored = [
            n
            for n in (*WORKER_SETTINGS, "scheduler_file", "scheduler_address", "protocol")
            if settings.get(n) is not None
        ]
        ignored += ["cluster"] if settings.get("cluster", "local") != "local" else []
        if ignored:
            raise ConfigError(
                f"{', '.join(ignored)} given with client=: the client's cluster is used as it is",
                hint="drop them, or drop client= to let the run start or join a cluster",
            )
    config = RunConfig(inputs=inputs, output=output, classifiers=classifiers, **settings)
    return classify(config, client=client)


def _client_given_as_cluster(settings: dict[str, Any], client: Any | None) -> Any | None:
    """`cluster` beyond RunConfig's kinds, as documented before `client=` existed: a Client (used as it is)
    or a scheduler file (joined); None is the default (a local cluster). Returns the client to use."""
    cluster = settings.get("cluster")
    if "cluster" in settings and cluster is None:
        del settings["cluster"]
    elif isinstance(cluster, os.PathLike) or (
        isinstance(cluster, str) and cluster not in CLUSTER_KINDS and _looks_like_a_file(cluster)
    ):
        if settings.get("scheduler_file"):
            raise ConfigError("a scheduler file given both as scheduler_file= and as cluster=")
        settings["scheduler_file"] = os.fspath(settings.pop("cluster"))
    elif cluster is not None and not isinstance(cluster, str):
        if client is not None:
            raise ConfigError("a client given both as client= and as cluster=")
        return settings.pop("cluster")
    return client


def _looks_like_a_file(value: str) -> bool:
    return os.sep in value or value.endswith(".json") or os.path.exists(value)


def _signature() -> inspect.Signature:
    """run's signature with RunConfig's fields spelled out (for help(), IDEs and inspect)."""
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    params = list(inspect.signature(run).parameters.values())[:-1]  # without **settings
    for name in _SETTINGS:
        field = fields[name]
        default = field.default if field.default is not dataclasses.MISSING else None
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=field.type)
        )
    return inspect.Signature(params, return_annotation=RunResult)


run.__signature__ = _signature()  # type: ignore[attr-defined]
