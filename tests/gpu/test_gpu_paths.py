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


def test_driver_on_a_dask_cuda_local_cluster(tmp_path, tiny_domain_model, frame):
    pytest.importorskip("dask_cuda")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for shard in range(4):
        rows = frame.iloc[shard::4].to_dict("records")
        (inputs / f"s{shard}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    output = tmp_path / "out"
    command = [sys.executable, "-m", "hpc_classify.cli.main", "run", "--input", str(inputs)]
    command += ["--output", str(output), "--model", str(tiny_domain_model), "--device", "cuda"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((output / "_summary.json").read_text())
    assert summary["files_processed"] == 4 and summary["documents_in"] == len(frame)
    ids = [
        json.loads(line)["id"] for p in sorted(output.glob("*.jsonl")) for line in p.read_text().splitlines()
    ]
    assert sorted(ids) == list(range(len(frame)))
