#!/usr/bin/env bash
# The GPU check, in one call on a machine with a CUDA GPU (docs/development.md, "GPU notes"): the GPU tests and the engine's
# CUDA tests, then benchmarks/bench_gpu.py. Wheels from scripts/gpu_wheels.sh in .whl/ (Dask, dask-cuda, ...).
# Logs and the benchmark's JSON go to $OUT (default ./gpu-check). Sized for one call of under 8 minutes
# (tests <= TEST_SECONDS, benchmark <= BENCH_SECONDS): the benchmark's default compares, at the default token
# budget in bf16, today's engine, --compile on and the FlexAttention kernel (attention flex) on the
# base-sized model, against the bf16 pipeline at batch 512 (its best on the H100); BENCH_ARGS replaces that.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 HPC_CLASSIFY_TINY_MODEL_CACHE=${HPC_CLASSIFY_TINY_MODEL_CACHE:-/tmp/tiny-models}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 - <<'PY' 2>&1 | tee -a "$OUT/gpu.txt"
import importlib, os
for name in ("torch", "transformers", "tokenizers", "pandas", "pyarrow", "dask", "distributed", "dask_cuda", "cudf"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as error:  # report and go on: the tests skip what is missing
        print(name, "unavailable:", type(error).__name__, str(error)[:200])
import torch
print("cuda", torch.version.cuda, torch.cuda.get_device_name(), "host cpus", os.cpu_count())
PY
timeout "${TEST_SECONDS:-210}" python3 -m pytest -p no:cacheprovider -q -rs --timeout 200 \
  tests/gpu tests/unit/test_engine.py tests/unit/test_precision.py 2>&1 | tee "$OUT/pytest.log"
tests=${PIPESTATUS[0]}
BENCH_ARGS=${BENCH_ARGS:---documents 4096 --pipeline-documents 1024 --pipeline-batch-sizes 512 --budgets 65536}
timeout "${BENCH_SECONDS:-240}" python3 benchmarks/bench_gpu.py --output "$OUT/gpu.json" $BENCH_ARGS 2>&1 | tee "$OUT/bench.log"
bench=${PIPESTATUS[0]}
echo "tests exit $tests, benchmark exit $bench"
exit $(( tests || bench ))
