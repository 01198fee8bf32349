"""The engine through a local Dask cluster (worker processes on the same cores), as `hpc-classify run` uses it.

Each worker rebuilds the seeded model once and keeps its engine between tasks; only texts and
probabilities travel. Top-level like the CLI, so it may import `distributed` (the engine never does)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hpc_classify.bench.runners import Timing

logger = logging.getLogger(__name__)

_WORKER_ENGINES: dict[tuple, Any] = {}
_WORKER_LOCK = threading.Lock()


def _worker_engine(spec: dict[str, Any]) -> Any:
    from hpc_classify.bench.corpus import wrap_tokenizer
    from hpc_classify.bench.model import build_base_sized_classifier
    from hpc_classify.engine import InferenceEngine, configure_threads

    key = tuple(sorted((k, v) for k, v in spec.items() if k != "tokenizer_json"))
    with _WORKER_LOCK:
        engine = _WORKER_ENGINES.get(key)
        if engine is None:
            configure_threads(spec["threads"])
            model = build_base_sized_classifier(spec["num_labels"], seed=spec["seed"])
            engine = InferenceEngine(
                model,
                wrap_tokenizer(spec["tokenizer_json"], spec["max_tokens"]),
                device="cpu",
                precision=spec["precision"],
                # Eager, like engine_<precision>: this row measures the Dask overhead, not compiling.
                compile=False,
                max_chars=spec["max_chars"],
                max_tokens=spec["max_tokens"],
            )
            engine.predict_proba(["warm up"])
            _WORKER_ENGINES[key] = engine
    return engine


def _load_engine(spec: dict[str, Any]) -> None:
    _worker_engine(spec)  # `client.run` sends results back: return nothing, not the engine


def _classify_partition(texts: list[str], spec: dict[str, Any]) -> np.ndarray:
    from hpc_classify.engine import configure_threads

    engine = _worker_engine(spec)
    configure_threads(spec["threads"])  # this executor thread's OpenMP setting, not just the loader's
    return engine.predict_proba(texts)


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
    torch_threads: int,
    partitions: int,
    precision: str = "auto",
) -> tuple[Timing, np.ndarray]:
    """Time classifying `texts` split into `partitions` tasks (like files), after each worker loaded its model.

    Workers are set up as `hpc-classify run` sets them up: one task at a time per worker, torch using the
    worker's share of the cores (`torch_threads`)."""
    from distributed import Client, LocalCluster

    spec = {
        "seed": seed,
        "num_labels": num_labels,
        "max_chars": max_chars,
        "max_tokens": max_tokens,
        "threads": torch_threads,
        "precision": precision,
        "tokenizer_json": tokenizer.backend_tokenizer.to_str(),
    }
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter()
        client.run(_load_engine, spec)  # every worker builds and warms its engine (not timed)
        load_seconds = time.perf_counter() - started
        bounds = np.linspace(0, len(texts), partitions + 1).astype(int)
        pieces = [list(texts[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
        start = time.perf_counter()
        futures = [client.submit(_classify_partition, piece, spec, pure=False) for piece in pieces]
        probabilities = np.concatenate(client.gather(futures))
        seconds = time.perf_counter() - start
    detail = {
        "workers": workers,
        "threads_per_worker": 1,
        "torch_threads": torch_threads,
        "partitions": len(pieces),
        "worker_model_load_s": round(load_seconds, 2),
        "precision": precision,
    }
    logger.info("Dask path: %.1f s (+ %.1f s model load)", seconds, load_seconds)
    return Timing("engine_dask", seconds, len(texts), tokens, detail), probabilities
