"""The end of a complete Parquet run (the one-schema step, the summary, the report) reads each completion marker
once: on a parallel file system each read is a metadata round trip, tens of thousands of them at the end of a
big run. The one exception is deliberate: a marker is read again right before its output_size is changed (left
as it is if another run changed it), so a rewritten output's marker is read twice. The report written from the
markers handed on equals one collected afresh from the directory.

In-process Dask (threads), so that the opens of the run's markers can be counted in this process."""

from __future__ import annotations

import builtins
import json
import os
from collections import Counter
from pathlib import Path

from driver_support import summary

from hpc_classify import DomainClassifier, run
from hpc_classify.driver import run as driver_run
from hpc_classify.io.markers import MARKER_SUFFIX, MARKERS_DIRNAME
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus
from hpc_classify.report.gather import collect_report


def _shard(inputs: Path, name: str, values: list) -> None:
    texts, _ = synthetic_corpus(len(values), DOMAIN_LABELS, seed=ord(name))
    rows = [
        {"id": f"{name}-{i}", "text": t, "x": x} for i, (t, x) in enumerate(zip(texts, values, strict=True))
    ]
    (inputs / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_complete_parquet_runs_end_reads_each_marker_once(
    tmp_path, tiny_domain_model, local_client, monkeypatch
):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    _shard(inputs, "a", [1, 2, 3])  # x int64: rewritten to double
    _shard(inputs, "b", [4, 5])  # x int64: rewritten to double
    _shard(inputs, "c", [0.5, 1.5])  # x double: the unified schema already
    markers = str(out / MARKERS_DIRNAME) + os.sep
    at_the_end, reads = [False], Counter()
    real_open, real_after_run = builtins.open, driver_run.after_run

    def counting_open(file, mode="r", *args, **kwargs):
        path = os.fspath(file) if isinstance(file, str | os.PathLike) else ""
        if at_the_end[0] and "r" in mode and path.startswith(markers) and path.endswith(MARKER_SUFFIX):
            reads[path[len(markers) : -len(MARKER_SUFFIX)]] += 1
        return real_open(file, mode, *args, **kwargs)

    def end_of_run(*args, **kwargs):
        at_the_end[0] = True
        return real_after_run(*args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)  # only this test's marker paths are counted
    monkeypatch.setattr(driver_run, "after_run", end_of_run)
    classifier = DomainClassifier(model=str(tiny_domain_model), autocast=False, device="cpu")

    result = run(classifier, inputs, out, cluster=local_client, output_format="parquet")

    assert result.exit_code == 0
    assert summary(out)["output_schema"]["rewritten"] == 2
    # Once each; a and b once more: the re-read right before their new output_size is written.
    assert reads == {"a.jsonl": 2, "b.jsonl": 2, "c.jsonl": 1}
    written = json.loads((out / "_report.json").read_text())
    afresh = collect_report(str(out), relist_inputs=False)
    assert written | {"generated_at": ""} == afresh | {"generated_at": ""}
    assert (written["files"]["done"], written["documents"]["in"]) == (3, 7)
