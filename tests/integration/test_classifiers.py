"""Classifiers on tiny checkpoints in the public layout: exactness, autocast agreement, filtering, max_chars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference_models import nvidia_checkpoint_probabilities

from hpc_classify import DomainClassifier, QualityClassifier
from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.models.tiny import DOMAIN_LABELS, QUALITY_LABELS, synthetic_corpus


@pytest.fixture(scope="module")
def corpus():
    texts, label_ids = synthetic_corpus(120, DOMAIN_LABELS, seed=7)
    return pd.DataFrame(
        {"id": range(len(texts)), "text": texts, "expected": [DOMAIN_LABELS[i] for i in label_ids]}
    )


def test_fp32_probabilities_equal_plain_transformers(tiny_domain_model, corpus):
    classifier = DomainClassifier(model=str(tiny_domain_model), autocast=False, prob_column="p", device="cpu")
    result = classifier.predict_frame(corpus)
    got = np.array(result["p"].tolist())
    want = nvidia_checkpoint_probabilities(tiny_domain_model, corpus["text"].tolist(), 2000, 512)
    assert got.shape == (len(corpus), len(DOMAIN_LABELS))
    assert np.abs(got - want).max() <= 1e-5
    assert result["domain_pred"].tolist() == [DOMAIN_LABELS[i] for i in want.argmax(axis=1)]
    # Original columns and order are untouched.
    assert result[["id", "text"]].equals(corpus[["id", "text"]])


def test_autocast_argmax_agrees_with_fp32(tiny_domain_model, corpus):
    exact = DomainClassifier(model=str(tiny_domain_model), autocast=False).predict_frame(corpus)[
        "domain_pred"
    ]
    # bf16 forced: precision auto is fp32 on a CPU without native bf16, which would compare fp32 with itself.
    fast = DomainClassifier(model=str(tiny_domain_model), autocast=True, precision="bf16").predict_frame(
        corpus
    )["domain_pred"]
    agreement = (exact.to_numpy() == fast.to_numpy()).mean()
    assert agreement >= 0.99, agreement


def test_predictions_differ_by_document(tiny_domain_model, corpus):
    predictions = DomainClassifier(model=str(tiny_domain_model)).predict_frame(corpus)["domain_pred"]
    assert predictions.nunique() >= 5


def test_filter_by_keeps_exactly_the_rows_with_those_labels(tiny_domain_model, corpus):
    everything = DomainClassifier(model=str(tiny_domain_model)).predict_frame(corpus)
    wanted = everything["domain_pred"].value_counts().index[:2].tolist()
    kept = DomainClassifier(model=str(tiny_domain_model), filter_by=wanted).classify_frame(corpus)
    expected_ids = everything.loc[everything["domain_pred"].isin(wanted), "id"].tolist()
    assert kept["id"].tolist() == expected_ids
    assert set(kept["domain_pred"]) == set(wanted)


def test_filter_by_unknown_label_is_refused_with_the_valid_ones(tiny_domain_model, corpus):
    classifier = DomainClassifier(model=str(tiny_domain_model), filter_by="Cooking")
    with pytest.raises(ConfigError, match="Cooking") as error:
        classifier.classify_frame(corpus)
    assert "Games" in str(error.value)


def test_max_chars_is_honoured(tiny_domain_model):
    prefix = "The team scored in the final minute of the match. " * 4
    frame = pd.DataFrame({"text": [prefix + "x" * 50, prefix + "completely different tail words " * 30]})
    classifier = DomainClassifier(model=str(tiny_domain_model), max_chars=len(prefix), prob_column="p")
    probabilities = classifier.predict_frame(frame)["p"].tolist()
    assert probabilities[0] == probabilities[1]
    wider = DomainClassifier(model=str(tiny_domain_model), max_chars=len(prefix) + 400, prob_column="p")
    assert wider.predict_frame(frame)["p"].tolist()[0] != wider.predict_frame(frame)["p"].tolist()[1]


def test_ten_megabyte_document_is_cut_not_blown_up(tiny_domain_model):
    frame = pd.DataFrame({"text": ["word " * 2_000_000, ""]})
    result = DomainClassifier(model=str(tiny_domain_model)).predict_frame(frame)
    assert result["domain_pred"].isin(DOMAIN_LABELS).all() and len(result) == 2


def test_quality_defaults_and_label_order_from_checkpoint(tiny_quality_model):
    classifier = QualityClassifier(model=str(tiny_quality_model))
    assert classifier.labels == QUALITY_LABELS
    assert (classifier.pred_column, classifier.prob_column, classifier.max_chars) == (
        "quality_pred",
        "quality_prob",
        6000,
    )
    result = classifier.predict_frame(pd.DataFrame({"text": ["short text", "another one entirely"]}))
    probabilities = np.array(result["quality_prob"].tolist())
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert result["quality_pred"].tolist() == [QUALITY_LABELS[i] for i in probabilities.argmax(axis=1)]


def test_rows_without_text_are_an_error_naming_the_row(tiny_domain_model):
    frame = pd.DataFrame({"text": ["fine", None, "fine too"]})
    with pytest.raises(InputFileError, match="first at row 2"):
        DomainClassifier(model=str(tiny_domain_model)).predict_frame(frame, source="corpus.jsonl")
    with pytest.raises(InputFileError, match="no text column 'body'"):
        DomainClassifier(model=str(tiny_domain_model), text_field="body").predict_frame(frame)


def test_classifier_pickles_without_its_model(tiny_domain_model, corpus):
    import pickle

    classifier = DomainClassifier(model=str(tiny_domain_model))
    classifier.predict_frame(corpus.head(3))  # loads the engine into this process's cache
    assert len(pickle.dumps(classifier)) < 5_000


def test_a_row_without_text_names_its_file_in_the_dataset_api(tmp_path, tiny_domain_model):
    from hpc_classify import DocumentDataset

    (tmp_path / "good.jsonl").write_text('{"text": "fine"}\n')
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"title": "no text here"}\n')
    dataset = DocumentDataset.read_json(
        [str(tmp_path / "good.jsonl"), str(tmp_path / "bad.jsonl")], add_filename=True
    )
    with pytest.raises(InputFileError, match=r"bad\.jsonl.*first at row 2"):
        DomainClassifier(model=str(tiny_domain_model))(dataset).df.compute()
