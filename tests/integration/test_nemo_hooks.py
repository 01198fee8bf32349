"""NeMo Curator 0.7.1's `DistributedDataClassifier` hooks: `call` runs `_run_classifier(dataset)`, then, when
`filter_by` is set, `_filter_documents(result)`, so that a user's subclass overriding either changes what
`classifier(dataset)` returns; and `filter_by` set after construction is read as in the constructor."""

from __future__ import annotations

import dask
import pandas as pd
import pytest

from hpc_classify import DocumentDataset, DomainClassifier
from hpc_classify.errors import ConfigError


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


TEXTS = ["sports game football", "", "cars and engines", "x" * 5000, "cooking food recipe", "law court judge"]


def dataset() -> DocumentDataset:
    return DocumentDataset.from_pandas(pd.DataFrame({"id": range(len(TEXTS)), "text": TEXTS}), npartitions=2)


def nemo_call(classifier, data: DocumentDataset) -> pd.DataFrame:
    """NeMo 0.7.1's `DistributedDataClassifier.call` and, unless the class overrides it, its
    `_filter_documents`, verbatim (nemo_curator/classifiers/base.py), on the classifier's `_run_classifier`."""
    result_doc_dataset = classifier._run_classifier(data)
    if classifier.filter_by is None:
        return result_doc_dataset.df.compute()
    if type(classifier)._filter_documents is not DomainClassifier._filter_documents:
        return classifier._filter_documents(result_doc_dataset).df.compute()
    df = result_doc_dataset.df
    filter_by = classifier.filter_by
    if type(filter_by) == str:  # noqa: E721 -- NeMo's test
        return df[df[classifier.pred_column].astype(str) == filter_by].compute()
    elif type(filter_by) == list:  # noqa: E721
        return df[df[classifier.pred_column].isin(filter_by)].compute()
    raise TypeError("filter_by must be a string or list type")


class KeepFirstTwo(DomainClassifier):
    """A user's `_filter_documents`: keeps ids 0 and 1, whatever the predictions."""

    def _filter_documents(self, dataset: DocumentDataset) -> DocumentDataset:
        df = dataset.df
        return DocumentDataset(df[df["id"] < 2])


class EvenIdsAreGames(DomainClassifier):
    """A user's `_run_classifier`: the model's predictions, then every even id relabelled Games."""

    def _run_classifier(self, dataset: DocumentDataset) -> DocumentDataset:
        df = super()._run_classifier(dataset).df
        df[self.pred_column] = df[self.pred_column].where(df["id"] % 2 == 1, "Games")
        return DocumentDataset(df)


def unfiltered(model: str) -> pd.DataFrame:
    return DomainClassifier(model=model, device_type="cpu")(dataset()).df.compute()


def test_an_overridden_filter_documents_decides_the_rows(tiny_domain_model):
    model = str(tiny_domain_model)
    base = unfiltered(model)
    label = base["domain_pred"].iloc[3]
    mine = KeepFirstTwo(model=model, device_type="cpu", filter_by=[label])
    got = mine(dataset()).df.compute()
    assert got["id"].tolist() == [0, 1]
    pd.testing.assert_frame_equal(got, nemo_call(mine, dataset()))
    pd.testing.assert_frame_equal(got, base[base["id"] < 2])
    # Without filter_by NeMo never calls _filter_documents: every row.
    everything = KeepFirstTwo(model=model, device_type="cpu")(dataset()).df.compute()
    pd.testing.assert_frame_equal(everything, base)


def test_an_overridden_run_classifier_makes_the_predictions_that_are_filtered(tiny_domain_model):
    model = str(tiny_domain_model)
    base = unfiltered(model)
    games = EvenIdsAreGames(model=model, device_type="cpu", filter_by="Games")
    got = games(dataset()).df.compute()
    pd.testing.assert_frame_equal(got, nemo_call(games, dataset()))
    expected_ids = [
        i for i, label in zip(base["id"], base["domain_pred"], strict=True) if i % 2 == 0 or label == "Games"
    ]
    assert got["id"].tolist() == expected_ids and set(got["domain_pred"]) == {"Games"}
    relabelled = EvenIdsAreGames(model=model, device_type="cpu")(dataset()).df.compute()
    assert relabelled["domain_pred"].tolist() == [
        "Games" if i % 2 == 0 else label for i, label in zip(base["id"], base["domain_pred"], strict=True)
    ]


def test_run_classifier_called_directly_predicts_every_row(tiny_domain_model):
    model = str(tiny_domain_model)
    base = unfiltered(model)
    filtered = DomainClassifier(model=model, device_type="cpu", filter_by=[base["domain_pred"].iloc[0]])
    pd.testing.assert_frame_equal(filtered._run_classifier(dataset()).df.compute(), base)
    kept = filtered._filter_documents(filtered._run_classifier(dataset())).df.compute()
    pd.testing.assert_frame_equal(kept, filtered(dataset()).df.compute())
    pd.testing.assert_frame_equal(kept, nemo_call(filtered, dataset()))
    assert kept["domain_pred"].tolist() == [base["domain_pred"].iloc[0]] * len(kept)


def test_filter_by_set_after_construction_is_read_as_in_the_constructor(tiny_domain_model):
    model = str(tiny_domain_model)
    label = unfiltered(model)["domain_pred"].iloc[0]
    later = DomainClassifier(model=model, device_type="cpu")
    later.filter_by = label  # one label, not its letters
    assert later.filter_by == [label]
    pd.testing.assert_frame_equal(
        later(dataset()).df.compute(),
        DomainClassifier(model=model, device_type="cpu", filter_by=label)(dataset()).df.compute(),
    )
    later.filter_by = None
    assert len(later(dataset()).df.compute()) == len(TEXTS)
    with pytest.raises(ConfigError, match="filter_by must be a label or a list of labels"):
        later.filter_by = {"Games": 1}
    with pytest.raises(ConfigError, match="does not have: Gmaes"):  # the labels are known: checked now
        later.filter_by = ["Games", "Gmaes"]


def test_classifiers_that_never_filter_refuse_a_filter_by(tiny_prompt_complexity_model, tiny_fineweb_model):
    from hpc_classify import FineWebEduClassifier, PromptTaskComplexityClassifier

    for classifier in (
        PromptTaskComplexityClassifier(model=str(tiny_prompt_complexity_model), device_type="cpu"),
        FineWebEduClassifier(model=str(tiny_fineweb_model), device_type="cpu"),
    ):
        with pytest.raises(ConfigError, match="does not filter"):
            classifier.filter_by = ["Games"]
        classifier.filter_by = None


def test_a_run_refuses_a_classifier_whose_dataset_hooks_it_would_ignore(tmp_path, tiny_domain_model):
    """A run classifies each file's rows (predict_frame, filter_mask), never through call or NeMo's hooks: a
    class overriding them is refused before anything is written, not run as if they were not there."""
    from hpc_classify import run

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"text": "sports game"}\n')
    for cls in (KeepFirstTwo, EvenIdsAreGames):
        classifier = cls(model=str(tiny_domain_model), device_type="cpu", filter_by=["Games"])
        with pytest.raises(ConfigError, match=rf"classifier 1: {cls.__name__} overrides _"):
            run(classifier, str(tmp_path / "in"), str(tmp_path / "out"), workers=1)
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
