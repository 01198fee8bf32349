"""Cross-file batching: small files classified together by one worker, written per file.

In-process Dask (threads), so that the engine's batches and the group's frames can be counted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from driver_support import make_corpus, read_jsonl

from hpc_classify import DomainClassifier, run
from hpc_classify.classifiers import combine
from hpc_classify.driver.failures import read_failures
from hpc_classify.engine import engine as engine_module
from hpc_classify.io.markers import marker_path, read_marker

PER_FILE = 0  # group_bytes: one file per task, as before cross-file batching
GROUPED = 8 * 1024 * 1024


@pytest.fixture
def batch_sizes(monkeypatch) -> list[int]:
    """The size of every batch the engine runs (plan_batches is looked up by the engine at call time)."""
    sizes: list[int] = []
    real = engine_module.plan_batches

    def counting(lengths, token_budget, **options):
        batches = real(lengths, token_budget, **options)
        sizes.extend(len(b) for b in batches)
        return batches

    monkeypatch.setattr(engine_module, "plan_batches", counting)
    return sizes


def classifier(model: Path) -> DomainClassifier:
    return DomainClassifier(model=str(model), autocast=False, device="cpu", prob_column="domain_prob")


def outputs(output: Path) -> dict[str, list[dict]]:
    return {p.name: read_jsonl(p) for p in sorted(output.glob("part-*.jsonl"))}


def test_small_files_share_batches_and_give_the_same_outputs_as_one_file_at_a_time(
    tmp_path, tiny_domain_model, local_client, batch_sizes
):
    inputs = tmp_path / "in"
    bad = {2: ['{"id": "bad-json", "text": '], 4: ['{"id": "no-text"}']}
    expected = make_corpus(inputs, n_files=6, docs_per_file=7, bad_lines=bad)
    options = {"cluster": local_client, "on_bad_row": "skip", "keep_columns": ["id"]}

    alone = run(classifier(tiny_domain_model), inputs, tmp_path / "alone", group_bytes=PER_FILE, **options)
    alone_batches = list(batch_sizes)
    batch_sizes.clear()
    together = run(
        classifier(tiny_domain_model), inputs, tmp_path / "together", group_bytes=GROUPED, **options
    )

    assert alone.exit_code == together.exit_code == 0
    documents = sum(len(ids) for ids in expected.values())
    assert sum(alone_batches) == sum(batch_sizes) == documents
    # One file per task: at least one batch per file; together: fewer, fuller batches.
    assert len(alone_batches) >= len(expected)
    assert len(batch_sizes) < len(alone_batches)
    assert max(batch_sizes) > max(alone_batches)

    want, got = outputs(tmp_path / "alone"), outputs(tmp_path / "together")
    assert sorted(got) == sorted(want) == sorted(expected)
    for name, rows in want.items():
        # Each run holds exactly the file's good rows, in input order (the bad ones skipped), not only the
        # same rows as the other run.
        assert [r["id"] for r in rows] == [r["id"] for r in got[name]] == expected[name]
        assert [(r["row_number"], r["id"], r["domain_pred"]) for r in got[name]] == [
            (r["row_number"], r["id"], r["domain_pred"]) for r in rows
        ]
        np.testing.assert_allclose(
            [r["domain_prob"] for r in got[name]], [r["domain_prob"] for r in rows], atol=1e-5
        )
        first = read_marker(marker_path(str(tmp_path / "alone"), name))
        second = read_marker(marker_path(str(tmp_path / "together"), name))
        assert (second.rows_in, second.rows_out, second.rows_bad) == (
            first.rows_in,
            first.rows_out,
            first.rows_bad,
        )
        assert second.rows_bad == len(bad.get(int(name[5:8]), []))
        assert second.label_counts == first.label_counts
        quarantine = f"_{name}.quarantine"
        assert (tmp_path / "together" / quarantine).exists() == (tmp_path / "alone" / quarantine).exists()
        if second.rows_bad:
            assert read_jsonl(tmp_path / "together" / quarantine) == read_jsonl(
                tmp_path / "alone" / quarantine
            )
    assert together.summary["documents_in"] == alone.summary["documents_in"] == documents


def test_a_bad_file_in_a_group_fails_alone_and_the_others_are_written(
    tmp_path, tiny_domain_model, local_client, monkeypatch
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=5, docs_per_file=6, bad_lines={3: ['{"id": "bad-json", "text": ']})
    grouped: list[int] = []
    real = combine.predict_frames

    def spy(classifiers, frames, **options):
        grouped.append(len(frames))
        return real(classifiers, frames, **options)

    monkeypatch.setattr(combine, "predict_frames", spy)

    result = run(classifier(tiny_domain_model), inputs, output, cluster=local_client, max_retries=2)

    assert result.exit_code == 1
    assert grouped == [4]  # one task: the four good files classified together, the bad one left out
    failures = read_failures(str(output))
    assert [(f["relpath"], f["attempts"], f["error_type"]) for f in failures] == [
        ("part-003.jsonl", 1, "InputFileError")  # a project error: not retried
    ]
    assert "part-003.jsonl:7" in failures[0]["error"]
    assert sorted(outputs(output)) == sorted(set(expected) - {"part-003.jsonl"})
    for name, rows in outputs(output).items():
        assert [r["id"] for r in rows] == expected[name]
    s = result.summary
    assert (s["files_processed"], s["files_failed"], s["retries"]) == (4, 1, 0)


def test_a_document_that_breaks_the_model_fails_its_own_file_only(
    tmp_path, tiny_domain_model, local_client, monkeypatch
):
    """The group's forward fails: each file is then classified alone, so only the culprit fails."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=4, docs_per_file=5)
    culprit = inputs / "part-001.jsonl"
    with culprit.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "boom", "text": "BREAKS-THE-MODEL"}) + "\n")
    real = combine.predict_together
    calls: list[int] = []

    def breaking(classifiers, frame, **options):
        calls.append(len(frame))
        if frame["text"].str.contains("BREAKS-THE-MODEL", regex=False).any():
            raise ValueError("the model cannot take this document")
        return real(classifiers, frame, **options)

    monkeypatch.setattr(combine, "predict_together", breaking)

    result = run(classifier(tiny_domain_model), inputs, output, cluster=local_client, max_retries=1)

    assert result.exit_code == 1
    failures = read_failures(str(output))
    assert [(f["relpath"], f["attempts"], f["error_type"]) for f in failures] == [
        ("part-001.jsonl", 2, "ValueError")  # an unknown error: retried (alone) once
    ]
    assert sorted(outputs(output)) == sorted(set(expected) - {"part-001.jsonl"})
    assert result.summary["files_processed"] == 3
    documents = sum(len(ids) for ids in expected.values()) + 1
    # The group of four, then each file alone, then the culprit's retry: the others were classified once alone.
    assert calls[0] == documents and len(calls) == 1 + 4 + 1
