"""A real run (driver, local Dask cluster, worker processes) of a hub model while the hub's `main` moves on
between the fingerprint and the first task: every document is classified by the fingerprinted commit."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from driver_support import make_corpus, output_files, read_jsonl
from hub_cache import cache_checkpoint, updated_checkpoint

from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
from hpc_classify.config import RunConfig
from hpc_classify.driver.run import RunHooks, run_classification

FIRST, SECOND = "1" * 40, "2" * 40


def test_workers_classify_with_the_fingerprinted_commit(tiny_domain_model: Path, tmp_path: Path, monkeypatch):
    home = tmp_path / "hf-home"
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))  # the worker processes inherit it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_checkpoint(home / "hub", "org/model", FIRST, tiny_domain_model)
    update = updated_checkpoint(tiny_domain_model, tmp_path / "update", "fc.bias")  # predicts one label
    make_corpus(tmp_path / "in", 2, 12)

    @contextmanager
    def hub_update(config, output_dir):  # after the fingerprint and the cluster's start, before any task
        cache_checkpoint(home / "hub", "org/model", SECOND, update)
        yield

    config = RunConfig(
        inputs=[str(tmp_path / "in")],
        output=str(tmp_path / "out"),
        classifiers=[DomainClassifier(model="org/model", device="cpu")],
        workers=1,
        threads_per_worker=1,
    )
    result = run_classification(config, hooks=RunHooks(around_classifying=hub_update))
    assert result.exit_code == 0

    rows = [row for _, path in sorted(output_files(tmp_path / "out").items()) for row in read_jsonl(path)]
    texts = pd.DataFrame({"text": [row["text"] for row in rows]})

    def predictions_of(model_dir: Path) -> list[str]:
        return (
            DomainClassifier(model=str(model_dir), device="cpu").predict_frame(texts)["domain_pred"].tolist()
        )

    predicted = [row["domain_pred"] for row in rows]
    assert predicted == predictions_of(tiny_domain_model)  # the commit in _run.json
    assert predicted != predictions_of(update)  # what a worker resolving `main` again would have written


def test_nemo_call_classifies_with_the_commit_resolved_when_called(
    tiny_domain_model: Path, tmp_path: Path, monkeypatch
):
    """`classifier(dataset)` is lazy: the workers load the model when the result is computed. A hub update
    between the call and the computation must not reach them (each worker process resolving `main`)."""
    from distributed import Client, LocalCluster

    from hpc_classify import DocumentDataset

    home = tmp_path / "hf-home"
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_checkpoint(home / "hub", "org/model", FIRST, tiny_domain_model)
    update = updated_checkpoint(tiny_domain_model, tmp_path / "update", "fc.bias")
    make_corpus(tmp_path / "in", 2, 12)

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        dataset = DocumentDataset.read_json(str(tmp_path / "in"), backend="pandas")
        result = DomainClassifier(model="org/model", device="cpu")(dataset)
        cache_checkpoint(home / "hub", "org/model", SECOND, update)  # the hub moves on before any task
        frame = result.to_pandas()

    texts = pd.DataFrame({"text": frame["text"].tolist()})
    expected = DomainClassifier(model=str(tiny_domain_model), device="cpu").predict_frame(texts)[
        "domain_pred"
    ]
    assert frame["domain_pred"].tolist() == expected.tolist()
