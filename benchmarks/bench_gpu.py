"""The engine on one CUDA GPU against the Hugging Face pipeline at its best setting (prints figures; not a test).

Same corpus, tokenizer and DeBERTa-v3-base-sized backbone (random weights: the real model's cost) as
`hpc-classify bench`. Side by side in one run on one GPU:

- the measured bf16 and fp16 matmul peaks (8192^3 products on random data);
- `pipeline("text-classification")` in fp32 and bf16 at several batch sizes (its best is the baseline);
- the engine in bf16 at several token budgets (the default one marked), and in fp32 at the default:
  documents/s, tokens/s, model TFLOP/s and its fraction of the bf16 peak (MFU), peak GPU memory;
- at the default budget in bf16, side by side: today's engine (auto), `--compile on` (the bias attention
  compiled) and the FlexAttention kernel (`attention="flex"`, compiled, no [B, H, L, L] bias), each
  compiled one with its compile seconds, and a GPU profile of today's engine and of flex;
- where the engine's time goes: tokenization alone (host CPU) and forward passes alone (pre-tokenized).

    python benchmarks/bench_gpu.py [--documents 8192] [--pipeline-documents 1024] [--output gpu.json]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
from hpc_classify.bench.hardware import matmul_gflops
from hpc_classify.bench.model import build_base_sized_classifier, flops_per_token, hf_sequence_classifier
from hpc_classify.bench.runners import PARALLELISM, tokenizers_parallelism_kept
from hpc_classify.engine import InferenceEngine
from hpc_classify.engine.device import default_token_budget
from hpc_classify.engine.tokenization import ChunkTokenizer

NUM_LABELS = 26
MAX_CHARS, MAX_TOKENS = 2000, 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=4096)
    parser.add_argument("--pipeline-documents", type=int, default=1024)
    parser.add_argument("--pipeline-batch-sizes", default="32,128,512")
    parser.add_argument("--budgets", default="32768,65536,131072", help="engine token budgets (bf16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="bench-results/gpu.json")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run of this script, not a figure")
    parser.add_argument("--peak-size", type=int, default=8192)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a visible CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as in the engine's exact mode
    peaks = {
        name: matmul_gflops(dtype, size=args.peak_size, repeats=10, device=device.type, max_seconds=5.0)
        for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16))
    }
    texts = [text[:MAX_CHARS] for text in synthetic_documents(args.documents, seed=args.seed)]
    tokenizer = train_tokenizer(tokenizer_training_text(seed=args.seed))
    lengths = np.array(
        [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]]
    )
    attended = float((lengths.astype(float) ** 2).sum() / lengths.sum())
    flops = flops_per_token(attended)["total"]
    model = build_base_sized_classifier(NUM_LABELS, seed=args.seed)

    results: list[dict[str, Any]] = []
    subset = texts[: args.pipeline_documents]
    subset_tokens = int(lengths[: len(subset)].sum())
    for dtype in (torch.float32, torch.bfloat16):
        results += time_pipeline(
            model, tokenizer, subset, subset_tokens, dtype, args.pipeline_batch_sizes, device
        )

    default_budget = default_token_budget(device)
    tokens = int(lengths.sum())
    tokenization = tokenizer_probe(tokenizer, texts)
    print(json.dumps({"tokenization": tokenization}), flush=True)
    token_ids = ChunkTokenizer(tokenizer, max_chars=MAX_CHARS, max_tokens=MAX_TOKENS)(texts)
    runs = [EngineRun("bf16", int(b), default_budget) for b in args.budgets.split(",")]
    if device.type == "cuda":  # the attention kernels side by side (flex is refused on CPU)
        # flex first: if the time limit cuts the run short, the new kernel's figures are already printed
        runs += [EngineRun("bf16", default_budget, default_budget, attention="flex")]
        runs += [EngineRun("bf16", default_budget, default_budget, compile=True)]
    runs += [EngineRun("bf16", default_budget, default_budget, fast_attention=False)]  # transformers'
    runs += [EngineRun("fp32", default_budget, default_budget)] if device.type == "cuda" else []
    profiles: dict[str, Any] = {}
    for run in runs:
        profiled = run.name.endswith("_default") and run.precision == "bf16" and run.fast_attention
        profile = profiles.setdefault(run.name, {}) if profiled and not run.compile else None
        results.append(time_engine(model, tokenizer, texts, token_ids, tokens, run, device, profile))
        print(json.dumps(results[-1]), flush=True)

    timed = [r for r in results if "error" not in r]
    best = max((r for r in timed if r["name"].startswith("hf_pipeline")), key=lambda r: r["tokens_per_s"])
    for result in timed:
        result["tflops"] = round(result["tokens_per_s"] * flops / 1e12, 1)
        result["mfu_bf16"] = round(result["tflops"] * 1e3 / peaks["bf16"], 3)
        result["vs_best_pipeline"] = round(result["tokens_per_s"] / best["tokens_per_s"], 2)
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke run)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "host_cpus": os.cpu_count(),
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "corpus": {
            "documents": len(texts),
            "tokens": tokens,
            "mean_tokens": round(float(lengths.mean()), 1),
            "attended_length": round(attended, 1),
            "pipeline_documents": len(subset),
        },
        "flops_per_token": flops,
        "default_token_budget": default_budget,
        "best_pipeline": best["name"],
        "results": results,
        "tokenization": tokenization,
        "profiles": {name: profile for name, profile in profiles.items() if profile},
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(report))


def time_pipeline(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    tokens: int,
    dtype: torch.dtype,
    batch_sizes: str,
    device: torch.device,
) -> list[dict[str, Any]]:
    from transformers import pipeline

    hf_model = hf_sequence_classifier(model).to(device=device, dtype=dtype)
    classify = pipeline("text-classification", model=hf_model, tokenizer=tokenizer, device=device)
    with tokenizers_parallelism_kept():
        classify(texts[:8], batch_size=8, truncation=True, max_length=MAX_TOKENS)  # warm-up
    name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
    timings = []
    for batch_size in (int(b) for b in batch_sizes.split(",")):
        result: dict[str, Any] = {"name": f"hf_pipeline_{name}_bs{batch_size}", "batch_size": batch_size}
        _reset_peak_memory(device)
        try:
            start = time.perf_counter()
            with tokenizers_parallelism_kept():
                classify(texts, batch_size=batch_size, truncation=True, max_length=MAX_TOKENS)
            result.update(_rates(time.perf_counter() - start, len(texts), tokens))
        except torch.OutOfMemoryError as error:
            result["error"] = f"out of memory: {str(error).splitlines()[0]}"
        _release(device)  # after the except block: its traceback no longer holds the failed batch
        timings.append(result)
        print(json.dumps(timings[-1]), flush=True)
    del classify, hf_model
    _release(device)
    return timings


@dataclass(frozen=True)
class EngineRun:
    precision: str
    budget: int
    default_budget: int
    fast_attention: bool = True
    compile: bool | str = "auto"
    attention: str = "auto"

    @property
    def name(self) -> str:
        variant = "" if self.fast_attention else "_hf_attention"
        variant += "_compiled" if self.compile is True else ""
        variant += f"_{self.attention}" if self.attention != "auto" else ""
        default = "_default" if self.budget == self.default_budget else ""
        return f"engine_{self.precision}_budget{self.budget}{variant}{default}"


def time_engine(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    token_ids: list[list[int]],
    tokens: int,
    run: EngineRun,
    device: torch.device,
    profile: dict[str, Any] | None,
) -> dict[str, Any]:
    """The whole engine (tokenizing in its background thread) over `texts`, then its forward passes alone
    over `token_ids`; with `profile` given, fill it with where the forward passes' GPU time goes."""
    engine = InferenceEngine(
        copy.deepcopy(model),
        tokenizer,
        device=device,
        precision=run.precision,
        max_chars=MAX_CHARS,
        max_tokens=MAX_TOKENS,
        token_budget=run.budget,
        fast_attention=run.fast_attention,
        compile=run.compile,
        attention=run.attention,
    )
    start = time.perf_counter()
    engine.predict_proba(texts[:512])  # warm-up: kernels, allocator, position caches; compiling
    warm_up_seconds = time.perf_counter() - start
    _reset_peak_memory(device)
    start = time.perf_counter()
    engine.predict_proba(texts)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    engine.predict_tokenized(token_ids)  # returns host arrays: the GPU is done when it returns
    forward_seconds = time.perf_counter() - start
    result = {
        "name": run.name,
        "precision": engine.precision,
        "token_budget": run.budget,
        **_rates(seconds, len(texts), tokens),
        "forward_only_s": round(forward_seconds, 3),
        "forward_only_docs_per_s": round(len(texts) / forward_seconds, 1),
        "peak_gpu_memory_gib": _peak_memory_gib(device),
        "budget_after_run": engine.token_budget,  # lower than asked: a batch ran out of memory
        "engine": engine.describe(),  # what ran: precision, compiled or eager (after any fallback), attention
        "warm_up_s": round(warm_up_seconds, 1),
        "compile_s": round(engine.compile_seconds, 1),
    }
    if profile is not None and device.type == "cuda":
        profile.update(profile_forward(engine, token_ids[:1024]))
    del engine
    _release(device)
    return result


def profile_forward(engine: InferenceEngine, token_ids: list[list[int]], top: int = 15) -> dict[str, Any]:
    """GPU kernels by their share of device time, and how busy the GPU was over the call's wall time
    (well under 100%: the host - Python, launches, copies - is what limits)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        start = time.perf_counter()
        engine.predict_tokenized(token_ids)
        wall = time.perf_counter() - start
    events = [e for e in profiler.key_averages() if e.self_device_time_total > 0]
    events.sort(key=lambda e: e.self_device_time_total, reverse=True)
    busy = sum(e.self_device_time_total for e in events) / 1e6
    return {
        "documents": len(token_ids),
        "wall_s": round(wall, 3),
        "gpu_busy_s": round(busy, 3),
        "kernels": [
            {
                "name": e.key[:90],
                "ms": round(e.self_device_time_total / 1e3, 2),
                "share": round(e.self_device_time_total / 1e6 / busy, 3),
                "calls": e.count,
            }
            for e in events[:top]
        ],
    }


def tokenizer_probe(tokenizer: Any, texts: list[str]) -> dict[str, Any]:
    """Host-side tokenization rate (documents/s): the engine's chunk tokenizer as it runs (the Rust
    tokenizer's own thread pool), with TOKENIZERS_PARALLELISM=false (one core), and one document at a time."""
    chunked = ChunkTokenizer(tokenizer, max_chars=MAX_CHARS, max_tokens=MAX_TOKENS)
    rates: dict[str, Any] = {"TOKENIZERS_PARALLELISM": os.environ.get(PARALLELISM)}
    start = time.perf_counter()
    chunked(texts)
    rates["engine_chunk_docs_per_s"] = round(len(texts) / (time.perf_counter() - start), 1)
    with tokenizers_parallelism_kept():
        os.environ[PARALLELISM] = "false"
        start = time.perf_counter()
        chunked(texts)
        rates["parallelism_off_docs_per_s"] = round(len(texts) / (time.perf_counter() - start), 1)
    sample = texts[:256]
    start = time.perf_counter()
    for text in sample:
        chunked([text])
    rates["one_at_a_time_docs_per_s"] = round(len(sample) / (time.perf_counter() - start), 1)
    return rates


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_gib(device: torch.device) -> float:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else float("nan")


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _rates(seconds: float, documents: int, tokens: int) -> dict[str, float]:
    return {
        "seconds": round(seconds, 3),
        "docs_per_s": round(documents / seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1),
    }


def format_table(report: dict[str, Any]) -> str:
    peaks, corpus = report["matmul_peak_gflops"], report["corpus"]
    rows = [
        f"{report['device']}, torch {report['torch']} (CUDA {report['cuda']}), {report['date']}",
        f"matmul peak: bf16 {peaks['bf16'] / 1e3:.0f} TFLOP/s, fp16 {peaks['fp16'] / 1e3:.0f} TFLOP/s; "
        f"corpus {corpus['documents']} docs, mean {corpus['mean_tokens']} tokens "
        f"(pipeline: first {corpus['pipeline_documents']}); {report['flops_per_token'] / 1e6:.0f} MFLOP/token",
        "",
        f"{'contender':<34}{'docs/s':>9}{'tokens/s':>11}{'TFLOP/s':>9}{'MFU':>7}{'x pipe':>8}{'fwd docs/s':>11}"
        f"{'GiB':>6}",
    ]
    for r in report["results"]:
        if "error" in r:
            rows.append(f"{r['name']:<34}{r['error'][:60]}")
            continue
        rows.append(
            f"{r['name']:<34}{r['docs_per_s']:>9.0f}{r['tokens_per_s']:>11.0f}{r['tflops']:>9.1f}"
            f"{r['mfu_bf16']:>7.0%}{r['vs_best_pipeline']:>7.2f}x"
            f"{r.get('forward_only_docs_per_s', float('nan')):>11.0f}{r.get('peak_gpu_memory_gib', float('nan')):>6.1f}"
        )
    rows.append(
        f"best pipeline: {report['best_pipeline']}; MFU: model FLOPs over the measured bf16 matmul peak"
    )
    rows.append(f"host tokenization (docs/s): {report['tokenization']}")
    rows += [
        f"{r['name']}: {r['engine']}, compile {r['compile_s']} s" for r in report["results"] if "engine" in r
    ]
    for name, profile in report.get("profiles", {}).items():
        rows.append(
            f"profile, {name}, {profile['documents']} docs: GPU busy {profile['gpu_busy_s']} s "
            f"of {profile['wall_s']} s wall; top kernels:"
        )
        rows += [
            f"  {k['share']:>6.1%} {k['ms']:>8.1f} ms {k['calls']:>6} x {k['name']}"
            for k in profile["kernels"]
        ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
