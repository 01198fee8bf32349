"""The benchmark's hardware side: ISA detection, peaks measured only where native and bounded in time, the
per-precision table (no timings asserted: benchmarks print figures)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch

from hpc_classify.bench import hardware
from hpc_classify.bench.report import build_report, format_table
from hpc_classify.bench.run import BenchSettings, default_precisions
from hpc_classify.bench.runners import Timing
from hpc_classify.engine import precision as precision_module

ZEN2 = {"fpu", "sse4_2", "avx", "avx2", "fma"}
ZEN4 = ZEN2 | {"avx512f", "avx512_vnni", "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_tile", "amx_bf16", "amx_int8"}


@pytest.mark.parametrize(
    ("flags", "isa", "amx"),
    [
        (ZEN2, "AVX2 only", False),
        (ZEN2 | {"avx512f"}, "AVX-512 (no BF16)", False),
        (ZEN4, "AVX-512 BF16", False),
        (SAPPHIRE_RAPIDS, "AMX-BF16", True),
        (set(), "unknown ISA", False),
    ],
)
def test_isa_detection(flags, isa, amx) -> None:
    assert hardware.cpu_isa(flags) == isa
    features = hardware.isa_features(flags)
    assert features["amx"] is amx and features["avx2"] is bool(flags)


def test_this_machines_flags_are_read() -> None:
    assert hardware.cpu_isa() != "unknown ISA" or not hardware.cpu_flags()


def test_default_precisions_skip_bf16_where_it_is_emulated() -> None:
    assert default_precisions(native_bf16=False) == ("fp32", "int8")
    assert default_precisions(native_bf16=True) == ("fp32", "bf16", "int8")


@pytest.mark.parametrize("native", [False, True])
def test_peaks_are_measured_only_where_native(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: native)
    measured = []
    original = hardware.matmul_gflops

    def spy(dtype, **kwargs):
        measured.append(dtype)
        return original(dtype, **kwargs)

    monkeypatch.setattr(hardware, "matmul_gflops", spy)
    peaks = hardware.measure_peaks(["fp32", "bf16", "int8"], size=64, max_seconds=0.2)
    assert sorted(peaks) == (["bf16", "fp32", "int8"] if native else ["fp32", "int8"])
    assert (torch.bfloat16 in measured) is native
    assert all(value > 0 for value in peaks.values())


def test_a_peak_measurement_stops_after_its_time_bound() -> None:
    calls = []

    def slow() -> None:  # like an emulated matmul: each run takes long
        calls.append(None)
        time.sleep(0.05)

    gflops = hardware._best_gflops(slow, 10**9, repeats=50, max_seconds=0.12, device="cpu")
    assert 1 <= len(calls) <= 5 and gflops > 0  # not 51 runs
    calls.clear()
    hardware._best_gflops(slow, 10**9, repeats=50, max_seconds=0.01, device="cpu")
    assert len(calls) == 1  # the warm-up alone exceeded the bound: it is the measurement


def _report(peaks: dict[str, float], precisions: list[str]) -> dict:
    timings = [Timing("hf_pipeline_bs1", 4.0, 4, 1600, {}), Timing("hf_pipeline_bs8", 5.0, 4, 1600, {})]
    timings += [Timing(f"engine_{p}", 1.0 + i, 4, 1600, {}) for i, p in enumerate(precisions)]
    outputs = {p: np.full((4, 3), 1 / 3, dtype=np.float32) for p in precisions}
    agreement = {"model": "tiny", "documents": 10}
    agreement.update(
        {
            p: {"argmax_agreement_with_fp32": 1.0, "max_abs_probability_difference_vs_fp32": 1e-3}
            for p in precisions[1:]
        }
    )
    return build_report(
        BenchSettings.quick(), 2, np.array([300, 500]), peaks, timings, outputs, agreement, "fp32", None
    )


def test_the_report_gives_each_precision_its_peak_fraction_ratio_and_agreement() -> None:
    report = _report({"fp32": 100.0, "int8": 400.0}, ["fp32", "bf16", "int8"])
    precisions = report["summary"]["precisions"]
    assert report["summary"]["best_pipeline"] == "hf_pipeline_bs1"
    assert precisions["fp32"]["vs_best_pipeline"] == 4.0
    assert precisions["bf16"]["matmul_peak_gflops"] is None and precisions["bf16"]["fraction_of_peak"] is None
    assert precisions["int8"]["fraction_of_peak"] == pytest.approx(
        precisions["int8"]["gflops"] / 400, abs=1e-3
    )
    assert precisions["int8"]["argmax_agreement_with_fp32"] == 1.0
    assert report["machine"]["isa"] == hardware.cpu_isa()
    table = format_table(report)
    assert "ISA:" in table and "fp32 (auto)" in table and "n/a" in table and "int8" in table


def test_the_compiled_rows_use_their_precisions_peak_and_compare_with_eager() -> None:
    timings = [Timing("hf_pipeline_bs1", 4.0, 4, 1600, {})]
    timings += [
        Timing("engine_fp32", 2.0, 4, 1600, {}),
        Timing("engine_fp32_compiled", 1.0, 4, 1600, {"compiled": True, "compile_seconds": 37.5}),
    ]
    outputs = {"fp32": np.full((4, 3), 1 / 3, dtype=np.float32)}
    outputs["fp32_compiled"] = outputs["fp32"] + np.float32(1e-6)
    report = build_report(
        BenchSettings.quick(),
        2,
        np.array([300, 500]),
        {"fp32": 100.0},
        timings,
        outputs,
        {"model": "tiny", "documents": 10},
        "fp32",
        None,
    )
    compiled = report["summary"]["precisions"]["fp32_compiled"]
    assert compiled["matmul_peak_gflops"] == 100.0 and compiled["fraction_of_peak"] is not None
    assert compiled["vs_eager"] == 2.0 and compiled["compile_seconds"] == 37.5 and compiled["compiled"]
    assert compiled["max_abs_probability_difference_vs_eager"] == pytest.approx(1e-6, rel=0.1)
    assert "fp32_compiled" in format_table(report) and "38" in format_table(report)


def test_the_dask_path_figures_compare_grouped_and_per_file_runs_with_one_process() -> None:
    timings = [Timing("hf_pipeline_bs1", 4.0, 4, 1600, {}), Timing("engine_fp32", 1.0, 4, 1600, {})]
    timings += [Timing("engine_dask_per_file", 1.25, 4, 1600, {}), Timing("engine_dask", 1.05, 4, 1600, {})]
    outputs = {"fp32": np.full((4, 3), 1 / 3, dtype=np.float32)}
    dask = outputs["fp32"] + np.float32(1e-6)
    report = build_report(
        BenchSettings.quick(),
        2,
        np.array([300, 500]),
        {},
        timings,
        outputs,
        {"model": "m", "documents": 1},
        "fp32",
        dask,
    )
    summary = report["summary"]
    assert summary["dask_over_single_process"] == pytest.approx(1 / 1.05, abs=1e-3)
    assert summary["dask_per_file_over_single_process"] == pytest.approx(0.8, abs=1e-3)
    assert summary["dask_max_abs_difference_vs_engine"] == pytest.approx(1e-6, abs=1e-7)
    assert "Dask path (fp32) / single process: 95% (one file per task: 80%)" in format_table(report)


def test_the_dask_path_input_files_split_the_texts_in_order(tmp_path) -> None:
    from hpc_classify.bench.dask_path import read_probabilities, write_input_files

    texts = [f"document {i}" for i in range(10)]
    paths = write_input_files(texts, 4, str(tmp_path / "in"))
    assert [len(open(p).readlines()) for p in paths] == [2, 3, 2, 3]
    out = tmp_path / "out"
    out.mkdir()
    for path in paths:  # an output as the driver writes it: the input rows plus the probabilities column
        rows = [json.loads(line) for line in open(path)]
        (out / os.path.basename(path)).write_text(
            "".join(
                json.dumps({**r, "probabilities": [float(r["text"].split()[1]), 0.0]}) + "\n" for r in rows
            )
        )
    assert read_probabilities(str(out), paths)[:, 0].tolist() == list(range(10))


def test_the_highest_of_a_precisions_peak_readings_is_its_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([212.0, 430.0, 190.0, 180.0])  # bf16 dips before its engine; fp32 drifts down
    asked: list[tuple[list[str], int, float]] = []

    def measure(precisions, *, size, max_seconds):
        asked.append((precisions, size, max_seconds))
        return {precisions[0]: next(readings)}

    monkeypatch.setattr(hardware, "measure_peaks", measure)
    probes = hardware.PeakProbes(size=512, max_seconds=0.5)
    for precision in ("bf16", "bf16", "fp32", "fp32"):
        probes.probe(precision)
    assert probes.peaks() == {"bf16": 430.0, "fp32": 190.0}
    assert probes.readings == {"bf16": [212.0, 430.0], "fp32": [190.0, 180.0]}
    assert asked[0] == (["bf16"], 512, 0.5)
