"""Issue 25 on CPU: the engine before and after the tiled attention and packed weights, in one run (prints
figures; not a test).

Same corpus, tokenizer and DeBERTa-v3-base-sized backbone (random weights) as `hpc-classify bench`. In one
process, on the same texts, interleaved rounds (the best of `--rounds` counts, so a slow minute of a shared
VM hurts every contender alike):

- `previous`: the engine as it was before (bias attention: the [B, H, L, L] bias and SDPA; Linear weights
  reordered by oneDNN on every call);
- `bias+packed`: the bias attention with the weights packed once and the GELU fused;
- `tiled-1window+packed`: the tiled attention with its position products over all 2L-1 offsets (one
  window of rows, as it was first built);
- `tiled-windows+packed`: the tiled attention with its position products per window of
  `tiled_attention.WINDOW_ROWS` rows, as matmuls before the kernel;
- `tiled+packed`: what `auto` runs now on CPU (packed weights, tiled attention; in bf16 on a CPU with
  AVX-512 BF16 the position terms are computed inside the kernel, fused; elsewhere the windows);

in each precision asked for, with tokens/s, GFLOP/s, the fraction of that precision's matmul peak (probed
before and after, the higher reading counting) and the ratio to the best HF pipeline (timed first), then a
profile of the auto engine.

`--bounds` adds two ceilings, not engines (their outputs are wrong by construction): `bound:products-free`
is `tiled-windows+packed` with each layer's position products computed once per shape and then reused (what
a kernel that made them cost nothing would reach), `bound:attention-free` returns the values instead of
attending (the dense layers, norms and embeddings alone).

    python benchmarks/bench_cpu_attention.py [--documents 48] [--precisions bf16 fp32] [--contenders ...]
        [--bounds] [--output F.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import functools
import json
import logging
import time
from pathlib import Path
from unittest import mock

import numpy as np

from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
from hpc_classify.bench.hardware import PeakProbes, cpu_isa, describe_machine
from hpc_classify.bench.model import build_base_sized_classifier, flops_per_token, hf_sequence_classifier
from hpc_classify.bench.runners import profile_engine, time_pipeline
from hpc_classify.engine import InferenceEngine, configure_threads, tiled_attention
from hpc_classify.engine import attention as attention_module
from hpc_classify.engine import engine as engine_module

CONTENDERS = {  # name: (attention, weights packed, rows per window of the position products, fused allowed)
    "previous": ("bias", False, None, False),
    "bias+packed": ("bias", True, None, False),
    "tiled-1window+packed": ("auto", True, 1 << 20, False),  # more rows than any document: a single window
    "tiled-windows+packed": ("auto", True, None, False),
    "tiled+packed": ("auto", True, None, True),
}
BOUNDS = {
    "bound:products-free": ("auto", True, None, False),
    "bound:attention-free": ("auto", True, None, True),
}


def build_engine(model, tokenizer, precision: str, attention: str, packed: bool) -> InferenceEngine:
    options = {"device": "cpu", "precision": precision, "compile": False, "attention": attention}
    if packed:
        return InferenceEngine(copy.deepcopy(model), tokenizer, **options)
    with mock.patch.object(engine_module, "pack_linear_layers", lambda module: 0):
        return InferenceEngine(copy.deepcopy(model), tokenizer, **options)


def running(name: str, how: tuple) -> contextlib.ExitStack:
    """What a contender changes while it runs: the windows' rows, the fused kernel off, or a bound's shortcut."""
    stack = contextlib.ExitStack()
    if how[2] is not None:
        stack.enter_context(mock.patch.object(tiled_attention, "WINDOW_ROWS", how[2]))
    if not how[3]:
        stack.enter_context(mock.patch.object(tiled_attention, "uses_fused", lambda query: False))
    if name == "bound:products-free":
        stack.enter_context(mock.patch.object(tiled_attention, "window_products", products_reused()))
    if name == "bound:attention-free":
        stack.enter_context(
            mock.patch.object(attention_module, "tiled_attend", lambda query, key, value, *rest, **kw: value)
        )
    return stack


@functools.cache
def products_reused():
    """window_products computed once per input shape, then returned again: free position products."""
    computed = {}
    real = tiled_attention.window_products

    def reused(query, key, pos_key, pos_query, rows):
        shape = (tuple(query.shape), query.dtype, rows)
        if shape not in computed:
            computed[shape] = real(query, key, pos_key, pos_query, rows)
        return computed[shape]

    return reused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=48)
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bounds", action="store_true", help="also time the two ceilings (module doc)")
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=list(CONTENDERS),
        default=list(CONTENDERS),
        help="which engines to time (previous and tiled+packed always run: the baseline and the profile)",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    threads = configure_threads(None)
    texts = [text[:2000] for text in synthetic_documents(args.documents, seed=0)]
    tokenizer = train_tokenizer(tokenizer_training_text(seed=0))
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]])
    tokens = int(lengths.sum())
    flops = flops_per_token(float((lengths**2).sum() / lengths.sum()))["total"]
    model = build_base_sized_classifier(26, seed=0)
    pipeline = time_pipeline(hf_sequence_classifier(model), tokenizer, texts, tokens, [1], 512)[0]
    best_pipeline = tokens / pipeline.seconds
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": describe_machine(),
        "isa": cpu_isa(),
        "threads": threads,
        "documents": len(texts),
        "tokens": tokens,
        "flops_per_token": flops,
        "pipeline_bs1_tokens_per_s": round(best_pipeline, 1),
        "precisions": {},
    }
    print(
        f"CPU ISA {cpu_isa()}, {threads} threads; {len(texts)} docs, {tokens} tokens; pipeline bs1 "
        f"{best_pipeline:.0f} tokens/s"
    )
    chosen = {"previous", "tiled+packed", *args.contenders}
    contenders = {name: how for name, how in CONTENDERS.items() if name in chosen}
    contenders.update(BOUNDS if args.bounds else {})
    probes = PeakProbes(size=2048, max_seconds=2.0)
    for precision in args.precisions:
        probes.probe(precision)
        engines = {
            name: build_engine(model, tokenizer, precision, *how[:2]) for name, how in contenders.items()
        }
        outputs, described = {}, {}
        for name, engine in engines.items():  # warm-up too
            with running(name, contenders[name]):
                outputs[name] = engine.predict_proba(texts)
                described[name] = engine.describe()  # under the contender's patches: what it ran
        best = dict.fromkeys(engines, float("inf"))
        for _ in range(args.rounds):
            for name, engine in engines.items():
                with running(name, contenders[name]):
                    start = time.perf_counter()
                    engine.predict_proba(texts)
                    best[name] = min(best[name], time.perf_counter() - start)
        probes.probe(precision)
        peak = probes.peaks()[precision]
        rows = {}
        for name, seconds in best.items():
            rate = tokens / seconds
            rows[name] = {
                "describe": described[name],
                "tokens_per_s": round(rate, 1),
                "gflops": round(rate * flops / 1e9, 1),
                "fraction_of_peak": round(rate * flops / 1e9 / peak, 3),
                "x_pipeline": round(rate / best_pipeline, 2),
                "x_previous": round(best["previous"] / seconds, 3),
                "max_abs_probability_difference_vs_previous": float(
                    np.abs(outputs[name] - outputs["previous"]).max()
                ),
            }
            print(
                f"{precision:>5} {name:<20} {rate:7.0f} tokens/s {rows[name]['gflops']:6.0f} GFLOP/s "
                f"{rows[name]['fraction_of_peak']:5.0%} of {peak:.0f}  x{rows[name]['x_pipeline']:.2f} pipeline "
                f"x{rows[name]['x_previous']:.3f} previous  ({rows[name]['describe']})"
            )
        profile = profile_engine(engines["tiled+packed"], texts[:8])
        print(
            f"{precision:>5} profile of tiled+packed: "
            + ", ".join(f"{e['op']} {e['share']:.0%}" for e in profile[:8])
        )
        report["precisions"][precision] = {
            "peak_gflops": round(peak, 1),
            "contenders": rows,
            "profile": profile,
        }
    report["matmul_gflops_readings"] = {k: [round(g, 1) for g in v] for k, v in probes.readings.items()}
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
