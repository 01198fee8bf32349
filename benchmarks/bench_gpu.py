"""The engine on one CUDA GPU against the Hugging Face pipeline at its best setting (prints figures; not a test).

Same corpus, tokenizer and DeBERTa-v3-base-sized backbone (random weights: the real model's cost) as
`hpc-classify bench`. Side by side in one run on one GPU:

- the measured bf16 and fp16 matmul peaks (8192^3 products on random data);
- `pipeline("text-classification")` in fp32 and bf16 at several batch sizes (its best is the baseline);
- the engine in bf16 at several token budgets (the default one marked), and in fp16 and fp32 at the default:
  documents/s, tokens/s, model TFLOP/s and its fraction of the bf16 peak (MFU), peak GPU memory;
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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
from hpc_classify.bench.hardware import matmul_gflops
from hpc_classify.bench.model import build_base_sized_classifier, flops_per_token, hf_sequence_classifier
from hpc_classify.engine import InferenceEngine
from hpc_classify.engine.device import default_token_budget

NUM_LABELS = 26
MAX_CHARS, MAX_TOKENS = 2000, 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=8192)
    parser.add_argument("--pipeline-documents", type=int, default=1024)
    parser.add_argument("--pipeline-batch-sizes", default="8,32,128,512")
    parser.add_argument("--budgets", default="16384,32768,65536,131072", help="engine token budgets (bf16)")
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
    runs = [("bf16", int(b)) for b in args.budgets.split(",")]
    runs += [("fp16", default_budget), ("fp32", default_budget)] if device.type == "cuda" else []
    for precision, budget in runs:
        results.append(
            time_engine(model, tokenizer, texts, tokens, precision, budget, default_budget, device)
        )
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
    classify(texts[:8], batch_size=8, truncation=True, max_length=MAX_TOKENS)  # warm-up
    name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
    timings = []
    for batch_size in (int(b) for b in batch_sizes.split(",")):
        result: dict[str, Any] = {"name": f"hf_pipeline_{name}_bs{batch_size}", "batch_size": batch_size}
        _reset_peak_memory(device)
        try:
            start = time.perf_counter()
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


def time_engine(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    tokens: int,
    precision: str,
    budget: int,
    default: int,
    device: torch.device,
) -> dict[str, Any]:
    engine = InferenceEngine(
        copy.deepcopy(model),
        tokenizer,
        device=device,
        precision=precision,
        max_chars=MAX_CHARS,
        max_tokens=MAX_TOKENS,
        token_budget=budget,
    )
    engine.predict_proba(texts[:1024])  # warm-up: kernels, allocator, position caches
    _reset_peak_memory(device)
    start = time.perf_counter()
    engine.predict_proba(texts)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    token_ids = engine.tokenize(texts)
    tokenize_seconds = time.perf_counter() - start
    start = time.perf_counter()
    engine.predict_tokenized(token_ids)  # returns host arrays: the GPU is done when it returns
    forward_seconds = time.perf_counter() - start
    name = f"engine_{precision}_budget{budget}" + ("_default" if budget == default else "")
    result = {
        "name": name,
        "precision": engine.precision,
        "token_budget": budget,
        **_rates(seconds, len(texts), tokens),
        "tokenize_only_s": round(tokenize_seconds, 3),
        "forward_only_s": round(forward_seconds, 3),
        "forward_only_docs_per_s": round(len(texts) / forward_seconds, 1),
        "peak_gpu_memory_gib": _peak_memory_gib(device),
        "budget_after_run": engine.token_budget,  # lower than asked: a batch ran out of memory
    }
    del engine
    _release(device)
    return result


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
    return "\n".join(rows)


if __name__ == "__main__":
    main()
