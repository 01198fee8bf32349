"""A classifier that would write one column twice is refused by name, on a run (`check_classifiers`) and on
NeMo's `classifier(dataset)`, with one message that names its two parameters."""

from __future__ import annotations

import pandas as pd
import pytest

from hpc_classify.classifiers.aegis import AegisClassifier, InstructionDataGuardClassifier
from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier, QualityClassifier
from hpc_classify.classifiers.fineweb import (
    FineWebEduClassifier,
    FineWebMixtralEduClassifier,
    FineWebNemotronEduClassifier,
)
from hpc_classify.classifiers.run_checks import check_classifiers
from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import ConfigError

HINT = "each output column needs a name of its own: the second would overwrite the first"
CLASHES = [
    (
        lambda: QualityClassifier(pred_column="x", prob_column="x", model="/nonexistent"),
        "QualityClassifier's pred_column and prob_column are both 'x': name them apart",
    ),
    (
        lambda: FineWebEduClassifier(pred_column="x", int_column="x", model="/nonexistent"),
        "FineWebEduClassifier's pred_column and int_column are both 'x': name them apart",
    ),
    (
        lambda: AegisClassifier(raw_pred_column="aegis_pred", keep_raw_pred=True),
        "AegisClassifier's pred_column and raw_pred_column are both 'aegis_pred': name them apart",
    ),
    (
        lambda: InstructionDataGuardClassifier(pred_column="x", prob_column="x"),
        "InstructionDataGuardClassifier's prob_column and pred_column are both 'x': name them apart",
    ),
]


@pytest.mark.parametrize(("make", "message"), CLASHES, ids=[m.split("'")[0] for _, m in CLASHES])
def test_a_column_written_twice_by_one_classifier_is_named_by_its_parameters(make, message):
    classifier = make()  # settings only: nothing is loaded
    with pytest.raises(ConfigError) as raised:
        check_classifiers([classifier])
    assert str(raised.value) == f"{message}\nHINT: {HINT}"
    dataset = DocumentDataset.from_pandas(pd.DataFrame({"text": ["a", "b"]}), npartitions=1)
    with pytest.raises(ConfigError) as raised:
        classifier(dataset)  # NeMo's way: refused when called, before any model is looked up
    assert str(raised.value) == f"{message}\nHINT: {HINT}"


def test_a_column_written_by_two_classifiers_still_names_both():
    first, second = DomainClassifier(model="/nonexistent"), DomainClassifier(model="/nonexistent")
    with pytest.raises(
        ConfigError, match=r"'domain_pred' is written by classifier 1: DomainClassifier and by "
    ):
        check_classifiers([first, second])
    # Apart, each classifier's own columns are no clash: pred and prob named apart, raw answers not kept.
    check_classifiers(
        [QualityClassifier(model="/nonexistent"), AegisClassifier(raw_pred_column="aegis_pred")]
    )


# A column-name argument that is not a non-empty string: "" was replaced by a default without a word (FineWeb's
# by "pred", a column NeMo never writes), and a number or a list was kept until a write failed on it.
BAD_NAMES = [  # (classifier, parameter, whether None is allowed)
    (DomainClassifier, "pred_column", False),
    (QualityClassifier, "prob_column", True),
    (FineWebEduClassifier, "pred_column", False),
    (FineWebEduClassifier, "int_column", False),
    (FineWebMixtralEduClassifier, "quality_label_column", True),
]


@pytest.mark.parametrize("value", ["", 5, ["x"]])
@pytest.mark.parametrize(
    ("classifier", "parameter", "optional"), BAD_NAMES, ids=[b[1] + b[0].__name__ for b in BAD_NAMES]
)
def test_a_column_name_that_is_not_a_non_empty_string_is_refused_naming_it(
    classifier, parameter, optional, value
):
    with pytest.raises(ConfigError) as raised:
        classifier(model="/nonexistent", **{parameter: value})
    allowed = "a non-empty column name" + (", or None for no such column" if optional else "")
    expected = f"{classifier.__name__}: {parameter} must be {allowed}, not {value!r}"
    assert str(raised.value).split("\nHINT: ")[0] == expected


def test_none_means_the_default_column_of_the_class_or_no_such_column():
    # A YAML null is "not set": FineWeb's pred_column falls back on NeMo's default, not the base's "pred".
    assert FineWebEduClassifier(pred_column=None, model="/m").output_columns() == [
        "fineweb-edu-score",
        "fineweb-edu-score-int",
    ]
    assert (
        FineWebNemotronEduClassifier(pred_column=None, model="/m").pred_column == "fineweb-nemotron-edu-score"
    )
    assert FineWebMixtralEduClassifier(quality_label_column=None, model="/m").output_columns() == [
        "fineweb-mixtral-edu-score",
        "fineweb-mixtral-edu-score-int",
    ]
    assert QualityClassifier(prob_column=None, model="/m").output_columns() == ["quality_pred"]
    with pytest.raises(ConfigError, match="int_column must be a non-empty column name, not None"):
        FineWebEduClassifier(int_column=None, model="/m")


@pytest.mark.parametrize(
    ("classifier", "given", "columns"),
    [
        (AegisClassifier, {"pred_column": None}, ["aegis_pred"]),
        (
            InstructionDataGuardClassifier,
            {"pred_column": None, "prob_column": None},
            ["instruction_data_guard_poisoning_score", "is_poisoned"],
        ),
    ],
)
def test_the_guards_take_none_as_their_default_columns_as_every_classifier_does(classifier, given, columns):
    # A YAML `pred_column: null` was refused for the two LlamaGuard classifiers alone, by a second rule.
    assert classifier(**given).output_columns() == columns


@pytest.mark.parametrize(
    ("classifier", "parameter"),
    [
        (AegisClassifier, "raw_pred_column"),
        (AegisClassifier, "pred_column"),
        (InstructionDataGuardClassifier, "pred_column"),
        (InstructionDataGuardClassifier, "prob_column"),
    ],
)
def test_a_guards_empty_column_name_is_refused_naming_the_class(classifier, parameter):
    with pytest.raises(
        ConfigError, match=f"^{classifier.__name__}: {parameter} must be a non-empty column name"
    ):
        classifier(**{parameter: ""})
