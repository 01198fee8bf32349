"""The engine through Dask as `hpc-classify run` uses it: the texts written as input files, classified by
`run_classification` on a local cluster started as the CLI starts it, outputs and markers written.

Each worker builds the seeded model once (not timed) and keeps its engine between tasks. Timed twice on
the same cluster: with the run's default `group_bytes` (small files share a worker's batches) and with one
file per task, so the report shows what cross-file batching gains. Top-level like the CLI, so it may
import `distributed` and the cluster layer (the engine never does)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hpc_classify.bench.bench_classifier import PROBABILITIES_COLUMN, BenchClassifier
from hpc_classify.bench.runners import Timing
from hpc_classify.config import DEFAULT_GROUP_BYTES

logger = logging.getLogger(__name__)


def _load_engine(classifier: BenchClassifier) -> None:
    # A task, not `client.run`: the engine is built on the executor thread that runs the files (its
    # OpenMP thread settings are per thread), exactly as a run's first file builds it.
    engine, _ = classifier.engine()
    engine.predict_proba(["warm up"])


def write_input_files(texts: Sequence[str], files: int, directory: str) -> list[str]:
    """`texts` split into `files` JSONL files of consecutive documents (names sort in text order)."""
    os.makedirs(directory, exist_ok=True)
    bounds = np.linspace(0, len(texts), files + 1).astype(int)
    paths = []
    for number, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if b <= a:
            continue
        path = os.path.join(directory, f"part-{number:04d}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": text}) + "\n" for text in texts[a:b])
        paths.append(path)
    return paths


def read_probabilities(output_dir: str, inputs: Sequence[str]) -> np.ndarray:
    """The probabilities column of each input's output, in input order."""
    rows: list[list[float]] = []
    for path in inputs:
        with open(os.path.join(output_dir, os.path.basename(path)), encoding="utf-8") as f:
            rows.extend(json.loads(line)[PROBABILITIES_COLUMN] for line in f if line.strip())
    return np.asarray(rows, dtype=np.float32)


def bench_classifier(
    tokenizer: Any, *, seed: int, num_labels: int, max_chars: int, max_tokens: int, precision: str
) -> BenchClassifier:
    return BenchClassifier(
        tokenizer_json=tokenizer.backend_tokenizer.to_str(),
        seed=seed,
        num_labels=num_labels,
        max_chars=max_chars,
        max_tokens=max_tokens,
        precision=precision,
    )


def load_workers(client: Any, classifier: BenchClassifier) -> float:
    """Every worker builds and warms its engine; returns the seconds it took (not part of any timing)."""
    started = time.perf_counter()
    for address in client.scheduler_info()["workers"]:
        client.submit(_load_engine, classifier, workers=[address], pure=False).result()
    return time.perf_counter() - started


def time_run(
    client: Any,
    classifier: BenchClassifier,
    input_dir: str,
    output_dir: str,
    *,
    group_bytes: int,
    name: str,
    documents: int,
    tokens: int,
    detail: dict[str, Any],
) -> Timing:
    """One `run_classification` of `input_dir` into the fresh `output_dir` on `client`, timed."""
    from hpc_classify.config import RunConfig
    from hpc_classify.driver.run import run_classification

    config = RunConfig(
        inputs=(input_dir,),
        output=output_dir,
        classifiers=(classifier,),
        group_bytes=group_bytes,
        progress_interval=3600.0,
    )
    start = time.perf_counter()
    result = run_classification(config, client=client)
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(f"the benchmark's Dask run failed: {result.summary}")
    logger.info("Dask path, group_bytes %d: %.1f s", group_bytes, seconds)
    return Timing(name, seconds, documents, tokens, {**detail, "group_bytes": group_bytes})


def time_dask(
    texts: Sequence[str],
    tokens: int,
    *,
    tokenizer: Any,
    seed: int,
    num_labels: int,
    max_chars: int,
    max_tokens: int,
    workers: int,
    partitions: int,
    precision: str = "auto",
) -> tuple[list[Timing], np.ndarray]:
    """Time `run_classification` over `texts` split into `partitions` files, after each worker loaded its
    model: one file per task (`engine_dask_per_file`), then grouped (`engine_dask`, the default). Returns
    both timings and the grouped run's probabilities in text order."""
    from distributed import Client

    from hpc_classify.cluster.local import available_cores, start_local_cluster

    classifier = bench_classifier(
        tokenizer,
        seed=seed,
        num_labels=num_labels,
        max_chars=max_chars,
        max_tokens=max_tokens,
        precision=precision,
    )
    timings: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="hpc-classify-bench-") as scratch:
        input_dir = os.path.join(scratch, "input")
        inputs = write_input_files(texts, partitions, input_dir)
        cluster = start_local_cluster(workers=workers, threads_per_worker=1, device="cpu")
        with cluster, Client(cluster) as client:
            load_seconds = load_workers(client, classifier)
            detail = {
                "workers": workers,
                "threads_per_worker": 1,
                "torch_threads": max(1, available_cores() // workers),
                "files": len(inputs),
                "worker_model_load_s": round(load_seconds, 2),
                "precision": precision,
            }
            for name, group_bytes in (("engine_dask_per_file", 0), ("engine_dask", DEFAULT_GROUP_BYTES)):
                output = os.path.join(scratch, name)
                timings.append(
                    time_run(
                        client,
                        classifier,
                        input_dir,
                        output,
                        group_bytes=group_bytes,
                        name=name,
                        documents=len(texts),
                        tokens=tokens,
                        detail=detail,
                    )
                )
        probabilities = read_probabilities(output, inputs)
    logger.info("Dask path: worker model load %.1f s (not timed)", load_seconds)
    return timings, probabilities
