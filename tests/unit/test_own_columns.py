"""A classifier that would write one column twice is refused by name, on a run (`check_classifiers`) and on
NeMo's `classifier(dataset)`, with one message that names its two parameters."""

from __future__ import annotations

import pandas as pd
import pytest

from hpc_classify.classifiers.aegis import AegisClassifier, InstructionDataGuardClassifier
from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier, QualityClassifier
from hpc_classify.classifiers.fineweb import FineWebEduClassifier
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
