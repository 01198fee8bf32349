"""Any classifier on the resumable driver, and several in one pass: a user's own subclass (tests/user_package,
`mylab.toxicity:ToxicityClassifier`, a Hugging Face model) through `hpc-classify run` and `hpc_classify.run`,
joint runs with the domain classifier, lean outputs, and the explicit fingerprint."""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from driver_support import (
    group_bytes_for,
    kill_group,
    make_corpus,
    markers,
    output_files,
    read_jsonl,
    run_cli,
    start_cli,
    wait_for,
)
from reference_models import sequence_classifier_probabilities

from hpc_classify import DomainClassifier, run
from hpc_classify.errors import ConfigError, OutputDirectoryError

USER_CLASS = "mylab.toxicity:ToxicityClassifier"


def corpus_rows(root: Path) -> dict[str, list[dict]]:
    return {p.name: read_jsonl(p) for p in sorted(root.glob("*.jsonl"))}


def toxicity(model_dir: Path, **kwargs):
    from mylab.toxicity import ToxicityClassifier

    return ToxicityClassifier(str(model_dir), autocast=False, device="cpu", **kwargs)


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    make_corpus(tmp_path / "in", 4, 9)
    return tmp_path / "in"


def test_user_subclass_through_the_cli_matches_plain_transformers(
    tmp_path, corpus, tiny_toxicity_model, user_package_path
):
    config = write_yaml(
        tmp_path / "run.yaml",
        f"input: {corpus}\noutput: {tmp_path / 'out'}\nworkers: 1\nthreads_per_worker: 1\n"
        f"classifiers:\n  - classifier: {USER_CLASS}\n    model_dir: {tiny_toxicity_model}\n"
        "    prob_column: toxicity_prob\n    autocast: false\n    device: cpu\n",
    )
    proc = run_cli(["run", "--config", str(config)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = corpus_rows(corpus)
    written = {name: read_jsonl(path) for name, path in output_files(tmp_path / "out").items()}
    assert sorted(written) == sorted(rows)
    for name, source in rows.items():
        assert [r["id"] for r in written[name]] == [r["id"] for r in source]  # every document once, in order
        want = sequence_classifier_probabilities(tiny_toxicity_model, [r["text"] for r in source])
        got = np.array([r["toxicity_prob"] for r in written[name]])
        assert np.abs(got - want).max() <= 1e-5
        assert [r["toxicity_pred"] for r in written[name]] == [
            ["non_toxic", "toxic"][i] for i in want.argmax(1)
        ]
    labels = json.loads((tmp_path / "out" / "_summary.json").read_text())["labels"]
    assert set(labels) == {"toxicity_pred"} and sum(labels["toxicity_pred"].values()) == 4 * 9 + 3
    assert labels["toxicity_pred"]["toxic"] > 0 and labels["toxicity_pred"]["non_toxic"] > 0


def test_two_classifiers_in_one_pass_read_each_file_once(
    tmp_path, corpus, tiny_domain_model, tiny_toxicity_model, user_package_path, monkeypatch
):
    """In-process Dask (threads), so that reads and tokenizer calls on the worker can be counted."""
    from distributed import Client, LocalCluster

    import hpc_classify.driver.task as task
    from hpc_classify.engine.tokenization import ChunkTokenizer

    reads: collections.Counter[str] = collections.Counter()
    tokenized: collections.Counter[int] = collections.Counter()
    real_read, real_tokenize = task.read_documents, ChunkTokenizer.__call__

    def counting_read(path, **kwargs):
        reads[Path(path).name] += 1
        return real_read(path, **kwargs)

    def counting_tokenize(self, texts):
        tokenized[len(texts)] += 1
        return real_tokenize(self, texts)

    monkeypatch.setattr(task, "read_documents", counting_read)
    monkeypatch.setattr(ChunkTokenizer, "__call__", counting_tokenize)
    domain = DomainClassifier(model=str(tiny_domain_model), autocast=False, device="cpu")
    both = [domain, toxicity(tiny_toxicity_model)]
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        result = run(both, corpus, tmp_path / "both", cluster=client)
    assert result.exit_code == 0 and result.summary["files_processed"] == 4
    assert reads == {name: 1 for name in corpus_rows(corpus)}  # one read per file for both models
    # The four small files went to the worker as one group: the shared tokenizer ran once for the group
    # (once per task, not once per model).
    assert sum(tokenized.values()) == 1

    rows = corpus_rows(corpus)
    for name, source in rows.items():
        got = read_jsonl(tmp_path / "both" / name)
        texts = [r["text"] for r in source]
        want_tox = sequence_classifier_probabilities(tiny_toxicity_model, texts).argmax(1)
        want_domain = domain.predict_frame(pd.DataFrame({"text": texts}))["domain_pred"].tolist()
        assert [r["domain_pred"] for r in got] == want_domain
        assert [r["toxicity_pred"] for r in got] == [["non_toxic", "toxic"][i] for i in want_tox]
    assert set(result.summary["labels"]) == {"domain_pred", "toxicity_pred"}


def test_a_row_is_written_when_it_passes_every_filter(
    tmp_path, corpus, tiny_domain_model, tiny_toxicity_model, user_package_path
):
    from distributed import Client, LocalCluster

    everything = tmp_path / "all"
    domain = DomainClassifier(model=str(tiny_domain_model), autocast=False, device="cpu")
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        run([domain, toxicity(tiny_toxicity_model)], corpus, everything, cluster=client)
        predicted = [r for path in sorted(everything.glob("*.jsonl")) for r in read_jsonl(path)]
        domains = collections.Counter(r["domain_pred"] for r in predicted).most_common(4)
        keep = [label for label, _ in domains]
        # The toxicity label most frequent among those rows: both filters then keep some rows, not all.
        tox = collections.Counter(r["toxicity_pred"] for r in predicted if r["domain_pred"] in keep)
        tox_label = tox.most_common(1)[0][0]
        filtered = tmp_path / "filtered"
        result = run(
            [
                DomainClassifier(model=str(tiny_domain_model), autocast=False, device="cpu", filter_by=keep),
                toxicity(tiny_toxicity_model, filter_by=tox_label),
            ],
            corpus,
            filtered,
            cluster=client,
        )
    want = [r["id"] for r in predicted if r["domain_pred"] in keep and r["toxicity_pred"] == tox_label]
    got = [r["id"] for path in sorted(filtered.glob("*.jsonl")) for r in read_jsonl(path)]
    assert got == want and 0 < len(want) < len(predicted)
    assert result.summary["documents_out"] == len(want) and result.summary["documents_in"] == len(predicted)


def test_joint_run_killed_and_resumed_is_exactly_once_then_a_no_op(
    tmp_path, tiny_domain_model, tiny_toxicity_model, user_package_path
):
    expected = make_corpus(tmp_path / "in", 16, 30)
    out = tmp_path / "out"
    config = write_yaml(
        tmp_path / "run.yaml",
        f"input: {tmp_path / 'in'}\noutput: {out}\nworkers: 1\nthreads_per_worker: 1\ndevice: cpu\n"
        # Tasks of about three files: grouped by default, the 16 small files would be one task and the kill
        # could not land between markers.
        f"progress_interval: 2\ntasks_per_worker: 1\ngroup_bytes: {group_bytes_for(tmp_path / 'in', 3)}\n"
        f"classifiers:\n  - classifier: domain\n    model: {tiny_domain_model}\n"
        f"  - classifier: {USER_CLASS}\n    model_dir: {tiny_toxicity_model}\n",
    )
    proc = start_cli(["run", "--config", str(config)], tmp_path / "first.log")
    wait_for(lambda: len(markers(out)) >= 2, timeout=180, what="two completion markers")
    kill_group(proc)
    assert 2 <= len(markers(out)) < 16, "the kill was not mid-run"
    second = run_cli(["run", "--config", str(config)])
    assert second.returncode == 0, second.stdout + second.stderr
    ids = [r["id"] for path in output_files(out).values() for r in read_jsonl(path)]
    assert sorted(ids) == sorted(i for v in expected.values() for i in v) and len(ids) == len(set(ids))
    rows = [r for path in output_files(out).values() for r in read_jsonl(path)]
    assert all({"domain_pred", "toxicity_pred"} <= set(r) for r in rows)
    third = run_cli(["run", "--config", str(config)])
    assert third.returncode == 0 and "0 file(s) processed, 16 already done" in third.stdout


def test_keep_columns_writes_no_text_and_the_row_number_joins_back(tmp_path, tiny_domain_model):
    from distributed import Client, LocalCluster

    inputs = tmp_path / "in"
    make_corpus(inputs, 2, 12, bad_lines={0: ['{"id": "no-text"}']})
    # A bad row in the middle, so that row numbers are positions in the file, not among the good rows.
    first = inputs / "part-000.jsonl"
    lines = first.read_text().splitlines()
    first.write_text("\n".join([*lines[:5], lines[-1], *lines[5:-1]]) + "\n")
    domain = DomainClassifier(model=str(tiny_domain_model), device="cpu", autocast=False)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        full = run(domain, inputs, tmp_path / "full", cluster=client, on_bad_row="skip")
        lean = run(domain, inputs, tmp_path / "lean", cluster=client, on_bad_row="skip", keep_columns=["id"])
    assert full.exit_code == lean.exit_code == 0
    for name in ("part-000.jsonl", "part-001.jsonl"):
        written = read_jsonl(tmp_path / "lean" / name)
        assert all(set(r) == {"row_number", "id", "domain_pred"} for r in written)
        source = pd.read_json(inputs / name, lines=True)  # the documented join
        joined = source.join(pd.DataFrame(written).set_index("row_number")[["domain_pred"]], how="inner")
        full_rows = read_jsonl(tmp_path / "full" / name)
        assert joined["id"].tolist() == [r["id"] for r in full_rows]
        assert joined["text"].tolist() == [r["text"] for r in full_rows]
        assert joined["domain_pred"].tolist() == [r["domain_pred"] for r in full_rows]
    assert read_jsonl(tmp_path / "lean" / "part-000.jsonl")[5]["row_number"] == 6  # row 5 was the bad one
    lean_bytes = sum(p.stat().st_size for p in output_files(tmp_path / "lean").values())
    full_bytes = sum(p.stat().st_size for p in output_files(tmp_path / "full").values())
    assert lean_bytes * 2 < full_bytes


def test_fingerprint_resumes_on_speed_settings_and_refuses_prediction_changes(tmp_path, tiny_domain_model):
    from distributed import Client, LocalCluster

    inputs = tmp_path / "in"
    make_corpus(inputs, 2, 5)
    out = tmp_path / "out"
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        assert (
            run(
                DomainClassifier(model=str(tiny_domain_model), device="cpu"), inputs, out, cluster=client
            ).exit_code
            == 0
        )
        faster = DomainClassifier(model=str(tiny_domain_model), device="cpu", batch_size=3, token_budget=999)
        again = run(faster, inputs, out, cluster=client)
        assert again.exit_code == 0 and again.summary["files_skipped"] == 2  # resumed, nothing redone

        relabelled = tmp_path / "relabelled"
        shutil.copytree(tiny_domain_model, relabelled)
        config = json.loads((relabelled / "config.json").read_text())
        config["id2label"]["0"] = "Grown_ups"
        (relabelled / "config.json").write_text(json.dumps(config))
        refused = {
            "classifiers.0.filter_by": DomainClassifier(
                model=str(tiny_domain_model), device="cpu", filter_by="Games"
            ),
            "classifiers.0.model.model": DomainClassifier(model=str(relabelled), device="cpu"),
            "classifiers.0.labels": DomainClassifier(model=str(relabelled), device="cpu"),
            "classifiers.0.max_chars": DomainClassifier(
                model=str(tiny_domain_model), device="cpu", max_chars=10
            ),
        }
        for key, classifier in refused.items():
            with pytest.raises(OutputDirectoryError, match=rf"different run.*{key}"):
                run(classifier, inputs, out, cluster=client)


def test_column_clash_and_non_classifiers_are_refused_before_anything_is_written(tmp_path, tiny_domain_model):
    one = DomainClassifier(model=str(tiny_domain_model))
    with pytest.raises(
        ConfigError, match=r"'domain_pred' is written by classifier 1: DomainClassifier and by classifier 2"
    ):
        run([one, DomainClassifier(model=str(tiny_domain_model))], tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError, match="classifier 2 is a str"):
        run([one, "domain"], tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
