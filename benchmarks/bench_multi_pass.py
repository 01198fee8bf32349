"""Two classifiers in one pass vs two separate runs, on the same corpus and cores (prints figures; not a test).

Three resumable runs through `hpc_classify.run` on one local Dask cluster (started once, so that its
start-up is not counted): classifier A alone, classifier B alone, A and B together. Reported per run: wall
time, bytes read (input) and written (outputs), documents/s. Then each model's forward passes alone, timed
in this process on pre-tokenized documents, for the target of the issue: one pass should cost no more than
the slower run plus the faster classifier's forward passes (reading, parsing, tokenization and writing are
paid once).

    .venv/bin/python benchmarks/bench_multi_pass.py [--files 16] [--docs 250] [--base-sized] [--keep-columns id]

The default models are two tiny trained DeBERTa checkpoints (seeds 0 and 1: different weights; B is given
A's tokenizer files, as two DeBERTa-v3 classifiers share theirs); `--base-sized` uses two
DeBERTa-v3-base-sized random-weight checkpoints sharing one tokenizer (the real per-token cost; slow on CPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from hpc_classify import DomainClassifier, run
from hpc_classify.bench.hardware import cpu_isa, describe_machine
from hpc_classify.models.tiny import (
    DOMAIN_LABELS,
    build_tiny_checkpoint,
    random_base_sized_checkpoint,
    synthetic_corpus,
)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spm.model")


def write_corpus(root: Path, files: int, docs: int) -> list[list[str]]:
    """The shards, and each shard's texts."""
    root.mkdir(parents=True)
    texts_all: list[list[str]] = []
    for i in range(files):
        texts, _ = synthetic_corpus(docs, DOMAIN_LABELS, seed=1000 + i)
        lines = [
            json.dumps({"id": f"{i}-{n}", "url": f"https://example.org/{i}/{n}", "text": t})
            for n, t in enumerate(texts)
        ]
        (root / f"shard-{i:03d}.jsonl").write_text("\n".join(lines) + "\n")
        texts_all.append(texts)
    return texts_all


def build_models(work: Path, base_sized: bool) -> tuple[Path, Path]:
    if base_sized:
        first = random_base_sized_checkpoint(work / "model-a", DOMAIN_LABELS, seed=0)
        second = random_base_sized_checkpoint(work / "model-b", DOMAIN_LABELS, seed=0)  # same tokenizer
        return first, second
    first = build_tiny_checkpoint(work / "model-a", DOMAIN_LABELS, seed=0)
    second = build_tiny_checkpoint(work / "model-b", DOMAIN_LABELS, seed=1)
    for name in TOKENIZER_FILES:  # B takes A's tokenizer: same cost, and the pair shares one tokenization
        if (first / name).exists():
            shutil.copy(first / name, second / name)
    return first, second


def forward_seconds(classifier: DomainClassifier, files: list[list[str]]) -> float:
    """The model's forward passes alone, file by file as a run does them (tokenized beforehand, not timed)."""
    engine, _ = classifier.engine()
    tokenized = [engine.tokenize(texts) for texts in files]
    engine.predict_tokenized(tokenized[0][:8])  # warm-up
    started = time.perf_counter()
    for token_ids in tokenized:
        engine.predict_tokenized(token_ids)
    return time.perf_counter() - started


def timed_run(
    classifiers: list[Any], inputs: Path, output: Path, client: Any, keep: list[str] | None
) -> dict:
    started = time.perf_counter()
    result = run(classifiers, inputs, output, cluster=client, keep_columns=keep)
    wall = time.perf_counter() - started
    s = result.summary
    return {
        "wall_seconds": round(wall, 3),
        "bytes_read": s["bytes_read"],
        "bytes_written": s["bytes_written"],
        "documents": s["documents_in"],
        "documents_per_second": round(s["documents_in"] / wall, 1),
        "exit_code": result.exit_code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--docs", type=int, default=250, help="documents per file")
    parser.add_argument("--base-sized", action="store_true")
    parser.add_argument("--keep-columns", nargs="+", default=None, help="lean outputs (e.g. id)")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from hpc_classify.cluster.local import start_local_cluster

    with tempfile.TemporaryDirectory(prefix="bench-multi-") as tmp:
        work = Path(tmp)
        files = write_corpus(work / "in", args.files, args.docs)
        model_a, model_b = build_models(work, args.base_sized)
        first = DomainClassifier(model=str(model_a), device="cpu")
        second = DomainClassifier(model=str(model_b), device="cpu", pred_column="domain_b_pred")
        shared = first.engine()[0].tokenize.key == second.engine()[0].tokenize.key
        cluster: LocalCluster = start_local_cluster(
            workers=1, threads_per_worker=1, protocol="tcp", device="cpu"
        )
        with cluster, Client(cluster) as client:
            runs = {
                "A alone": timed_run([first], work / "in", work / "out-a", client, args.keep_columns),
                "B alone": timed_run([second], work / "in", work / "out-b", client, args.keep_columns),
                "A + B, one pass": timed_run(
                    [first, second], work / "in", work / "out-ab", client, args.keep_columns
                ),
            }
        forward = {"A": forward_seconds(first, files), "B": forward_seconds(second, files)}

    separate = runs["A alone"]["wall_seconds"] + runs["B alone"]["wall_seconds"]
    slower = max(runs["A alone"]["wall_seconds"], runs["B alone"]["wall_seconds"])
    faster_forward = (
        forward["B"] if runs["B alone"]["wall_seconds"] < runs["A alone"]["wall_seconds"] else forward["A"]
    )
    target = slower + faster_forward
    one_pass = runs["A + B, one pass"]["wall_seconds"]
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": f"{describe_machine().get('cpu', '?')} ({cpu_isa()})",
        "machine": platform.node(),
        "models": "base-sized random" if args.base_sized else "tiny trained",
        "tokenization_shared": shared,
        "files": args.files,
        "documents": sum(map(len, files)),
        "keep_columns": args.keep_columns,
        "runs": runs,
        "forward_seconds": {k: round(v, 3) for k, v in forward.items()},
        "two_separate_runs_seconds": round(separate, 3),
        "target_seconds": round(target, 3),
        "one_pass_seconds": one_pass,
        "target_met": one_pass <= target,
    }
    print(
        f"CPU: {report['cpu']}; {report['documents']} documents in {args.files} files; models: {report['models']}"
    )
    print(f"{'run':<18} {'wall s':>8} {'docs/s':>8} {'MB read':>9} {'MB written':>11}")
    for name, r in runs.items():
        print(
            f"{name:<18} {r['wall_seconds']:>8.2f} {r['documents_per_second']:>8.1f} "
            f"{r['bytes_read'] / 1e6:>9.2f} {r['bytes_written'] / 1e6:>11.2f}"
        )
    print(
        f"two separate runs {separate:.2f} s; one pass {one_pass:.2f} s; target (slower run + faster model's "
        f"forward passes, {faster_forward:.2f} s) {target:.2f} s: {'met' if report['target_met'] else 'NOT met'}"
    )
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
