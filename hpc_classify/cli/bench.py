"""`hpc-classify bench`: engine vs Hugging Face pipeline vs Dask path on a seeded synthetic corpus."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the engine against the Hugging Face pipeline (base-sized model, random weights)",
        description="Throughput of (a) the HF text-classification pipeline at batch sizes 1, 8, 32, (b) this "
        "engine in one process, (c) this engine through a local Dask cluster, on the same seeded corpus.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few documents: a smoke test of about a minute"
    )
    parser.add_argument("--output", default="bench-results/bench.json", help="JSON results file")
    parser.add_argument("--documents", type=int, default=None, help="corpus size (default 128, quick 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all usable cores)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask cluster run")
    parser.add_argument(
        "--profile",
        type=int,
        default=16,
        metavar="N",
        help="profile the engine on N documents (0: off; default 16)",
    )
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from hpc_classify.bench.run import BenchSettings, format_table, run_benchmark
    from hpc_classify.io.writers import write_json_atomically

    overrides = {
        "seed": args.seed,
        "threads": args.threads,
        "include_dask": not args.no_dask,
        "profile_documents": max(0, args.profile),
    }
    if args.documents is not None:
        if args.documents < 1:
            print("hpc-classify bench: --documents must be >= 1")
            return 2
        overrides["documents"] = args.documents
    settings = BenchSettings.quick(**overrides) if args.quick else BenchSettings(**overrides)
    report = run_benchmark(settings)
    output = Path(args.output)
    os.makedirs(output.parent, exist_ok=True)
    write_json_atomically(str(output), report)
    print(format_table(report))
    print(f"results written to {output}")
    return 0
