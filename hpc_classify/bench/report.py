"""The benchmark's JSON report and its table: per precision, throughput, fraction of that precision's matmul
peak, ratio to the pipeline's best and agreement with fp32; the ISA it ran on; the Dask path."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np

from hpc_classify.bench.hardware import cpu_isa, describe_machine, isa_features
from hpc_classify.bench.model import flops_per_token
from hpc_classify.bench.runners import Timing


def build_report(
    settings: Any,
    threads: int,
    lengths: np.ndarray,
    peaks: dict[str, float],
    timings: list[Timing],
    outputs: dict[str, np.ndarray],
    agreement: dict[str, Any],
    default_precision: str,
    dask_probabilities: np.ndarray | None,
) -> dict[str, Any]:
    attended = float((lengths.astype(float) ** 2).sum() / lengths.sum())
    flops = flops_per_token(attended)
    by_name = {t.name: t.as_dict() for t in timings}
    pipelines = [v for k, v in by_name.items() if k.startswith("hf_pipeline")]
    best_pipeline = max(pipelines, key=lambda v: v["tokens_per_s"])
    precisions = {}
    for name in outputs:  # "bf16", and "bf16_compiled" for the torch.compile'd engine
        precision = name.removesuffix("_compiled")
        engine = by_name[f"engine_{name}"]
        gflops = engine["tokens_per_s"] * flops["total"] / 1e9
        peak = peaks.get(precision)
        precisions[name] = {
            "tokens_per_s": engine["tokens_per_s"],
            "gflops": round(gflops, 1),
            "matmul_peak_gflops": round(peak, 1) if peak else None,  # None: emulated, not measured
            "fraction_of_peak": round(gflops / peak, 3) if peak else None,
            "vs_best_pipeline": round(engine["tokens_per_s"] / best_pipeline["tokens_per_s"], 2),
            **agreement.get(precision, {}),
        }
        if name != precision:
            eager = by_name[f"engine_{precision}"]
            precisions[name].update(
                compiled=engine.get("compiled", False),  # False: it fell back to eager (see the log)
                compile_seconds=engine.get("compile_seconds"),
                vs_eager=round(engine["tokens_per_s"] / eager["tokens_per_s"], 2),
                max_abs_probability_difference_vs_eager=float(
                    np.abs(outputs[name] - outputs[precision]).max()
                ),
            )
    summary: dict[str, Any] = {
        "default_precision": default_precision,
        "best_pipeline": best_pipeline["name"],
        "best_pipeline_tokens_per_s": best_pipeline["tokens_per_s"],
        "precisions": precisions,
        "agreement_model": {k: agreement[k] for k in ("model", "documents")},
    }
    if dask_probabilities is not None:
        engine = by_name.get(f"engine_{default_precision}")
        summary["dask_precision"] = default_precision
        if engine is not None:
            summary["dask_over_single_process"] = round(
                by_name["engine_dask"]["docs_per_s"] / engine["docs_per_s"], 3
            )
            if "engine_dask_per_file" in by_name:  # the same run with one file per task (no grouping)
                summary["dask_per_file_over_single_process"] = round(
                    by_name["engine_dask_per_file"]["docs_per_s"] / engine["docs_per_s"], 3
                )
            summary["dask_max_abs_difference_vs_engine"] = float(
                np.abs(dask_probabilities - outputs[default_precision]).max()
            )
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {**describe_machine(), "isa": cpu_isa(), "isa_features": isa_features()},
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
    machine, corpus, summary = report["machine"], report["corpus"], report["summary"]
    flops = report["model"]["flops_per_token"]["total"]
    rows = [
        f"CPU: {machine.get('cpu', '?')}; ISA: {machine['isa']}; {machine['torch_threads']} torch threads",
        f"corpus: {corpus['documents']} docs, mean {corpus['mean_tokens']} tokens; model {flops / 1e6:.0f} "
        f"MFLOP/token",
        "",
        f"{'contender':<22}{'docs/s':>10}{'tokens/s':>12}{'seconds':>10}",
    ]
    for result in report["results"]:
        rows.append(
            f"{result['name']:<22}{result['docs_per_s']:>10.2f}{result['tokens_per_s']:>12.0f}{result['seconds']:>10.1f}"
        )
    rows += [
        "",
        f"{'precision':<15}{'tokens/s':>10}{'GFLOP/s':>9}{'peak':>8}{'of peak':>9}{'x pipeline':>12}"
        f"{'agree fp32':>12}{'max |dp|':>10}{'compile s':>11}",
    ]
    for name, figures in summary["precisions"].items():
        peak, fraction = figures["matmul_peak_gflops"], figures["fraction_of_peak"]
        agreement = figures.get("argmax_agreement_with_fp32", 1.0)
        difference = figures.get("max_abs_probability_difference_vs_fp32", 0.0)
        compile_seconds = figures.get("compile_seconds")
        rows.append(
            f"{name + (' (auto)' if name == summary['default_precision'] else ''):<15}"
            f"{figures['tokens_per_s']:>10.0f}{figures['gflops']:>9.0f}"
            f"{(f'{peak:.0f}' if peak else 'n/a'):>8}{(f'{fraction:.0%}' if fraction else 'n/a'):>9}"
            f"{figures['vs_best_pipeline']:>11.2f}x{agreement:>12.1%}{difference:>10.1e}"
            f"{(f'{compile_seconds:.0f}' if compile_seconds is not None else ''):>11}"
        )
    model = summary["agreement_model"]
    rows += [
        f"x pipeline: tokens/s over the best HF pipeline ({summary['best_pipeline']}, "
        f"{summary['best_pipeline_tokens_per_s']:.0f} tokens/s); peak: that precision's measured matmul "
        f"GFLOP/s (n/a: not native here, not measured); agreement: {model['model']}, {model['documents']} docs "
        "(eager); *_compiled: torch.compile'd engine, compile s = its first batch, paid once per worker",
    ]
    if "dask_over_single_process" in summary:
        per_file = summary.get("dask_per_file_over_single_process")
        rows.append(
            f"Dask path ({summary['dask_precision']}) / single process: {summary['dask_over_single_process']:.0%}"
            + (f" (one file per task: {per_file:.0%})" if per_file is not None else "")
        )
    for name, profile in report.get("engine_profiles", {}).items():
        rows.append(
            f"engine profile, {name} (self CPU): "
            + ", ".join(f"{row['op'].removeprefix('aten::')} {row['share']:.0%}" for row in profile[:8])
        )
    return "\n".join(rows)
