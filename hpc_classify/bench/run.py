"""`hpc-classify bench`: one seeded corpus, one base-sized backbone, the HF pipeline against the engine in
each precision the CPU runs natively, the engine through Dask, one JSON file."""

from __future__ import annotations

import copy
import gc
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
from hpc_classify.bench.hardware import PeakProbes, cpu_isa
from hpc_classify.bench.model import build_base_sized_classifier, hf_sequence_classifier
from hpc_classify.bench.report import build_report, format_table
from hpc_classify.bench.runners import Timing, profile_engine, time_engine, time_pipeline
from hpc_classify.engine import InferenceEngine, configure_threads, resolve_precision
from hpc_classify.engine.precision import cpu_has_native_bf16

logger = logging.getLogger(__name__)

__all__ = ["BenchSettings", "default_precisions", "format_table", "run_benchmark"]

NUM_LABELS = 26  # nvidia/domain-classifier's


@dataclass(frozen=True)
class BenchSettings:
    documents: int = 128
    seed: int = 0
    max_chars: int = 2000
    max_tokens: int = 512
    pipeline_batch_sizes: tuple[int, ...] = (1, 8, 32)
    threads: int | None = None
    dask_workers: int = 1
    dask_partitions: int = 4
    include_dask: bool = True
    profile_documents: int = 0  # > 0: profile each engine on that many documents (op-level breakdown)
    precisions: tuple[str, ...] | None = None  # None: fp32, bf16 where native, int8
    peak_size: int = 2048  # of the square matmul that measures each precision's peak
    peak_seconds: float = 2.0  # at most about this long per peak
    agreement_documents: int = 300  # texts of the trained tiny model the agreement with fp32 is measured on
    compile: bool = True  # also time the torch.compile'd engine per precision (fp32, bf16; never int8)

    @classmethod
    def quick(cls, **overrides: Any) -> BenchSettings:
        quick = {
            "documents": 4,
            "dask_partitions": 2,
            "pipeline_batch_sizes": (1, 8),
            "peak_size": 1024,
            "peak_seconds": 1.0,
            "agreement_documents": 200,
            "compile": False,  # tens of seconds per precision on a few cores: not in a one-minute run
        }
        return cls(**{**quick, **overrides})


def default_precisions(native_bf16: bool) -> tuple[str, ...]:
    """fp32 always; bf16 only where the CPU has it natively (emulated it is slower than fp32); int8."""
    return ("fp32", "bf16", "int8") if native_bf16 else ("fp32", "int8")


def run_benchmark(settings: BenchSettings) -> dict[str, Any]:
    threads = configure_threads(settings.threads)
    native_bf16 = cpu_has_native_bf16()
    precisions = list(dict.fromkeys(["fp32", *(settings.precisions or default_precisions(native_bf16))]))
    default = resolve_precision(torch.device("cpu"), "auto")
    logger.info(
        "CPU %s, native bf16: %s; precisions %s (auto: %s)", cpu_isa(), native_bf16, precisions, default
    )
    texts = [
        text[: settings.max_chars] for text in synthetic_documents(settings.documents, seed=settings.seed)
    ]
    tokenizer = train_tokenizer(tokenizer_training_text(seed=settings.seed))
    lengths = np.array(
        [len(ids) for ids in tokenizer(texts, truncation=True, max_length=settings.max_tokens)["input_ids"]]
    )
    tokens = int(lengths.sum())
    logger.info("corpus: %d docs, %d tokens", len(texts), tokens)

    model = build_base_sized_classifier(NUM_LABELS, seed=settings.seed)
    hf_model = hf_sequence_classifier(model)
    batch_sizes = [b for b in settings.pipeline_batch_sizes if b == 1 or b < len(texts) * 4]
    timings = time_pipeline(hf_model, tokenizer, texts, tokens, batch_sizes, settings.max_tokens)
    del hf_model
    gc.collect()

    outputs: dict[str, np.ndarray] = {}
    probes = PeakProbes(size=settings.peak_size, max_seconds=settings.peak_seconds)
    profiles: dict[str, list[dict[str, Any]]] = {}
    options = {"device": "cpu", "max_chars": settings.max_chars, "max_tokens": settings.max_tokens}
    for precision in precisions:
        probes.probe(precision)  # just before its engine runs, and again just after (the higher one counts)
        for compiled in (False, True) if settings.compile and precision != "int8" else (False,):
            name = f"engine_{precision}" + ("_compiled" if compiled else "")
            engine = InferenceEngine(
                copy.deepcopy(model), tokenizer, precision=precision, compile=compiled, **options
            )
            timing, outputs[name.removeprefix("engine_")] = time_engine(engine, texts, tokens, name)
            timings.append(timing)
            if settings.profile_documents:
                profiles[name.removeprefix("engine_")] = profile_engine(
                    engine, texts[: settings.profile_documents]
                )
            del engine
            gc.collect()
        probes.probe(precision)
    peaks = probes.peaks()
    del model
    gc.collect()

    from hpc_classify.bench.agreement import precision_agreement

    agreement = precision_agreement(
        precisions[1:], documents=settings.agreement_documents, seed=settings.seed
    )
    dask_probabilities = None
    if settings.include_dask:
        dask_timings, dask_probabilities = _time_dask(settings, texts, tokens, tokenizer)
        timings.extend(dask_timings)
    report = build_report(
        settings, threads, lengths, peaks, timings, outputs, agreement, default, dask_probabilities
    )
    report["matmul_gflops_readings"] = {k: [round(g, 1) for g in v] for k, v in probes.readings.items()}
    if profiles:
        report["engine_profiles"] = profiles
    return report


def _time_dask(
    settings: BenchSettings, texts: list[str], tokens: int, tokenizer: Any
) -> tuple[list[Timing], np.ndarray]:
    from hpc_classify.bench.dask_path import time_dask

    return time_dask(
        texts,
        tokens,
        tokenizer=tokenizer,
        seed=settings.seed,
        num_labels=NUM_LABELS,
        max_chars=settings.max_chars,
        max_tokens=settings.max_tokens,
        workers=settings.dask_workers,  # torch threads: the cores shared by the workers, as a run sets them
        partitions=settings.dask_partitions,
    )
