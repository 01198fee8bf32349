"""`hpc-classify bench`: engine vs Hugging Face pipeline vs Dask path on a seeded synthetic corpus."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the engine against the Hugging Face pipeline (base-sized model, random weights)",
        description="Detects the CPU's ISA (AVX2, AVX-512, AVX-512 BF16, AMX) and measures the matmul peak of each "
        "precision it runs natively (fp32, bf16 only where native, int8), then the throughput of (a) the HF "
        "text-classification pipeline at batch sizes 1, 8, 32, (b) this engine in one process in each precision "
        "(with its fraction of that precision's peak and, on a trained tiny model, its argmax agreement with "
        "fp32), (c) this engine through a local Dask cluster (precision auto), on the same seeded corpus.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few documents, short peak measurements: under a minute"
    )
    parser.add_argument("--output", default="bench-results/bench.json", help="JSON results file")
    parser.add_argument("--documents", type=int, default=None, help="corpus size (default 128, quick 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all usable cores)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask cluster run")
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=("fp32", "bf16", "int8"),
        help="the engine's precisions to time (default: fp32, bf16 where native, int8; fp32 always runs: it is "
        "the reference; bf16 where only emulated is timed but its peak is not measured)",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time the torch.compile'd engine in fp32 and bf16, with its compile seconds (default: on; "
        "off with --quick: compiling takes tens of seconds per precision on a few cores)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=None,
        metavar="N",
        help="profile each engine on N documents (0: off; default 16, --quick 0)",
    )
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from hpc_classify.bench.report import format_table
    from hpc_classify.bench.run import BenchSettings, run_benchmark
    from hpc_classify.io.writers import write_json_atomically

    overrides = {
        "seed": args.seed,
        "threads": args.threads,
        "include_dask": not args.no_dask,
    }
    if args.profile is not None or not args.quick:
        overrides["profile_documents"] = max(0, 16 if args.profile is None else args.profile)
    if args.precision:
        overrides["precisions"] = tuple(args.precision)
    if args.compile is not None:
        overrides["compile"] = args.compile
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
