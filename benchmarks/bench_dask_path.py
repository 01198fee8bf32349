"""The Dask path against one process, repeated and alternated, for a machine whose load drifts (prints
figures; not a test).

The corpus, model and precision of `hpc-classify bench` (its documents cut to 2,000 characters, the seeded
DeBERTa-v3-base-sized backbone, precision auto). One local cluster as `hpc-classify run` starts it (one
worker, torch on all cores), the workers' engines loaded once. Then, `--repeats` times, in turn:
(a) the engine in this process over all documents in one call (the bench's single-process figure),
(b) the same engine over the `--files` pieces one call each (what one file per task costs without Dask),
(c) `run_classification` over the pieces written as files, one file per task (`group_bytes` 0),
(d) the same with the default `group_bytes` (small files grouped: one task, batches across files).
Reported: each contender's best and median seconds, and (b), (c), (d) as fractions of (a) (best over
best: the least disturbed run of each); for (c) and (d) also the time inside the worker's tasks (from the
first file's read to the last file's marker, by the markers), the rest being the driver's and Dask's. The engine sleeps while the cluster runs and vice versa.

    .venv/bin/python benchmarks/bench_dask_path.py [--documents 48] [--files 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import time

from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
from hpc_classify.bench.dask_path import bench_classifier, load_workers, time_run, write_input_files
from hpc_classify.bench.hardware import cpu_isa, describe_machine
from hpc_classify.bench.model import build_base_sized_classifier
from hpc_classify.config import DEFAULT_GROUP_BYTES
from hpc_classify.engine import InferenceEngine, configure_threads
from hpc_classify.io.markers import iter_markers

NUM_LABELS, MAX_CHARS, MAX_TOKENS, SEED = 26, 2000, 512, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=48)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", help="also write the figures to this JSON file")
    args = parser.parse_args()

    from distributed import Client

    from hpc_classify.cluster.local import start_local_cluster

    threads = configure_threads(None)
    texts = [t[:MAX_CHARS] for t in synthetic_documents(args.documents, seed=SEED)]
    tokenizer = train_tokenizer(tokenizer_training_text(seed=SEED))
    engine = InferenceEngine(
        build_base_sized_classifier(NUM_LABELS, seed=SEED), tokenizer, device="cpu", precision="auto"
    )
    engine.predict_proba(["warm up"])
    classifier = bench_classifier(
        tokenizer,
        seed=SEED,
        num_labels=NUM_LABELS,
        max_chars=MAX_CHARS,
        max_tokens=MAX_TOKENS,
        precision="auto",
    )
    seconds: dict[str, list[float]] = {
        "one_call": [],
        "one_call_per_file": [],
        "dask_per_file": [],
        "dask_per_file_in_tasks": [],
        "dask_grouped": [],
        "dask_grouped_in_tasks": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-dask-path-") as scratch:
        input_dir = os.path.join(scratch, "input")
        paths = write_input_files(texts, args.files, input_dir)
        pieces = [[json.loads(line)["text"] for line in open(p, encoding="utf-8")] for p in paths]
        cluster = start_local_cluster(workers=1, threads_per_worker=1, device="cpu")
        with cluster, Client(cluster) as client:
            load_workers(client, classifier)
            for repeat in range(args.repeats):
                start = time.perf_counter()
                engine.predict_proba(texts)
                seconds["one_call"].append(time.perf_counter() - start)
                start = time.perf_counter()
                for piece in pieces:
                    engine.predict_proba(piece)
                seconds["one_call_per_file"].append(time.perf_counter() - start)
                for name, group_bytes in (("dask_per_file", 0), ("dask_grouped", DEFAULT_GROUP_BYTES)):
                    timing = time_run(
                        client,
                        classifier,
                        input_dir,
                        os.path.join(scratch, f"{name}-{repeat}"),
                        group_bytes=group_bytes,
                        name=name,
                        documents=len(texts),
                        tokens=0,
                        detail={},
                    )
                    seconds[name].append(timing.seconds)
                    # The worker's own time (reading the first file to writing the last one's marker): the
                    # rest of the run's time is the driver's and Dask's.
                    markers = list(iter_markers(os.path.join(scratch, f"{name}-{repeat}")))
                    first = min(dt.datetime.fromisoformat(m.started_at).timestamp() for m in markers)
                    last = max(dt.datetime.fromisoformat(m.finished_at).timestamp() for m in markers)
                    seconds[f"{name}_in_tasks"].append(last - first)
    best = {name: min(values) for name, values in seconds.items()}
    report = {
        "machine": {**describe_machine(), "isa": cpu_isa(), "torch_threads": threads},
        "engine_precision": engine.precision,
        "documents": len(texts),
        "files": len(pieces),
        "load_average": os.getloadavg(),
        "seconds": {name: [round(v, 2) for v in values] for name, values in seconds.items()},
        "best_seconds": {name: round(v, 2) for name, v in best.items()},
        "median_seconds": {name: round(statistics.median(v), 2) for name, v in seconds.items()},
        "fraction_of_one_call": {name: round(best["one_call"] / v, 3) for name, v in best.items()},
    }
    print(json.dumps(report, indent=1))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
