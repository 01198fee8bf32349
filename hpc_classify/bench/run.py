"""`hpc-classify bench`: one seeded corpus, one base-sized backbone, three contenders, one JSON file."""

from __future__ import annotations

import copy
import datetime
import gc
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
from hpc_classify.bench.hardware import describe_machine, matmul_gflops
from hpc_classify.bench.model import build_base_sized_classifier, flops_per_token, hf_sequence_classifier
from hpc_classify.bench.runners import Timing, profile_engine, time_engine, time_pipeline
from hpc_classify.engine import InferenceEngine, configure_threads

logger = logging.getLogger(__name__)

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
    profile_documents: int = 0  # > 0: profile the engine on that many documents (op-level breakdown)

    @classmethod
    def quick(cls, **overrides: Any) -> BenchSettings:
        return cls(**{"documents": 8, "dask_partitions": 2, **overrides})


def run_benchmark(settings: BenchSettings) -> dict[str, Any]:
    threads = configure_threads(settings.threads)
    texts = [
        text[: settings.max_chars] for text in synthetic_documents(settings.documents, seed=settings.seed)
    ]
    tokenizer = train_tokenizer(tokenizer_training_text(seed=settings.seed))
    lengths = np.array(
        [len(ids) for ids in tokenizer(texts, truncation=True, max_length=settings.max_tokens)["input_ids"]]
    )
    tokens = int(lengths.sum())
    peaks = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    logger.info(
        "corpus: %d docs, %d tokens; matmul fp32 %.0f, bf16 %.0f GFLOP/s", len(texts), tokens, *peaks.values()
    )

    model = build_base_sized_classifier(NUM_LABELS, seed=settings.seed)
    timings: list[Timing] = []
    hf_model = hf_sequence_classifier(model)
    batch_sizes = [b for b in settings.pipeline_batch_sizes if b == 1 or b < len(texts) * 4]
    timings += time_pipeline(hf_model, tokenizer, texts, tokens, batch_sizes, settings.max_tokens)
    del hf_model
    gc.collect()

    options = {"device": "cpu", "max_chars": settings.max_chars, "max_tokens": settings.max_tokens}
    exact_engine = InferenceEngine(copy.deepcopy(model), tokenizer, autocast=False, **options)
    timing, exact = time_engine(exact_engine, texts, tokens, "engine_fp32")
    timings.append(timing)
    del exact_engine
    fast_engine = InferenceEngine(model, tokenizer, autocast=True, **options)
    timing, fast = time_engine(fast_engine, texts, tokens, "engine")
    timings.append(timing)
    profile = (
        profile_engine(fast_engine, texts[: settings.profile_documents])
        if settings.profile_documents
        else None
    )
    del fast_engine, model
    gc.collect()

    dask_probabilities = None
    if settings.include_dask:
        from hpc_classify.bench.dask_path import time_dask

        timing, dask_probabilities = time_dask(
            texts,
            tokens,
            tokenizer=tokenizer,
            seed=settings.seed,
            num_labels=NUM_LABELS,
            max_chars=settings.max_chars,
            max_tokens=settings.max_tokens,
            workers=settings.dask_workers,
            torch_threads=max(1, threads // settings.dask_workers),
            partitions=settings.dask_partitions,
        )
        timings.append(timing)
    report = _report(settings, threads, lengths, peaks, timings, exact, fast, dask_probabilities)
    if profile is not None:
        report["engine_profile"] = profile
    return report


def _report(
    settings: BenchSettings,
    threads: int,
    lengths: np.ndarray,
    peaks: dict[str, float],
    timings: list[Timing],
    exact: np.ndarray,
    fast: np.ndarray,
    dask_probabilities: np.ndarray | None,
) -> dict[str, Any]:
    attended = float((lengths.astype(float) ** 2).sum() / lengths.sum())
    flops = flops_per_token(attended)
    by_name = {t.name: t.as_dict() for t in timings}
    pipelines = [v for k, v in by_name.items() if k.startswith("hf_pipeline")]
    best_pipeline = max(pipelines, key=lambda v: v["docs_per_s"])
    engine = by_name["engine"]
    engine["gflops"] = round(engine["tokens_per_s"] * flops["total"] / 1e9, 1)
    engine["fraction_of_bf16_peak"] = round(engine["gflops"] / peaks["bf16"], 3)
    summary: dict[str, Any] = {
        "speedup_vs_best_pipeline": round(engine["docs_per_s"] / best_pipeline["docs_per_s"], 2),
        "best_pipeline": best_pipeline["name"],
        "fraction_of_bf16_peak": engine["fraction_of_bf16_peak"],
        "argmax_agreement_with_fp32": float((fast.argmax(1) == exact.argmax(1)).mean()),
        "max_abs_probability_difference_vs_fp32": float(np.abs(fast - exact).max()),
    }
    if dask_probabilities is not None:
        summary["dask_over_single_process"] = round(
            by_name["engine_dask"]["docs_per_s"] / engine["docs_per_s"], 3
        )
        summary["dask_max_abs_difference_vs_engine"] = float(np.abs(dask_probabilities - fast).max())
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "settings": {**settings.__dict__, "threads": threads},
        "corpus": {
            "documents": int(len(lengths)),
            "tokens": int(lengths.sum()),
            "mean_tokens": round(float(lengths.mean()), 1),
            "max_tokens": int(lengths.max()),
            "attended_length": round(attended, 1),
        },
        "model": {"backbone": "DeBERTa-v3-base-sized, random weights", "flops_per_token": flops},
        "matmul_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "results": list(by_name.values()),
        "summary": summary,
    }


def format_table(report: dict[str, Any]) -> str:
    rows = [f"{'contender':<22}{'docs/s':>10}{'tokens/s':>12}{'seconds':>10}"]
    for result in report["results"]:
        rows.append(
            f"{result['name']:<22}{result['docs_per_s']:>10.2f}{result['tokens_per_s']:>12.0f}{result['seconds']:>10.1f}"
        )
    corpus, summary, peaks = report["corpus"], report["summary"], report["matmul_gflops"]
    flops = report["model"]["flops_per_token"]["total"]
    rows += [
        "",
        f"corpus: {corpus['documents']} docs, mean {corpus['mean_tokens']} tokens; "
        f"model {flops / 1e6:.0f} MFLOP/token; matmul fp32 {peaks['fp32']:.0f}, bf16 {peaks['bf16']:.0f} GFLOP/s",
        f"engine vs best pipeline ({summary['best_pipeline']}): {summary['speedup_vs_best_pipeline']:.2f}x docs/s; "
        f"{summary['fraction_of_bf16_peak']:.0%} of bf16 matmul peak; "
        f"argmax agreement with fp32 {summary['argmax_agreement_with_fp32']:.1%}",
    ]
    if "dask_over_single_process" in summary:
        rows.append(f"Dask path / single process: {summary['dask_over_single_process']:.0%}")
    if report.get("engine_profile"):
        rows.append(
            "engine profile (self CPU): "
            + ", ".join(
                f"{row['op'].removeprefix('aten::')} {row['share']:.0%}"
                for row in report["engine_profile"][:8]
            )
        )
    return "\n".join(rows)
