"""The GPU code paths, against the CPU results as the reference: engine, cuDF backend, dask-cuda driver."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hpc_classify import DocumentDataset, DomainClassifier
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def frame():
    texts, _ = synthetic_corpus(200, DOMAIN_LABELS, seed=11)
    return pd.DataFrame({"id": range(len(texts)), "text": texts})


def probabilities(model, frame, **kwargs):
    result = DomainClassifier(model=str(model), prob_column="p", **kwargs).predict_frame(frame)
    return np.array(result["p"].tolist())


def test_cuda_fp32_matches_cpu_fp32(tiny_domain_model, frame):
    cpu = probabilities(tiny_domain_model, frame, device="cpu", autocast=False)
    gpu = probabilities(tiny_domain_model, frame, device="cuda", autocast=False)
    # TF32 may be on for matmuls on Ampere and later: allow its rounding, not more.
    assert np.abs(cpu - gpu).max() <= 1e-3


def test_cuda_autocast_argmax_agrees_with_fp32(tiny_domain_model, frame):
    exact = probabilities(tiny_domain_model, frame, device="cpu", autocast=False).argmax(1)
    fast = probabilities(tiny_domain_model, frame, device="cuda", autocast=True).argmax(1)
    assert (exact == fast).mean() >= 0.99


def test_cudf_backend_gives_the_pandas_result(tmp_path, tiny_domain_model, frame):
    pytest.importorskip("cudf")
    pytest.importorskip("dask_cudf")
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in frame.to_dict("records")))
    classifier = DomainClassifier(model=str(tiny_domain_model), device="cuda", autocast=False)
    on_gpu = classifier(DocumentDataset.read_json([str(path)], backend="cudf")).df.compute().to_pandas()
    on_cpu = classifier(DocumentDataset.read_json([str(path)], backend="pandas")).df.compute()
    assert on_gpu["id"].tolist() == on_cpu["id"].tolist()
    assert on_gpu["domain_pred"].tolist() == on_cpu["domain_pred"].tolist()


def _run_driver(inputs, output, model, device):
    command = [sys.executable, "-m", "hpc_classify.cli.main", "run", "--input", str(inputs)]
    command += ["--output", str(output), "--model", str(model), "--device", device, "--precision", "fp32"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((output / "_summary.json").read_text()), done.stderr


def _rows(output):
    return [json.loads(line) for p in sorted(output.glob("*.jsonl")) for line in p.read_text().splitlines()]


def test_driver_on_a_dask_cuda_local_cluster(tmp_path, tiny_domain_model):
    """A few hundred documents through `hpc-classify run --device cuda`: dask-cuda's LocalCUDACluster (one
    worker per GPU), every document exactly once, the CPU run's labels, and a rerun that does nothing."""
    pytest.importorskip("dask_cuda")
    texts, _ = synthetic_corpus(400, DOMAIN_LABELS, seed=13)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for shard in range(8):
        rows = [{"id": i, "text": texts[i]} for i in range(shard, len(texts), 8)]
        (inputs / f"s{shard}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    summary, log = _run_driver(inputs, tmp_path / "gpu", tiny_domain_model, "cuda")
    assert "starting a local dask-cuda cluster: 1 worker(s)" in log
    assert (summary["files_processed"], summary["documents_in"], summary["documents_out"]) == (8, 400, 400)
    on_gpu = _rows(tmp_path / "gpu")
    assert sorted(row["id"] for row in on_gpu) == list(range(400))

    _run_driver(inputs, tmp_path / "cpu", tiny_domain_model, "cpu")
    by_id = {row["id"]: row["domain_pred"] for row in _rows(tmp_path / "cpu")}
    assert [row["domain_pred"] for row in on_gpu] == [by_id[row["id"]] for row in on_gpu]

    rerun, _ = _run_driver(inputs, tmp_path / "gpu", tiny_domain_model, "cuda")
    assert (rerun["files_processed"], rerun["files_skipped"]) == (0, 8)
    assert _rows(tmp_path / "gpu") == on_gpu
