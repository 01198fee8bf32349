"""An input column named like a prediction column (`domain_pred` from an earlier run) is replaced by the
predictions: allowed (re-labelling a labelled corpus is fine), but said before the run, naming the column and
the file, with the flag that keeps both; the Dask API's classifier call says it too."""

from __future__ import annotations

import json
import os

import pandas as pd

from hpc_classify.bench.length_classifier import LengthClassifier
from hpc_classify.datasets import DocumentDataset
from hpc_classify.driver.column_checks import warn_prediction_columns
from hpc_classify.driver.plan import PlannedFile


def _planned(tmp_path, name: str, rows: list[dict]) -> PlannedFile:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return PlannedFile(str(path), name, os.path.getsize(path))


def test_an_input_column_the_predictions_replace_is_said_before_the_run(tmp_path, caplog):
    empty = _planned(tmp_path, "a.jsonl", [])
    labelled = _planned(tmp_path, "b.jsonl", [{"text": "x", "length_pred": "short", "id": 1}])
    with caplog.at_level("WARNING", logger="hpc_classify.driver.column_checks"):
        warn_prediction_columns([LengthClassifier()], None, [empty, labelled, labelled])
    assert caplog.messages == [
        f"{labelled.path} has the column(s) 'length_pred', which the predictions replace in the outputs; "
        "HINT: to keep both, give the predictions other names (--pred-column / --prob-column, pred_column / "
        "prob_column in a YAML config's classifiers list or a classifier's arguments)"
    ]


def test_no_warning_without_a_clash_or_where_the_column_is_not_written(tmp_path, caplog):
    labelled = _planned(tmp_path, "b.jsonl", [{"text": "x", "length_pred": "short", "id": 1}])
    with caplog.at_level("WARNING", logger="hpc_classify.driver.column_checks"):
        warn_prediction_columns([LengthClassifier(pred_column="length")], None, [labelled])
        warn_prediction_columns([LengthClassifier()], ["id"], [labelled])  # --keep-columns without it
    assert caplog.messages == []
    with caplog.at_level("WARNING", logger="hpc_classify.driver.column_checks"):
        warn_prediction_columns([LengthClassifier()], ["id", "length_pred"], [labelled])
    assert len(caplog.messages) == 1


def test_the_dataset_api_says_it_too(caplog):
    frame = pd.DataFrame({"text": ["a", "b" * 2000], "length_pred": ["old", "old"]})
    dataset = DocumentDataset.from_pandas(frame, npartitions=1)
    with caplog.at_level("WARNING", logger="hpc_classify.classifiers.frames"):
        result = LengthClassifier()(dataset)  # lazy: said when the call is made, before any compute
    assert list(result.df.columns) == ["text", "length_pred"]  # replaced, as NeMo does
    assert caplog.messages == [
        "LengthClassifier replaces the dataset's column(s) 'length_pred' with its predictions; HINT: to keep "
        "both, give the predictions other names (pred_column= / prob_column= when creating the classifier)"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="hpc_classify.classifiers.frames"):
        LengthClassifier(pred_column="new")(dataset)
    assert caplog.messages == []
