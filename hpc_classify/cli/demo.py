"""`hpc-classify demo`: the whole pipeline on one machine, with a tiny model built on the spot.

The hub is not needed: the demo trains a tiny DeBERTa-v2 in the public checkpoint layout for a few
seconds, then runs the resumable driver on a local Dask cluster over the sample corpus in examples/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

BANNER = (
    "NOTE: this demo uses a tiny model with DEMONSTRATION weights trained for seconds on synthetic text.\n"
    "      Its labels are MEANINGLESS; only the pipeline is real. For real labels use the published\n"
    "      checkpoints, e.g. `hpc-classify run --classifier domain --input DIR --output DIR`."
)


def _own_command() -> str:
    """How the user can type this command again: bare when it is on PATH, else its full path."""
    found = shutil.which("hpc-classify")
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found and script and Path(found).resolve() == script:
        return "hpc-classify"
    return str(script) if script and script.name == "hpc-classify" else "hpc-classify"


def _default_corpus() -> Path | None:
    candidate = Path(__file__).resolve().parents[2] / "examples" / "sample_corpus"
    return candidate if candidate.is_dir() else None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally on the sample corpus with a tiny demonstration model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", default=None, help="corpus to classify (default: examples/sample_corpus)")
    parser.add_argument(
        "--workdir", default="demo-output", help="where the model and outputs go (default: %(default)s)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="local Dask workers (default: 1 on CPU, one per GPU)"
    )
    parser.add_argument("--filter-by", nargs="+", default=None, help="keep only rows with these labels")
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from hpc_classify.api import classify
    from hpc_classify.classifiers import DomainClassifier
    from hpc_classify.config import RunConfig
    from hpc_classify.driver.status import compute_status
    from hpc_classify.driver.status_text import format_status
    from hpc_classify.errors import ConfigError
    from hpc_classify.models.tiny import DOMAIN_LABELS, build_tiny_checkpoint

    corpus = Path(args.input) if args.input else _default_corpus()
    if corpus is None or not corpus.exists():
        raise ConfigError("no sample corpus found", hint="pass --input DIR with .jsonl files")
    workdir = Path(args.workdir).resolve()
    model_dir = workdir / "tiny-domain-model"
    print(BANNER, flush=True)
    if not (model_dir / "model.safetensors").exists():
        print(f"building the tiny demonstration model in {model_dir} ...", flush=True)
        build_tiny_checkpoint(model_dir, DOMAIN_LABELS)
    output = workdir / "labelled"
    config = RunConfig(
        inputs=(str(corpus),),
        output=str(output),
        classifiers=(DomainClassifier(model=str(model_dir), filter_by=args.filter_by),),
        workers=args.workers,
    )
    result = classify(config)
    print(format_status(compute_status(str(output))))
    first_output = next(iter(sorted(output.glob("*.jsonl"))), None)
    if first_output is not None:
        with open(first_output, encoding="utf-8") as lines:
            print(f"first row of {first_output.name}: {lines.readline().strip()}")
    print(f"outputs in {output} (rerun: resumes, here a no-op; `hpc-classify status --output {output}`)")
    print(
        "classify your own JSONL/Parquet files with this model:\n"
        f"  {_own_command()} run --model {model_dir} --input YOUR_FILES_OR_DIR --output YOUR_OUTPUT_DIR"
    )
    print(BANNER)
    return int(result.exit_code)
