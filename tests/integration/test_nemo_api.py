"""The NeMo Curator excerpt from the README end to end on files (pandas backend), NeMo's get_client and
classifier arguments."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from distributed import Client, LocalCluster

from hpc_classify import DocumentDataset, DomainClassifier, get_all_files_paths_under, get_client
from hpc_classify.errors import ConfigError
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus


def write_shards(root, shard_sizes, seed=3):
    texts, _ = synthetic_corpus(sum(shard_sizes), DOMAIN_LABELS, seed=seed)
    start = 0
    for index, size in enumerate(shard_sizes):
        rows = [{"id": f"s{index}-{i}", "text": texts[start + i], "meta": {"n": i}} for i in range(size)]
        (root / f"shard_{index:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        start += size


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_readme_excerpt_keeps_sharding_rows_and_columns(tmp_path, tiny_domain_model):
    books = tmp_path / "books_dataset"
    books.mkdir()
    write_shards(books, [17, 1, 23])

    files = get_all_files_paths_under(str(books))
    input_dataset = DocumentDataset.read_json(files, backend="pandas", add_filename=True)
    classifier = DomainClassifier(model=str(tiny_domain_model))
    labelled = classifier(dataset=input_dataset)
    everything = labelled.df.compute()
    lonely_label = everything.loc[everything["id"] == "s1-0", "domain_pred"].item()
    wanted = [label for label in everything["domain_pred"].value_counts().index if label != lonely_label][:2]

    result_dataset = DomainClassifier(model=str(tiny_domain_model), filter_by=wanted)(dataset=input_dataset)
    out = tmp_path / "games_and_sports"
    result_dataset.to_json(str(out), write_to_filename=True)

    written = sorted(p.name for p in out.iterdir())
    # shard_01's only row is filtered out: no file for it, as in NeMo (an empty one breaks directory readers).
    assert written == ["shard_00.jsonl", "shard_02.jsonl"]
    for name in written:
        source = read_jsonl(books / name)
        labels = dict(zip(everything["id"], everything["domain_pred"], strict=True))
        expected = [dict(row, domain_pred=labels[row["id"]]) for row in source if labels[row["id"]] in wanted]
        assert read_jsonl(out / name) == expected  # all original columns, row order, no file_name column


def test_unfiltered_output_has_every_row_exactly_once(tmp_path, tiny_domain_model):
    write_shards(tmp_path, [5, 0, 8])
    files = get_all_files_paths_under(str(tmp_path), keep_extensions="jsonl")
    dataset = DocumentDataset.read_json(files, add_filename=True)
    result = DomainClassifier(model=str(tiny_domain_model))(dataset).df.compute()
    assert sorted(result["id"]) == sorted(f"s{s}-{i}" for s, n in ((0, 5), (2, 8)) for i in range(n))
    assert result["domain_pred"].isin(DOMAIN_LABELS).all()
    assert isinstance(result, pd.DataFrame)


# -- NeMo Curator's cluster helpers and classifier arguments ----------------------------------------


def _workers_answer(client):
    return client.submit(lambda x: x + 1, 41).result(timeout=60) == 42


def test_seed_excerpt_with_get_client_in_front(tmp_path, tiny_domain_model):
    books = tmp_path / "books_dataset"
    books.mkdir()
    write_shards(books, [6, 5])
    client = get_client(cluster_type="gpu", n_workers=1)  # no GPU here: a CPU cluster, with a warning
    try:
        files = get_all_files_paths_under(str(books), keep_extensions="jsonl")
        input_dataset = DocumentDataset.read_json(files, backend="pandas", add_filename=True)
        labels = DomainClassifier(model=str(tiny_domain_model)).get_labels()
        domain_classifier = DomainClassifier(
            labels[:13], model=str(tiny_domain_model)
        )  # filter_by, positionally
        result_dataset = domain_classifier(dataset=input_dataset)
        result_dataset.to_json(str(tmp_path / "games_and_sports"), write_to_filename=True)
        # The same documents unfiltered: the rows the filter must keep, independently of it.
        everything = DomainClassifier(model=str(tiny_domain_model))(dataset=input_dataset).df.compute()
    finally:
        client.shutdown()
    out = tmp_path / "games_and_sports"
    written = sorted(p.name for p in out.iterdir())
    assert written == ["shard_00.jsonl", "shard_01.jsonl"]
    predicted = dict(zip(everything["id"], everything["domain_pred"], strict=True))
    assert len(predicted) == 11
    kept = 0
    for name in written:
        expected = [
            dict(row, domain_pred=predicted[row["id"]])
            for row in read_jsonl(books / name)
            if predicted[row["id"]] in labels[:13]
        ]
        assert read_jsonl(out / name) == expected  # the kept ids, in order, with all their columns
        kept += len(expected)
    assert 0 < kept < len(predicted)  # the filter kept some rows and dropped others


def test_get_client_local_cpu_cluster_and_ucx_means_ucxx():
    client = get_client(n_workers=1, protocol="ucx")
    try:
        assert client.scheduler.address.startswith("ucxx://")
        assert _workers_answer(client)
    finally:
        client.shutdown()


def test_get_client_gpu_without_a_gpu_keeps_an_explicit_n_workers(caplog):
    # The fallback's one worker is a default: a count the caller gave takes effect.
    workers = (os.cpu_count() or 1) + 1  # not get_client's default
    client = get_client(cluster_type="gpu", n_workers=workers)
    try:
        assert len(client.nthreads()) == workers
        assert "no GPU is visible: starting a local CPU cluster instead" in caplog.text
    finally:
        client.shutdown()


@pytest.fixture(scope="module")
def running_cluster():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster


def test_get_client_by_scheduler_file_and_address(tmp_path, running_cluster):
    with Client(running_cluster) as owner:
        owner.write_scheduler_file(str(tmp_path / "scheduler.json"))
    for kwargs in (
        {"scheduler_file": str(tmp_path / "scheduler.json")},
        {"scheduler_address": running_cluster.scheduler_address},
        {"scheduler_address": running_cluster.scheduler_address.removeprefix("tcp://"), "protocol": "tcp"},
        {"scheduler_address": running_cluster},  # a cluster object, as NeMo's docstring allows
    ):
        client = get_client(**kwargs)
        try:
            assert _workers_answer(client)
        finally:
            client.close()
    with pytest.raises(ConfigError, match="not both"):
        get_client(scheduler_file="x", scheduler_address="y")
    with pytest.raises(ConfigError, match="cluster_type"):
        get_client(cluster_type="tpu")


def test_get_client_by_address_over_ucxx():
    with LocalCluster(n_workers=1, processes=True, protocol="ucxx", dashboard_address=":0") as cluster:
        client = get_client(scheduler_address=cluster.scheduler_address)
        try:
            assert client.scheduler.address.startswith("ucxx://")
            assert _workers_answer(client)
        finally:
            client.close()


def test_a_missing_text_column_is_a_key_error_when_the_classifier_is_called(tiny_domain_model):
    """As NeMo's df[text_field]: a KeyError (also our InputFileError, a ValueError) from classifier(dataset),
    before anything is computed; a frame classified directly says the same."""
    import dask.dataframe as dd

    dataset = DocumentDataset(dd.from_pandas(pd.DataFrame({"content": ["a", "b"]}), npartitions=1))
    classifier = DomainClassifier(model=str(tiny_domain_model), text_field="body")
    with pytest.raises(KeyError, match="no text column 'body' \\(columns: content\\)"):
        classifier(dataset)
    with pytest.raises(KeyError, match="no text column 'body'"):
        classifier.predict_frame(dataset.df.compute())


def test_max_mem_gb_applies_when_another_classifier_loaded_the_same_model(tiny_domain_model):
    """max_mem_gb is not part of the per-process engine key: a classifier with it, running on an engine that
    a classifier without it loaded, still gets its check (here, a worker without a GPU: the error)."""
    frame = pd.DataFrame({"text": ["a document", "another one"]})
    first = DomainClassifier(model=str(tiny_domain_model), device_type="auto")
    first.predict_frame(frame)  # loads and caches the engine in this process
    capped = DomainClassifier(model=str(tiny_domain_model), device_type="auto", max_mem_gb=4)
    assert capped.engine_key() == first.engine_key()
    with pytest.raises(ConfigError, match="max_mem_gb=4 was given but this worker has no GPU"):
        capped.predict_frame(frame)


def test_classifier_arguments_take_effect(tiny_domain_model):
    positional = DomainClassifier(["Games"], 8, "body", "label", "probs", 100, "cpu", False)
    assert (positional.filter_by, positional.batch_size, positional.text_field) == (["Games"], 8, "body")
    assert (positional.pred_column, positional.prob_column, positional.max_chars) == ("label", "probs", 100)
    assert (positional.device, positional.autocast) == ("cpu", False)
    with pytest.raises(ConfigError, match="max_mem_gb"):
        DomainClassifier(device_type="cpu", max_mem_gb=4)
    assert DomainClassifier(model=str(tiny_domain_model)).get_labels() == DOMAIN_LABELS
